package sandbox_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// logSearch posts a call-log search with one startTime window rule.
func logSearch(c *client, query string, rules ...map[string]any) (int, map[string]any) {
	c.t.Helper()
	st, body, _ := c.do(http.MethodPost, "/v1/call-logs/search"+query,
		map[string]any{"fields": []string{"id"}, "jsonRule": map[string]any{"condition": "AND", "valid": true, "rules": rules}})
	return st, body
}

var window = map[string]any{"id": "startTime", "field": "startTime", "type": "date", "operator": "between",
	"value": []string{"2026-03-14T09:20:00.000Z", "2026-03-14T09:30:00.000Z"}, "timeZone": "Etc/UTC"}

func TestKylasCallLogSearchIsStrict(t *testing.T) {
	t.Parallel()
	clock := newClock()
	k, c := start(t, sandbox.KylasOptions{Now: clock.now})
	st, _, _ := c.do(http.MethodPost, "/v1/call-logs/sync", syncBody(42, "uid-1"))
	require.Equal(t, http.StatusCreated, st)

	st, body := logSearch(c, "?page=1&size=100&sort=createdAt,desc", window)
	require.Equal(t, http.StatusOK, st, "%v", body)
	assert.EqualValues(t, 1, body["totalElements"])
	hit := body["content"].([]any)[0].(map[string]any)
	assert.Equal(t, "uid-1", hit["remoteId"])

	for _, tc := range []struct {
		name, query string
		rule        map[string]any
		status      int
		code        string
	}{
		{"no sort is a 404", "?page=1&size=100", window, http.StatusNotFound, "not_found"},
		{"pages count from 1", "?page=0&size=100&sort=createdAt,desc", window, http.StatusBadRequest, "invalid_request"},
		{"size at most 100", "?page=1&size=101&sort=createdAt,desc", window, http.StatusBadRequest, "invalid_request"},
		{"remoteId is not filterable", "?page=1&size=10&sort=createdAt,desc",
			map[string]any{"id": "remoteId", "field": "remoteId", "type": "string", "operator": "equal", "value": "uid-1"}, http.StatusBadRequest, "invalid_request"},
		{"date operators only on dates", "?page=1&size=10&sort=createdAt,desc",
			map[string]any{"id": "startTime", "field": "startTime", "type": "date", "operator": "equal", "value": "2026-03-14T09:26:53Z"}, http.StatusBadRequest, "invalid_request"},
	} {
		st, body := logSearch(c, tc.query, tc.rule)
		assert.Equal(t, tc.status, st, tc.name)
		assert.Equal(t, tc.code, body["code"], tc.name)
	}

	// A record shows in the search only search_lag_ms after it was stored.
	clock.advance(time.Second)
	require.NoError(t, k.SetFaults(sandbox.Faults{SearchLagMS: 300}))
	st, _, _ = c.do(http.MethodPost, "/v1/call-logs/sync", syncBody(42, "uid-2"))
	require.Equal(t, http.StatusCreated, st)
	_, body = logSearch(c, "?page=1&size=100&sort=createdAt,desc", window)
	assert.EqualValues(t, 1, body["totalElements"], "the new record is not indexed yet")
	clock.advance(300 * time.Millisecond)
	_, body = logSearch(c, "?page=1&size=100&sort=createdAt,desc", window)
	assert.EqualValues(t, 2, body["totalElements"])
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A lost response: the write is applied, the connection closes with no answer.
func TestLostResponses(t *testing.T) {
	t.Parallel()
	k, c := start(t, sandbox.KylasOptions{})
	require.NoError(t, k.SetFaults(sandbox.Faults{LostResponseRate: 1}))
	for range 2 {
		b, _ := json.Marshal(syncBody(42, "uid-lost"))
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, c.url+"/v1/call-logs/sync", bytes.NewReader(b))
		req.Header.Set("api-key", c.key)
		req.Header.Set("Authorization", "Bearer "+c.bearer)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		require.Error(t, err, "no answer must come back")
	}
	assert.Len(t, k.Records(), 2, "each lost write was applied")
	st := k.Stats()
	assert.Equal(t, 1, st.Duplicates, "the second create of uid-lost is a duplicate")
	assert.Equal(t, 2, st.Lost)
	// Searches never lose their answer.
	code, _ := logSearch(c, "?page=1&size=100&sort=createdAt,desc", window)
	assert.Equal(t, http.StatusOK, code)

	z, zc := startZoho(t, sandbox.ZohoOptions{})
	require.NoError(t, z.SetFaults(sandbox.Faults{LostResponseRate: 1}))
	b, _ := json.Marshal(data(zcall("z-lost", nil)))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, zc.url+"/crm/v8/Calls", bytes.NewReader(b))
	req.Header.Set("Authorization", "Zoho-oauthtoken "+zc.token)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err)
	assert.Len(t, z.Records(), 1)
	assert.Equal(t, 1, z.Stats().Lost)
}

func coql(c *zclient, q string) (int, map[string]any) {
	c.t.Helper()
	st, body, _ := c.do(http.MethodPost, "/crm/v8/coql", map[string]any{"select_query": q})
	return st, body
}

func TestZohoCOQLIsStrict(t *testing.T) {
	t.Parallel()
	clock := newClock()
	z, c := startZoho(t, sandbox.ZohoOptions{Now: clock.now})
	for _, id := range []string{"a-1", "a-2"} {
		st, _, _ := c.do(http.MethodPost, "/crm/v8/Calls", data(zcall(id, func(m map[string]any) {
			m["Subject"] = "Incoming call [" + id + "]"
		})))
		require.Equal(t, http.StatusCreated, st)
	}
	const win = "Call_Start_Time between '2026-03-14T14:50:00+05:30' and '2026-03-14T15:00:00+05:30'"
	st, body := coql(c, "select id, Subject from Calls where (Subject like '%a-2%' and "+win+") limit 200")
	require.Equal(t, http.StatusOK, st, "%v", body)
	rows := body["data"].([]any)
	require.Len(t, rows, 1)
	assert.Equal(t, "Incoming call [a-2]", rows[0].(map[string]any)["Subject"])

	st, body = coql(c, "select id from Calls where Subject = 'nothing'")
	assert.Equal(t, http.StatusNoContent, st, "%v", body)

	for name, q := range map[string]string{
		"multi-line field in criteria":       "select id from Calls where Description like '%Call ID: a-1%'",
		"three criteria without brackets":    "select id from Calls where Subject = 'x' and Call_Type = 'Inbound' and Owner = '1'",
		"limit over 2000":                    "select id from Calls where Subject = 'x' limit 2001",
		"unknown column":                     "select id from Calls where Remote_Id = 'a-1'",
		"like with a wildcard in the middle": "select id from Calls where Subject like 'In%a-1'",
		"datetime not in Zoho's format":      "select id from Calls where Call_Start_Time > '2026-03-14 14:50:00'",
		"not a select":                       "delete from Calls",
	} {
		st, body := coql(c, q)
		assert.Equal(t, http.StatusBadRequest, st, name)
		assert.Equal(t, "INVALID_QUERY", body["code"], name)
	}

	// Bracketed, three criteria are fine; so is the search lag.
	clock.advance(time.Second)
	require.NoError(t, z.SetFaults(sandbox.Faults{SearchLagMS: 300}))
	st, _, _ = c.do(http.MethodPost, "/crm/v8/Calls", data(zcall("a-3", func(m map[string]any) { m["Subject"] = "x [a-3]" })))
	require.Equal(t, http.StatusCreated, st)
	q := "select id from Calls where ((Subject like '%a-3%' and Call_Type = 'Inbound') and " + win + ")"
	st, _ = coql(c, q)
	assert.Equal(t, http.StatusNoContent, st, "not indexed yet")
	clock.advance(300 * time.Millisecond)
	st, _ = coql(c, q)
	assert.Equal(t, http.StatusOK, st)
}
