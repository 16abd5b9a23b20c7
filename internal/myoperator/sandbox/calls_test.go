package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/internal/myoperator/sandbox"
)

func sample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../testdata/aftercall_answered.json")
	require.NoError(t, err)
	return string(b)
}

func call(t *testing.T, method, u, ct, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, res.Header
}

// A call recorded without a webhook is listed by the search, in the shape integrators
// read, and parses back into the same call.
func TestRecordAndSearch(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Token: "tok"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)

	st, ans, _ := call(t, http.MethodPost, srv.URL+"/calls", "application/json", sample(t))
	require.Equal(t, http.StatusCreated, st, "%v", ans)
	assert.Equal(t, "n2.1596270949.2175190", ans["call_id"])
	assert.Equal(t, false, ans["delivered"])
	assert.Contains(t, ans["note"], "?at=now", "an old sample says how to make it recent")

	// The same call as a form field, moved to end now: replaces the first.
	form := url.Values{"myoperator": {sample(t)}}.Encode()
	st, ans, _ = call(t, http.MethodPost, srv.URL+"/calls?at=now", "application/x-www-form-urlencoded", form)
	require.Equal(t, http.StatusCreated, st, "%v", ans)
	assert.Nil(t, ans["note"])
	start, err := time.Parse(time.RFC3339, ans["start_time"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(-39*time.Second), start, 5*time.Second, "ends now, lasts 39 s")
	require.Len(t, sb.Calls(), 1)

	window := func(from, to time.Time, extra string) string {
		return `{"token":"tok","from":` + itoa(from.Unix()) + `,"to":` + itoa(to.Unix()) + extra + `}`
	}
	st, page, _ := call(t, http.MethodPost, srv.URL+"/search", "application/json", window(time.Now().Add(-time.Hour), time.Now(), `,"log_from":0,"page_size":100`))
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "success", page["status"])
	data := page["data"].(map[string]any)
	assert.EqualValues(t, 1, data["total"])
	hits := data["hits"].([]any)
	require.Len(t, hits, 1)
	raw, _ := json.Marshal(hits[0])
	src := hits[0].(map[string]any)["_source"].(map[string]any)
	assert.Equal(t, "+919711636496", src["caller_number"])
	assert.Equal(t, "sales", src["department_name"])
	l, err := myoperator.ParseSearchHit("acme", raw, time.Now())
	require.NoError(t, err)
	assert.Equal(t, "n2.1596270949.2175190", l.CallID)
	assert.Equal(t, "5f114f490dbe2437", l.LogID)
	assert.Equal(t, "5cd40f6556f2f124", l.Agent.ID)
	assert.Equal(t, 39, l.Duration)

	// Outside the window: nothing.
	_, page, _ = call(t, http.MethodPost, srv.URL+"/search", "application/json", window(time.Now().Add(-3*time.Hour), time.Now().Add(-2*time.Hour), ""))
	assert.EqualValues(t, 0, page["data"].(map[string]any)["total"])

	// The token only counts in the body, as MyOperator's.
	st, page, _ = call(t, http.MethodPost, srv.URL+"/search?token=tok", "application/json", `{"from":0}`)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "This not an authorized request", page["message"])
	// page_size over 100: an application error with HTTP 200.
	st, page, _ = call(t, http.MethodPost, srv.URL+"/search", "application/json", `{"token":"tok","page_size":101}`)
	assert.Equal(t, http.StatusOK, st)
	assert.Equal(t, "error", page["status"])
	// A form body is read too.
	st, page, _ = call(t, http.MethodPost, srv.URL+"/search", "application/x-www-form-urlencoded", "token=tok&page_size=5")
	assert.Equal(t, http.StatusOK, st)
	assert.Equal(t, "success", page["status"])

	st, bad, _ := call(t, http.MethodPost, srv.URL+"/calls", "application/json", `{"_ai":"x"}`)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Contains(t, bad["message"], `"_ev" is missing`)
}

func TestSearchPagesNewestFirst(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Token: "tok"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	base := time.Now().Add(-time.Hour).Unix()
	for i := range 5 {
		st := base + int64(i)*60
		_, err := sb.RecordCall([]byte(`{"_ai":"log` + itoa(int64(i)) + `","_ev":1,"_su":2,"_st":` + itoa(st) + `,"_et":` + itoa(st+10) + `}`))
		require.NoError(t, err)
	}
	var got []string
	for off := 0; off < 5; off += 2 {
		_, page, _ := call(t, http.MethodPost, srv.URL+"/search", "application/json",
			`{"token":"tok","from":`+itoa(base)+`,"to":`+itoa(base+3600)+`,"log_from":`+itoa(int64(off))+`,"page_size":2}`)
		data := page["data"].(map[string]any)
		assert.EqualValues(t, 5, data["total"])
		for _, h := range data["hits"].([]any) {
			got = append(got, h.(map[string]any)["_id"].(string))
		}
	}
	assert.Equal(t, []string{"log4", "log3", "log2", "log1", "log0"}, got)
}

func TestSearchRateLimit(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Token: "tok", SearchPerMinute: 2})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	for range 2 {
		st, _, _ := call(t, http.MethodPost, srv.URL+"/search", "application/json", `{"token":"tok"}`)
		require.Equal(t, http.StatusOK, st)
	}
	st, body, h := call(t, http.MethodPost, srv.URL+"/search", "application/json", `{"token":"tok"}`)
	assert.Equal(t, http.StatusTooManyRequests, st)
	assert.Equal(t, "error", body["status"])
	assert.NotEmpty(t, h.Get("Retry-After"))
	assert.Equal(t, 3, sb.SearchRequests())
}

// deliver=true posts the afterCall webhook as MyOperator does, and logs the call too.
func TestRecordAndDeliver(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		got.Store(r.PostForm.Get("myoperator"))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(hook.Close)
	sb := sandbox.New(sandbox.Options{Token: "tok", AfterCallWebhook: hook.URL + "/webhooks/myoperator/acme/aftercall?token=x"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	st, ans, _ := call(t, http.MethodPost, srv.URL+"/calls?deliver=true&at=now", "application/json", sample(t))
	require.Equal(t, http.StatusCreated, st, "%v", ans)
	assert.Equal(t, true, ans["delivered"], "%v", ans) // webhook_error says why not
	assert.EqualValues(t, 200, ans["webhook_status"], "%v", ans)
	assert.Contains(t, got.Load(), `"n2.1596270949.2175190"`)
	require.Len(t, sb.Calls(), 1)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestRecordAsAnotherCall(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	for _, id := range []string{"n2.1700000000.41", "n2.1700000000.42"} {
		st, ans, _ := call(t, http.MethodPost, srv.URL+"/calls?at=now&call_id="+id, "application/json", sample(t))
		require.Equal(t, http.StatusCreated, st, "%v", ans)
		assert.Equal(t, id, ans["call_id"])
	}
	calls := sb.Calls()
	require.Len(t, calls, 2, "two calls, not one replaced")
	assert.NotEqual(t, calls[0].LogID, calls[1].LogID)
}

func TestSearchKey(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Token: "tok"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	for _, id := range []string{"n2.1700000000.41", "n2.1700000000.42"} {
		st, _, _ := call(t, http.MethodPost, srv.URL+"/calls?at=now&call_id="+id, "application/json", sample(t))
		require.Equal(t, http.StatusCreated, st)
	}
	_, page, _ := call(t, http.MethodPost, srv.URL+"/search", "application/json", `{"token":"tok","search_key":"n2.1700000000.42"}`)
	data := page["data"].(map[string]any)
	assert.EqualValues(t, 1, data["total"])
	_, page, _ = call(t, http.MethodPost, srv.URL+"/search", "application/json", `{"token":"tok","search_key":"9711636496"}`)
	assert.EqualValues(t, 2, page["data"].(map[string]any)["total"], "a number matches the caller")
}

// Each account has a call log of its own: a search lists only the calls of the account
// whose token it carries (as MyOperator's per-account search does), while users are
// shared; a token of no account is refused.
func TestAccountsHaveTheirOwnCallLog(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Token: "tok", MoreTokens: []string{"tok2"}})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	st, _, _ := call(t, http.MethodPost, srv.URL+"/calls?at=now&call_id=n2.1700000000.1", "application/json", sample(t))
	require.Equal(t, http.StatusCreated, st)
	_, err := sb.RecordCallIn("tok2", []byte(strings.Replace(sample(t), "n2.1596270949.2175190", "n2.1700000000.2", 1)))
	require.NoError(t, err)
	_, err = sb.RecordCallIn("nobody", []byte(sample(t)))
	require.Error(t, err)

	ids := func(token string) []string {
		st, page, _ := call(t, http.MethodPost, srv.URL+"/search", "application/json", `{"token":"`+token+`","from":0}`)
		require.Equal(t, http.StatusOK, st, "%v", page)
		var out []string
		for _, h := range page["data"].(map[string]any)["hits"].([]any) {
			src := h.(map[string]any)["_source"].(map[string]any)
			for _, kv := range src["additional_parameters"].([]any) {
				if kv.(map[string]any)["ky"] == "ui" {
					out = append(out, kv.(map[string]any)["vl"].(string))
				}
			}
		}
		return out
	}
	assert.Equal(t, []string{"n2.1700000000.1"}, ids("tok"))
	assert.Equal(t, []string{"n2.1700000000.2"}, ids("tok2"))
	st, _, _ = call(t, http.MethodPost, srv.URL+"/search", "application/json", `{"token":"tok3"}`)
	assert.Equal(t, http.StatusBadRequest, st)
	st, _, _ = call(t, http.MethodGet, srv.URL+"/user?token=tok2", "", "")
	assert.Equal(t, http.StatusOK, st, "users are shared by the accounts")
}
