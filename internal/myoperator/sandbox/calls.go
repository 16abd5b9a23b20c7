package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/calltrack/calltrack/internal/myoperator"
)

// SearchMaxPageSize is the largest page_size POST /search serves, as MyOperator's.
const SearchMaxPageSize = 100

// callsState is the account's call log: what POST /search lists. Calls are recorded
// with POST /calls (without a webhook, as when MyOperator's delivery failed) or with
// POST /calls?deliver=true (the afterCall webhook is delivered too).
type callsState struct {
	mu       sync.Mutex
	byID     map[string]*loggedCall
	searches int         // POST /search requests answered (any outcome)
	recent   []time.Time // search requests in the last minute, for the rate limit
	now      func() time.Time
}

// loggedCall is one call of the log: the afterCall as recorded.
type loggedCall struct {
	Account   string // the API token of the account whose log holds the call
	CallID    string
	LogID     string
	Start     time.Time
	AfterCall map[string]any
}

func (s *Server) routesCalls() {
	s.calls = &callsState{byID: map[string]*loggedCall{}, now: time.Now}
	s.mux.HandleFunc("POST /search", s.search)
	// Control: no auth.
	s.mux.HandleFunc("POST /calls", s.recordCall)
	s.mux.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) {
		out := []map[string]any{}
		for _, c := range s.Calls() {
			out = append(out, map[string]any{"call_id": c.CallID, "log_id": c.LogID, "start_time": c.Start.UTC().Format(time.RFC3339)})
		}
		writeUsersJSON(w, http.StatusOK, map[string]any{"calls": out})
	})
	s.mux.HandleFunc("DELETE /calls", func(w http.ResponseWriter, r *http.Request) {
		s.calls.mu.Lock()
		clear(s.calls.byID)
		s.calls.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
}

// RecordCall adds an afterCall log (JSON) to the first account's call log, replacing
// a call of the same id. It returns the call as recorded.
func (s *Server) RecordCall(afterCall []byte) (*loggedCall, error) {
	return s.RecordCallIn(s.opts.Token, afterCall)
}

// RecordCallIn is RecordCall into the call log of the account whose API token is
// token (empty: the first account's).
func (s *Server) RecordCallIn(token string, afterCall []byte) (*loggedCall, error) {
	if token == "" {
		token = s.opts.Token
	}
	if s.account(token) == "" {
		return nil, errors.New("no account has that API token")
	}
	l, err := myoperator.ParseAfterCall("sandbox", afterCall, time.Now())
	if err != nil {
		return nil, err
	}
	m, err := decodeMap(afterCall)
	if err != nil {
		return nil, err
	}
	c := &loggedCall{Account: token, CallID: l.CallID, LogID: l.LogID, Start: l.StartedAt, AfterCall: m}
	if c.LogID == "" {
		c.LogID = l.CallID
	}
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	s.calls.byID[c.CallID] = c
	return c, nil
}

// Calls lists the call log, newest first.
func (s *Server) Calls() []loggedCall {
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	out := make([]loggedCall, 0, len(s.calls.byID))
	for _, c := range s.calls.byID {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b loggedCall) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return strings.Compare(a.CallID, b.CallID)
	})
	return out
}

// SearchRequests is how many POST /search requests the sandbox answered.
func (s *Server) SearchRequests() int {
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	return s.calls.searches
}

// recordCall serves POST /calls: the body is an afterCall (a JSON object, or form field
// myoperator=<json>). ?at=now moves the call's times so that it ends now; ?call_id=
// gives it another call id (a sample recorded as a new call); ?deliver=true also posts
// it to the afterCall webhook (Options.AfterCallWebhook), as MyOperator would.
func (s *Server) recordCall(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeUsersJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"status": "error", "code": 413, "message": "body larger than 1 MiB"})
		return
	}
	raw, err := myoperator.ExtractJSON(r.Header.Get("Content-Type"), body, nil)
	if err == nil && r.URL.Query().Get("at") != "" {
		raw, err = restamp(raw, r.URL.Query().Get("at"), s.calls.now())
	}
	if err == nil && r.URL.Query().Get("call_id") != "" {
		raw, err = renumber(raw, r.URL.Query().Get("call_id"))
	}
	var c *loggedCall
	if err == nil {
		c, err = s.RecordCall(raw)
	}
	if err != nil {
		writeUsersJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "code": 400,
			"message": "body must be an afterCall log (JSON object or form field myoperator=<json>): " + err.Error()})
		return
	}
	ans := map[string]any{"status": "recorded", "call_id": c.CallID, "log_id": c.LogID, "delivered": false}
	if !c.Start.IsZero() {
		ans["start_time"] = c.Start.UTC().Format(time.RFC3339)
		if age := s.calls.now().Sub(c.Start); age > 2*time.Hour {
			ans["note"] = fmt.Sprintf("the call started %s ago: a backfill over the last 2h will not find it; post with ?at=now to record it as just ended",
				age.Round(time.Minute))
		}
	}
	if v, _ := strconv.ParseBool(r.URL.Query().Get("deliver")); v {
		status, err := s.deliver(r, raw)
		if err != nil {
			ans["webhook_error"] = err.Error()
		} else {
			ans["delivered"], ans["webhook_status"] = status/100 == 2, status
		}
	}
	writeUsersJSON(w, http.StatusCreated, ans)
}

// webhookClient posts the sandbox's webhooks on a new connection each time, as a
// sender that does not keep connections to its receivers: a keep-alive connection
// pooled from an earlier receiver (a test's closed httptest server whose port came
// back) fails a POST, and net/http does not retry a POST.
var webhookClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment},
}

// deliver posts the afterCall as MyOperator's classic webhook does: form field
// myoperator=<json>, once (the test or demo decides about retries).
func (s *Server) deliver(r *http.Request, raw []byte) (int, error) {
	if s.opts.AfterCallWebhook == "" {
		return 0, fmt.Errorf("no afterCall webhook URL configured")
	}
	form := url.Values{"myoperator": {string(raw)}}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, s.opts.AfterCallWebhook, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := webhookClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("afterCall webhook: %w", err)
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// matches is search_key's free-text match: the call id, the log id or the caller's number.
func (c loggedCall) matches(key string) bool {
	if key == c.CallID || key == c.LogID {
		return true
	}
	for _, k := range []string{"_cr", "_cl"} {
		if v := fmt.Sprint(c.AfterCall[k]); v != "" && strings.Contains(v, key) {
			return true
		}
	}
	return false
}

// searchParams reads POST /search's parameters from a JSON body or a form body (as
// integrators send them); never from the query, which MyOperator does not read.
func searchParams(r *http.Request) (map[string]string, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" || bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			return nil, fmt.Errorf("body is not JSON: %w", err)
		}
		for k, v := range m {
			out[k] = strings.TrimSpace(fmt.Sprint(v))
		}
		return out, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
		return nil, err
	}
	for k := range r.PostForm {
		out[k] = strings.TrimSpace(r.PostForm.Get(k))
	}
	return out, nil
}

// search serves POST /search: {"token","from","to","log_from","page_size","search_key"} →
// {"status":"success","code":200,"data":{"total":N,"hits":[{"_id","_source"}]}}, newest
// first, calls whose start is within [from, to]. A wrong token is a 400; a bad
// page_size an HTTP 200 with status "error" (as MyOperator reports application errors);
// over Options.SearchPerMinute requests in a minute a 429 with Retry-After.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	cs := s.calls
	cs.mu.Lock()
	cs.searches++
	now := cs.now()
	if lim := s.opts.SearchPerMinute; lim > 0 {
		cs.recent = slices.DeleteFunc(cs.recent, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
		if len(cs.recent) >= lim {
			wait := time.Minute - now.Sub(cs.recent[0])
			cs.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeUsersJSON(w, http.StatusTooManyRequests, map[string]any{"status": "error", "code": 429, "message": "Too many requests"})
			return
		}
		cs.recent = append(cs.recent, now)
	}
	cs.mu.Unlock()

	p, err := searchParams(r)
	if err != nil {
		writeUsersJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "code": 400, "message": err.Error()})
		return
	}
	account := s.account(p["token"])
	if account == "" {
		writeUsersJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "code": 400, "message": "This not an authorized request"})
		return
	}
	appError := func(msg string) {
		writeUsersJSON(w, http.StatusOK, map[string]any{"status": "error", "code": 400, "message": msg})
	}
	num := func(k string, def int64) (int64, bool) {
		if p[k] == "" {
			return def, true
		}
		n, err := strconv.ParseInt(p[k], 10, 64)
		return n, err == nil && n >= 0
	}
	from, ok1 := num("from", 0)
	to, ok2 := num("to", math.MaxInt32)
	offset, ok3 := num("log_from", 0)
	size, ok4 := num("page_size", 20)
	switch {
	case !ok1 || !ok2:
		appError("from and to must be Unix timestamps (seconds)")
		return
	case !ok3:
		appError("log_from must be a number >= 0")
		return
	case !ok4 || size < 1 || size > SearchMaxPageSize:
		appError(fmt.Sprintf("page_size must be between 1 and %d", SearchMaxPageSize))
		return
	}
	key := p["search_key"]
	var match []loggedCall
	for _, c := range s.Calls() {
		if st := c.Start.Unix(); c.Account == account && st >= from && st <= to && (key == "" || c.matches(key)) {
			match = append(match, c)
		}
	}
	lo := min(int(offset), len(match))
	hi := min(lo+int(size), len(match))
	hits := make([]map[string]any, 0, hi-lo)
	for _, c := range match[lo:hi] {
		hits = append(hits, map[string]any{"_index": "logs", "_id": c.LogID, "_source": longNames(c.AfterCall)})
	}
	writeUsersJSON(w, http.StatusOK, map[string]any{"status": "success", "code": 200,
		"data": map[string]any{"total": len(match), "hits": hits}})
}

// longNames renders an afterCall log as a search hit's _source: the long names public
// integrations read (docs/myoperator-api.md).
func longNames(ac map[string]any) map[string]any {
	src := map[string]any{}
	rename := func(from, to string, m map[string]any, dst map[string]any) {
		if v, ok := m[from]; ok {
			dst[to] = v
		}
	}
	for from, to := range map[string]string{"_ci": "company_id", "_cr": "caller_number_raw", "_cl": "caller_number",
		"_se": "state", "_st": "start_time", "_et": "end_time", "_dr": "duration", "_ev": "event", "_su": "status",
		"_fn": "filename", "_fu": "fileurl", "_dn": "department_name", "_pm": "additional_parameters", "_ty": "type"} {
		rename(from, to, ac, src)
	}
	legs := []any{}
	for _, l := range list(ac["_ld"]) {
		lm, ok := l.(map[string]any)
		if !ok {
			continue
		}
		out := map[string]any{}
		for _, k := range []string{"_rst", "_ds", "_did"} {
			rename(k, k, lm, out)
		}
		rename("_ac", "action", lm, out)
		rename("_dr", "duration", lm, out)
		by := []any{}
		for _, a := range list(lm["_rr"]) {
			am, ok := a.(map[string]any)
			if !ok {
				continue
			}
			u := map[string]any{}
			for from, to := range map[string]string{"_id": "user_id", "_na": "name", "_em": "email", "_ex": "extension",
				"_ct": "contact_number_raw", "_nr": "contact_number"} {
				rename(from, to, am, u)
			}
			by = append(by, u)
		}
		out["received_by"] = by
		legs = append(legs, out)
	}
	src["log_details"] = legs
	return src
}

func list(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case map[string]any:
		return []any{x}
	case string:
		var l []any
		if json.Unmarshal([]byte(x), &l) == nil {
			return l
		}
	}
	return nil
}

func decodeMap(raw []byte) (map[string]any, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// restamp moves an afterCall's times so that the call ends at `at` ("now" or RFC 3339),
// keeping its durations: a sample recorded "as if it just happened".
func restamp(raw []byte, at string, now time.Time) ([]byte, error) {
	end := now
	if at != "now" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return nil, fmt.Errorf("at=%q: use now or an RFC 3339 time", at)
		}
		end = t
	}
	m, err := decodeMap(raw)
	if err != nil {
		return nil, err
	}
	oldEnd, ok := epoch(m["_et"])
	if !ok {
		if oldEnd, ok = epoch(m["_st"]); !ok {
			oldEnd = end.Unix()
		}
	}
	delta := end.Unix() - oldEnd
	shift := func(m map[string]any, k string, scale int64) {
		if v, ok := epoch(m[k]); ok {
			m[k] = json.Number(strconv.FormatInt(v*scale+delta*scale, 10))
		}
	}
	for _, k := range []string{"_st", "_et", "_ts"} {
		shift(m, k, 1)
	}
	if v, ok := epoch(m["_ms"]); ok {
		m["_ms"] = json.Number(strconv.FormatInt(v+delta*1000, 10))
	}
	if _, ok := m["_st"]; !ok {
		m["_st"] = json.Number(strconv.FormatInt(end.Unix(), 10))
		m["_et"] = m["_st"]
	}
	legs := list(m["_ld"]) // decoded when double-encoded, and stored back decoded
	for _, l := range legs {
		lm, ok := l.(map[string]any)
		if !ok {
			continue
		}
		shift(lm, "_st", 1)
		shift(lm, "_et", 1)
		if s, ok := lm["_rst"].(string); ok {
			if t, err := time.Parse("2006-01-02 15:04:05", s); err == nil {
				lm["_rst"] = t.Add(time.Duration(delta) * time.Second).Format("2006-01-02 15:04:05")
			}
		}
	}
	if len(legs) > 0 {
		m["_ld"] = legs
	}
	return json.Marshal(m)
}

// renumber gives an afterCall another call id: the `_pm` ui, and a log id (`_ai`)
// derived from it.
func renumber(raw []byte, callID string) ([]byte, error) {
	m, err := decodeMap(raw)
	if err != nil {
		return nil, err
	}
	pm := []any{}
	for _, p := range list(m["_pm"]) {
		if pmap, ok := p.(map[string]any); ok && fmt.Sprint(pmap["ky"]) == "ui" {
			continue
		}
		pm = append(pm, p)
	}
	m["_pm"] = append([]any{map[string]any{"ky": "ui", "vl": callID}}, pm...)
	h := sha256.Sum256([]byte(callID))
	m["_ai"] = hex.EncodeToString(h[:8])
	return json.Marshal(m)
}

// epoch reads a Unix time in seconds (a number or numeric string; milliseconds are scaled).
func epoch(v any) (int64, bool) {
	s := strings.TrimSpace(fmt.Sprint(v))
	if v == nil || s == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, false
	}
	if f >= 1e12 {
		f /= 1000
	}
	return int64(f), true
}
