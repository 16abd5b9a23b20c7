package sandbox

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RecordingLinkTTL is how long a sandbox recording link works, like MyOperator's.
const RecordingLinkTTL = 24 * time.Hour

// recordingsState is the recordings API's data: every file name is a recording (as
// the sandbox accepts any owner), except those removed with DELETE /recordings/{file}.
type recordingsState struct {
	mu      sync.Mutex
	missing map[string]bool
	links   int // link exchanges answered, for tests and demos
	now     func() time.Time
}

var recordingFilePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

func (s *Server) routesRecordings() {
	s.recordings = &recordingsState{missing: map[string]bool{}, now: time.Now}
	// GET /recordings/link?token=&file= → {"status":"success","code":200,"data":{"url":...}}
	s.mux.HandleFunc("GET /recordings/link", s.recordingLink)
	// The link itself: a small WAV, until the link expires. (GET patterns serve HEAD too.)
	s.mux.HandleFunc("GET /audio/{file}", s.audio)
	// Control: no auth.
	s.mux.HandleFunc("DELETE /recordings/{file}", func(w http.ResponseWriter, r *http.Request) {
		s.RemoveRecording(r.PathValue("file"))
		w.WriteHeader(http.StatusNoContent)
	})
}

// RemoveRecording makes the link exchange answer "not found" for file.
func (s *Server) RemoveRecording(file string) {
	s.recordings.mu.Lock()
	defer s.recordings.mu.Unlock()
	s.recordings.missing[file] = true
}

// RecordingLinks is how many link exchanges the sandbox answered with a link.
func (s *Server) RecordingLinks() int {
	s.recordings.mu.Lock()
	defer s.recordings.mu.Unlock()
	return s.recordings.links
}

func (s *Server) recordingLink(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if s.account(q.Get("token")) == "" {
		writeRecordingsJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "code": 400, "message": "not an authorized request"})
		return
	}
	file := q.Get("file")
	rs := s.recordings
	rs.mu.Lock()
	missing := rs.missing[file]
	if !missing && recordingFilePattern.MatchString(file) {
		rs.links++
	}
	now := rs.now()
	rs.mu.Unlock()
	if file == "" || missing || !recordingFilePattern.MatchString(file) {
		writeRecordingsJSON(w, http.StatusNotFound, map[string]any{"status": "error", "code": 404, "message": "recording not found"})
		return
	}
	exp := now.Add(RecordingLinkTTL).Unix()
	link := baseURL(r) + "/audio/" + url.PathEscape(file) + "?expires=" + strconv.FormatInt(exp, 10)
	writeRecordingsJSON(w, http.StatusOK, map[string]any{"status": "success", "code": 200,
		"data": map[string]any{"url": link, "expires_at": time.Unix(exp, 0).UTC().Format(time.RFC3339)}})
}

// audio serves the recording behind a link: the same tiny WAV for every file.
func (s *Server) audio(w http.ResponseWriter, r *http.Request) {
	exp, err := strconv.ParseInt(r.URL.Query().Get("expires"), 10, 64)
	s.recordings.mu.Lock()
	now := s.recordings.now()
	s.recordings.mu.Unlock()
	if err != nil || now.Unix() > exp {
		http.Error(w, "link expired", http.StatusForbidden)
		return
	}
	file := r.PathValue("file")
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Disposition", `inline; filename="`+strings.ReplaceAll(file, `"`, "")+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(tone()))
}

// baseURL is how the caller reached the sandbox, mount prefix included (dev serves
// it under /sandbox/myoperator with StripPrefix; tests serve it bare).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	prefix := ""
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		prefix = strings.TrimSuffix(u.Path, r.URL.Path)
	}
	return scheme + "://" + r.Host + prefix
}

var (
	toneOnce sync.Once
	toneWAV  []byte
)

// tone is a valid 0.3 s, 8 kHz, 16-bit mono PCM WAV of a 440 Hz beep (~4.8 KB).
func tone() []byte {
	toneOnce.Do(func() {
		const rate, n = 8000, 2400
		var b bytes.Buffer
		le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
		b.WriteString("RIFF")
		le(uint32(36 + 2*n))
		b.WriteString("WAVEfmt ")
		le(uint32(16))       // fmt chunk size
		le(uint16(1))        // PCM
		le(uint16(1))        // mono
		le(uint32(rate))     // sample rate
		le(uint32(rate * 2)) // byte rate
		le(uint16(2))        // block align
		le(uint16(16))       // bits per sample
		b.WriteString("data")
		le(uint32(2 * n))
		for i := range n {
			le(int16(8000 * math.Sin(2*math.Pi*440*float64(i)/rate)))
		}
		toneWAV = b.Bytes()
	})
	return toneWAV
}

func writeRecordingsJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
