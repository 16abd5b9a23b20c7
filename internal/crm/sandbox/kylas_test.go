package sandbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// client talks to a sandbox the way an adapter (or curl in a demo) would.
type client struct {
	t      *testing.T
	url    string
	key    string
	bearer string // the marketplace app's OAuth token, sent when set
}

// start serves a Kylas sandbox. Unless opts seed their own, it has the users and the
// contact syncBody names (owners 42 and 43, contact 101): the sandbox refuses a call
// log whose owner or related record it does not have.
func start(t *testing.T, opts sandbox.KylasOptions) (*sandbox.Kylas, *client) {
	t.Helper()
	if opts.Seed == 0 {
		opts.Seed = 7
	}
	if opts.Users == nil {
		opts.Users = []sandbox.KylasUser{{ID: 42, FirstName: "Asha", LastName: "Rao", Active: true},
			{ID: 43, FirstName: "Ravi", LastName: "Rao", Active: true}}
	}
	if opts.Contacts == nil {
		opts.Contacts = []sandbox.KylasPerson{{ID: 101, FirstName: "Meera", LastName: "Shah",
			PhoneNumbers: []sandbox.KylasPhone{{Type: "MOBILE", Value: "9000000101", DialCode: "+91", Primary: true}}}}
	}
	k := sandbox.NewKylas(opts)
	srv := httptest.NewServer(k)
	t.Cleanup(srv.Close)
	return k, &client{t: t, url: srv.URL, key: "demo-crm-key", bearer: "demo-kylas-oauth"}
}

// do sends body (a string or a value to encode) and decodes the answer into a map.
func (c *client) do(method, path string, body any) (int, map[string]any, http.Header) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(c.t, err)
		r = strings.NewReader(string(data))
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.url+path, r)
	require.NoError(c.t, err)
	if c.key != "" {
		req.Header.Set("api-key", c.key)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if len(data) > 0 {
		require.NoError(c.t, json.Unmarshal(data, &out), "body: %s", data)
	}
	return resp.StatusCode, out, resp.Header
}

func syncBody(owner any, remoteID string) map[string]any {
	return map[string]any{
		"ownerId": owner, "remoteId": remoteID, "outcome": "connected", "callType": "incoming",
		"startTime": "2026-03-14T09:26:53Z", "endTime": "2026-03-14T15:00:28+05:30", "duration": 95,
		"phoneNumber": "+919711636496", "callRecording": "https://r.example/a.mp3",
		"relatedTo": map[string]any{"id": 101, "entity": "contact"},
		"notes":     []map[string]any{{"description": "hello"}},
	}
}

// plainBody is a valid body of POST /v1/call-logs (the api-key route): no owner or
// remoteId, relatedTo an object, the recording {url, fileName, data}, times in UTC.
func plainBody() map[string]any {
	b := syncBody(nil, "")
	delete(b, "ownerId")
	delete(b, "remoteId")
	b["endTime"] = "2026-03-14T09:28:28.000Z"
	b["callRecording"] = map[string]any{"url": "https://r.example/a.mp3", "fileName": "a.mp3", "data": ""}
	return b
}

func TestSyncCreatesOwnedRecord(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{Users: []sandbox.KylasUser{{ID: 42, FirstName: "Asha", LastName: "Rao"}}})
	st, rec, _ := c.do("POST", "/v1/call-logs/sync", syncBody(42, "uid-1"))
	require.Equal(t, http.StatusCreated, st, "%v", rec)
	assert.Equal(t, map[string]any{"id": 42.0, "name": "Asha Rao"}, rec["owner"])
	assert.Equal(t, "2026-03-14T09:26:53.000Z", rec["startTime"])
	assert.Equal(t, "2026-03-14T09:30:28.000Z", rec["endTime"], "normalised to UTC")
	assert.Equal(t, map[string]any{"url": "https://r.example/a.mp3"}, rec["callRecording"], "a bare URL is accepted")
	assert.Equal(t, []any{map[string]any{"id": 101.0, "entity": "contact"}}, rec["relatedTo"], "an object becomes a list")

	// Plain create: owned by the key's user whatever the body says; no remoteId.
	plain := plainBody()
	plain["ownerId"], plain["remoteId"] = 42, "uid-3"
	st, rec, _ = c.do("POST", "/v1/call-logs", plain)
	require.Equal(t, http.StatusCreated, st, "%v", rec)
	assert.Equal(t, map[string]any{"id": 1.0, "name": "API User"}, rec["owner"], "the key's user, not in Users: named as /users/me names it")
	assert.Nil(t, rec["remoteId"])
	assert.Equal(t, map[string]any{"url": "https://r.example/a.mp3", "fileName": "a.mp3"}, rec["callRecording"])

	recs := k.Records()
	require.Len(t, recs, 2)
	assert.Equal(t, []string{"sync", "create"}, []string{recs[0].Route, recs[1].Route})
}

func TestSyncValidation(t *testing.T) {
	t.Parallel()
	_, c := start(t, sandbox.KylasOptions{})
	for name, tc := range map[string]struct {
		mutate func(b map[string]any)
		field  string
	}{
		"no owner":        {func(b map[string]any) { delete(b, "ownerId") }, "ownerId"},
		"string owner":    {func(b map[string]any) { b["ownerId"] = "42" }, "ownerId"},
		"negative owner":  {func(b map[string]any) { b["ownerId"] = -1 }, "ownerId"},
		"no outcome":      {func(b map[string]any) { delete(b, "outcome") }, "outcome"},
		"bad outcome":     {func(b map[string]any) { b["outcome"] = "answered" }, "outcome"},
		"bad callType":    {func(b map[string]any) { b["callType"] = "inbound" }, "callType"},
		"bad startTime":   {func(b map[string]any) { b["startTime"] = "14/03/2026" }, "startTime"},
		"fraction":        {func(b map[string]any) { b["duration"] = 1.5 }, "duration"},
		"bad relatedTo":   {func(b map[string]any) { b["relatedTo"] = []any{map[string]any{"id": 1, "entity": "account"}} }, "relatedTo"},
		"ftp recording":   {func(b map[string]any) { b["callRecording"] = "ftp://r.example/a.mp3" }, "callRecording.url"},
		"empty recording": {func(b map[string]any) { b["callRecording"] = "" }, "callRecording.url"},
		"typed wrong":     {func(b map[string]any) { b["remoteId"] = 12 }, "remoteId"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := syncBody(42, "x")
			tc.mutate(b)
			st, e, _ := c.do("POST", "/v1/call-logs/sync", b)
			require.Equal(t, http.StatusBadRequest, st)
			assert.Equal(t, "invalid_request", e["code"])
			fields := []string{}
			for _, f := range e["fieldErrors"].([]any) {
				fields = append(fields, f.(map[string]any)["field"].(string))
			}
			assert.Contains(t, fields, tc.field)
		})
	}
	st, _, _ := c.do("POST", "/v1/call-logs/sync", "{not json")
	assert.Equal(t, http.StatusBadRequest, st)
}

func TestDuplicatesAreStoredAndCounted(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{})
	for range 3 {
		st, _, _ := c.do("POST", "/v1/call-logs/sync", syncBody(42, "same"))
		require.Equal(t, http.StatusCreated, st)
	}
	assert.Len(t, k.Records(), 3)
	assert.Equal(t, 2, k.Stats().Duplicates)
}

func TestUpdateAndRead(t *testing.T) {
	t.Parallel()
	_, c := start(t, sandbox.KylasOptions{})
	_, rec, _ := c.do("POST", "/v1/call-logs/sync", syncBody(42, "u"))
	id := int64(rec["id"].(float64))

	b := syncBody(nil, "u")
	b["callRecording"] = "https://r.example/b.mp3"
	st, rec, _ := c.do("PUT", fmt.Sprintf("/v1/call-logs/%d", id), b)
	require.Equal(t, http.StatusOK, st, "%v", rec)
	assert.Equal(t, 42.0, rec["owner"].(map[string]any)["id"], "owner kept")
	assert.Equal(t, map[string]any{"url": "https://r.example/b.mp3"}, rec["callRecording"])

	b["ownerId"] = 43
	_, rec, _ = c.do("PUT", fmt.Sprintf("/v1/call-logs/%d", id), b)
	assert.Equal(t, 43.0, rec["owner"].(map[string]any)["id"], "owner changed when given")

	st, rec, _ = c.do("GET", fmt.Sprintf("/v1/call-logs/%d", id), nil)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, float64(id), rec["id"])

	st, _, _ = c.do("PUT", "/v1/call-logs/99999", b)
	assert.Equal(t, http.StatusNotFound, st)
	st, _, _ = c.do("GET", "/v1/call-logs/99999", nil)
	assert.Equal(t, http.StatusNotFound, st)
}

func TestListing(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{})
	leads := []int64{k.AddLead(sandbox.KylasPerson{LastName: "A"}), k.AddLead(sandbox.KylasPerson{LastName: "B"})}
	for i := range 5 {
		b := syncBody(42, fmt.Sprint(i))
		b["relatedTo"] = map[string]any{"id": leads[i%2], "entity": "lead"}
		st, rec, _ := c.do("POST", "/v1/call-logs/sync", b)
		require.Equal(t, http.StatusCreated, st, "%v", rec)
	}
	_, pg, _ := c.do("GET", "/v1/call-logs?page=2&size=2", nil)
	assert.Equal(t, 5.0, pg["totalElements"])
	assert.Equal(t, 3.0, pg["totalPages"])
	assert.Len(t, pg["content"], 2)
	assert.Equal(t, "2", pg["content"].([]any)[0].(map[string]any)["remoteId"])

	_, pg, _ = c.do("GET", fmt.Sprintf("/v1/call-logs?relatedToId=%d&relatedToType=lead", leads[1]), nil)
	assert.Equal(t, 2.0, pg["totalElements"])
	_, pg, _ = c.do("GET", fmt.Sprintf("/v1/call-logs?relatedToId=%d&relatedToType=contact", leads[1]), nil)
	assert.Equal(t, 0.0, pg["totalElements"])

	st, _, _ := c.do("GET", "/v1/call-logs?page=0", nil)
	assert.Equal(t, http.StatusBadRequest, st, "pages count from 1")
	st, _, _ = c.do("GET", "/v1/call-logs?size=1001", nil)
	assert.Equal(t, http.StatusBadRequest, st)
}

func search(c *client, entity, term string) (int, []any) {
	st, pg, _ := c.do("POST", "/v1/search/"+entity+"?page=0&size=10", map[string]any{
		"fields": []string{"id", "phoneNumbers"},
		"jsonRule": map[string]any{"condition": "AND", "valid": true, "rules": []any{map[string]any{
			"id": "multi_field", "field": "multi_field", "type": "multi_field", "input": "multi_field",
			"operator": "multi_field", "value": term,
		}}},
	})
	content, _ := pg["content"].([]any)
	return st, content
}

func TestSearch(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{Contacts: []sandbox.KylasPerson{}}) // only the people added here
	ph := func(v, dial string) []sandbox.KylasPhone {
		return []sandbox.KylasPhone{{Type: "MOBILE", Value: v, DialCode: dial, Primary: true}}
	}
	lead := k.AddLead(sandbox.KylasPerson{FirstName: "Ravi", LastName: "Kumar", PhoneNumbers: ph("9711636496", "+91")})
	contact := k.AddContact(sandbox.KylasPerson{FirstName: "Meera", PhoneNumbers: ph("+919822334455", "")})
	assert.NotEqual(t, lead, contact)

	for _, tc := range []struct {
		entity, term string
		want         []int64
	}{
		{"lead", "9711636496", []int64{lead}},
		{"lead", "+919711636496", nil}, // the stored value is national: Kylas's search need not join the dial code
		{"lead", "919711636496", nil},
		{"lead", "97116 36496", []int64{lead}},
		{"lead", "+449711636496", nil},
		{"lead", "ravi", []int64{lead}},
		{"contact", "9711636496", nil},
		{"contact", "9822334455", []int64{contact}},
		{"contact", "+919822334455", []int64{contact}},
		{"contact", "", []int64{contact}},
	} {
		st, content := search(c, tc.entity, tc.term)
		require.Equal(t, http.StatusOK, st)
		var got []int64
		for _, p := range content {
			got = append(got, int64(p.(map[string]any)["id"].(float64)))
		}
		assert.Equal(t, tc.want, got, "%s %q", tc.entity, tc.term)
	}
	_, content := search(c, "lead", "9711636496")
	assert.Equal(t, []any{map[string]any{"type": "MOBILE", "value": "9711636496", "dialCode": "+91", "primary": true}},
		content[0].(map[string]any)["phoneNumbers"])

	st, _, _ := c.do("POST", "/v1/search/lead", map[string]any{"jsonRule": map[string]any{"rules": []any{
		map[string]any{"id": "firstName", "operator": "equal", "value": "Ravi"}}}})
	assert.Equal(t, http.StatusBadRequest, st, "unsupported rules are refused, not ignored")
}

func TestAuth(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{APIKey: "k1"})
	c.key = "wrong"
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/call-logs/sync"}, {"GET", "/v1/call-logs"}, {"GET", "/v1/users/1"}, {"POST", "/v1/search/lead"},
	} {
		st, e, _ := c.do(r.method, r.path, "{}")
		assert.Equal(t, http.StatusUnauthorized, st, r.path)
		assert.Equal(t, "unauthorized", e["code"])
		assert.NotEmpty(t, e["message"])
	}
	s := k.Stats()
	assert.Equal(t, 4, s.Rejected)
	assert.Equal(t, 2, s.Requests, "listings and user reads are not adapter calls")
}

func TestUsers(t *testing.T) {
	t.Parallel()
	_, c := start(t, sandbox.KylasOptions{Users: []sandbox.KylasUser{{ID: 1, FirstName: "Key", LastName: "Owner", Active: true}}})
	control := &client{t: t, url: c.url} // no api-key: control endpoints need none

	st, u, _ := control.do("PUT", "/users/42", map[string]any{"firstName": "Asha", "lastName": "Rao", "email": "asha@x.com"})
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, true, u["active"], "active defaults to true")
	control.do("PUT", "/users/43", map[string]any{"firstName": "Ravi", "lastName": "Rao", "email": "ravi@x.com", "active": false})

	st, u, _ = c.do("GET", "/v1/users/42", nil)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, map[string]any{"id": 42.0, "firstName": "Asha", "lastName": "Rao", "email": "asha@x.com", "active": true}, u)

	_, l, _ := c.do("GET", "/v1/users/lookup?q=name:rao", nil)
	assert.Equal(t, []any{map[string]any{"id": 42.0, "name": "Asha Rao"}, map[string]any{"id": 43.0, "name": "Ravi Rao"}}, l["content"])

	// The lookup is the only listing: paged from 0, at most 50 a page.
	_, pg, _ := c.do("GET", "/v1/users/lookup?q=name:&page=1&size=2", nil)
	assert.Equal(t, 3.0, pg["totalElements"])
	assert.Equal(t, 2.0, pg["totalPages"])
	assert.Len(t, pg["content"], 1)
	st, e, _ := c.do("GET", "/v1/users/lookup?q=name:&size=51", nil)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "invalid_request", e["code"])
	st, _, _ = c.do("GET", "/v1/users?page=1&size=2", nil)
	assert.Equal(t, http.StatusNotFound, st, "no undocumented listing")
	_, me, _ := c.do("GET", "/v1/users/me", nil)
	assert.Equal(t, 1.0, me["id"], "the key's user")

	st, _, _ = control.do("DELETE", "/users/42", nil)
	assert.Equal(t, http.StatusNoContent, st)
	st, _, _ = control.do("DELETE", "/users/42", nil)
	assert.Equal(t, http.StatusNotFound, st)
	st, _, _ = c.do("GET", "/v1/users/42", nil)
	assert.Equal(t, http.StatusNotFound, st)
	st, _, _ = control.do("PUT", "/users/abc", map[string]any{})
	assert.Equal(t, http.StatusBadRequest, st)
	st, _, _ = control.do("PUT", "/users/5", map[string]any{"name": "typo"})
	assert.Equal(t, http.StatusBadRequest, st)
}

func TestPeopleControl(t *testing.T) {
	t.Parallel()
	_, c := start(t, sandbox.KylasOptions{})
	control := &client{t: t, url: c.url}
	st, _, _ := control.do("PUT", "/contacts/900", map[string]any{"firstName": "Demo", "phoneNumbers": []any{map[string]any{"value": "+919711636496"}}})
	require.Equal(t, http.StatusOK, st)
	_, content := search(c, "contact", "9711636496")
	require.Len(t, content, 1)
	assert.Equal(t, 900.0, content[0].(map[string]any)["id"])
	_, content = search(c, "lead", "9711636496")
	assert.Empty(t, content)
}

func TestFaults(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{})
	control := &client{t: t, url: c.url}
	for _, bad := range []string{`{"error_rate":1.5}`, `{"error_rate":0.5,"status":404}`, `{"errorRate":0.5}`, `{"latency_ms":-1}`, `nope`} {
		st, _, _ := control.do("PUT", "/faults", bad)
		assert.Equal(t, http.StatusBadRequest, st, bad)
	}

	st, _, _ := control.do("PUT", "/faults", `{"error_rate":1,"status":429,"latency_ms":30}`)
	require.Equal(t, http.StatusOK, st)
	_, f, _ := control.do("GET", "/faults", nil)
	assert.Equal(t, map[string]any{"error_rate": 1.0, "status": 429.0, "latency_ms": 30.0}, f)

	began := time.Now()
	st, e, h := c.do("POST", "/v1/call-logs/sync", syncBody(42, "x"))
	assert.Equal(t, http.StatusTooManyRequests, st)
	assert.GreaterOrEqual(t, time.Since(began), 30*time.Millisecond, "latency applies")
	assert.Equal(t, "1", h.Get("X-RateLimit-Retry-After"), "Kylas says when to retry in X-RateLimit-Retry-After")
	assert.Empty(t, h.Values("Retry-After"), "Kylas documents no Retry-After")
	assert.NotEmpty(t, e["code"])
	assert.NotEmpty(t, e["message"])

	st, _, _ = c.do("GET", "/v1/call-logs", nil)
	assert.Equal(t, http.StatusOK, st, "listings are never faulted")

	st, _, _ = control.do("PUT", "/faults", `{}`)
	require.Equal(t, http.StatusOK, st)
	st, _, _ = c.do("POST", "/v1/call-logs/sync", syncBody(42, "x"))
	assert.Equal(t, http.StatusCreated, st)
	assert.Len(t, k.Records(), 1)

	// A partial error rate fails about that share, reproducibly for a seed.
	require.NoError(t, k.SetFaults(sandbox.Faults{ErrorRate: 0.3}))
	failed := 0
	for range 200 {
		if st, _, _ := c.do("POST", "/v1/search/lead", `{}`); st == http.StatusServiceUnavailable {
			failed++
		}
	}
	assert.InDelta(t, 60, failed, 25, "status defaults to 503")
}

func TestRateLimitAndStats(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	k, c := start(t, sandbox.KylasOptions{RateLimit: 2, Now: clock})

	st, _, h := c.do("POST", "/v1/search/lead", `{}`)
	require.Equal(t, http.StatusOK, st)
	// The headers of https://support.kylas.io/portal/en/kb/articles/kylas-api-rate-limit.
	assert.Equal(t, "2", h.Get("X-RateLimit-Replenish-Rate"))
	assert.Equal(t, "2", h.Get("X-RateLimit-Burst-Capacity"))
	assert.Equal(t, "1", h.Get("X-RateLimit-Requested-Tokens"))
	assert.Equal(t, "1", h.Get("X-RateLimit-Remaining"))
	for _, undocumented := range []string{"X-RateLimit-Limit", "X-RateLimit-Reset", "Retry-After"} {
		assert.Empty(t, h.Values(undocumented), undocumented)
	}
	c.do("POST", "/v1/call-logs/sync", syncBody(42, "a"))
	st, e, h := c.do("POST", "/v1/call-logs/sync", syncBody(42, "b"))
	assert.Equal(t, http.StatusTooManyRequests, st)
	assert.Equal(t, "rate_limit_exceeded", e["code"])
	assert.Equal(t, "1", h.Get("X-RateLimit-Retry-After"))
	assert.Empty(t, h.Values("Retry-After"))
	assert.Equal(t, "0", h.Get("X-RateLimit-Remaining"))
	c.do("GET", "/v1/call-logs", nil) // not limited, not counted
	c.do("GET", "/v1/call-logs", nil)

	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	_, rec, _ := c.do("POST", "/v1/call-logs/sync", syncBody(42, "b"))
	id := int64(rec["id"].(float64))
	st, _, _ = c.do("PUT", fmt.Sprintf("/v1/call-logs/%d", id), syncBody(42, "b"))
	assert.Equal(t, http.StatusOK, st)

	control := &client{t: t, url: c.url}
	_, s, _ := control.do("GET", "/stats", nil)
	assert.Equal(t, map[string]any{
		"requests":   5.0,
		"max_rps_1s": 3.0,
		"rejected":   1.0,
		"duplicates": 0.0, "lost": 0.0,
		"by_endpoint": map[string]any{
			"POST /v1/search/lead":    1.0,
			"POST /v1/call-logs/sync": 3.0,
			"PUT /v1/call-logs/{id}":  1.0,
		},
	}, s)

	k.Reset()
	assert.Empty(t, k.Records())
	assert.Zero(t, k.Stats().Requests)
}

func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			st, _, _ := c.do("POST", "/v1/call-logs/sync", syncBody(42, fmt.Sprint(i)))
			assert.Equal(t, http.StatusCreated, st)
			c.do("GET", "/stats", nil)
			_ = k.Records()
		})
	}
	wg.Wait()
	ids := map[int64]bool{}
	for _, r := range k.Records() {
		ids[r.ID] = true
	}
	assert.Len(t, ids, 20)
}
