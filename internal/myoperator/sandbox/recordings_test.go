package sandbox

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordingLinkAndAudio(t *testing.T) {
	t.Parallel()
	s := New(Options{Token: "tok"})
	// Mounted under a prefix, as `calltrack dev` does.
	mux := http.NewServeMux()
	mux.Handle("/sandbox/myoperator/", http.StripPrefix("/sandbox/myoperator", s))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	res, err := http.Get(srv.URL + "/sandbox/myoperator/recordings/link?token=tok&file=a1b2.mp3")
	require.NoError(t, err)
	var ans struct {
		Status string `json:"status"`
		Data   struct {
			URL string `json:"url"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&ans))
	res.Body.Close()
	assert.Equal(t, "success", ans.Status)
	require.True(t, strings.HasPrefix(ans.Data.URL, srv.URL+"/sandbox/myoperator/audio/a1b2.mp3?expires="), ans.Data.URL)
	assert.Equal(t, 1, s.RecordingLinks())

	res, err = http.Get(ans.Data.URL)
	require.NoError(t, err)
	audio, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "audio/wav", res.Header.Get("Content-Type"))
	// A valid RIFF/WAVE file whose sizes add up.
	require.Greater(t, len(audio), 44)
	assert.Equal(t, "RIFF", string(audio[0:4]))
	assert.Equal(t, "WAVE", string(audio[8:12]))
	assert.Equal(t, uint32(len(audio)-8), binary.LittleEndian.Uint32(audio[4:8]))
	assert.Equal(t, uint32(len(audio)-44), binary.LittleEndian.Uint32(audio[40:44]))

	res, err = http.Head(ans.Data.URL)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)

	// The link expires like MyOperator's.
	s.recordings.mu.Lock()
	s.recordings.now = func() time.Time { return time.Now().Add(RecordingLinkTTL + time.Minute) }
	s.recordings.mu.Unlock()
	res, err = http.Get(ans.Data.URL)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
}

func TestRecordingLinkErrors(t *testing.T) {
	t.Parallel()
	s := New(Options{Token: "tok"})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.RemoveRecording("gone.mp3")
	for _, tc := range []struct {
		query  string
		status int
	}{
		{"token=wrong&file=a.mp3", http.StatusBadRequest},
		{"file=a.mp3", http.StatusBadRequest},
		{"token=tok", http.StatusNotFound},
		{"token=tok&file=gone.mp3", http.StatusNotFound},
		{"token=tok&file=..%2Fetc%2Fpasswd", http.StatusNotFound},
	} {
		res, err := http.Get(srv.URL + "/recordings/link?" + tc.query)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
		res.Body.Close()
		assert.Equal(t, tc.status, res.StatusCode, tc.query)
		assert.Equal(t, "error", body["status"])
	}
	assert.Zero(t, s.RecordingLinks())
	res, err := http.Get(srv.URL + "/audio/a.mp3")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "no expiry, no audio")
}
