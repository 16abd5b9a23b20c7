package moapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/myoperator/sandbox"
)

func TestSearchAgainstSandbox(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Token: "tok-123"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	now := time.Now()
	for i := range 3 {
		st := now.Add(-time.Duration(i+1) * time.Minute).Unix()
		_, err := sb.RecordCall([]byte(`{"_ai":"log` + strconv.Itoa(i) + `","_ev":1,"_su":1,"_st":` + strconv.FormatInt(st, 10) + `}`))
		require.NoError(t, err)
	}
	c := moapi.New(srv.URL, "tok-123")
	page, err := c.Search(t.Context(), moapi.SearchQuery{From: now.Add(-time.Hour), To: now, PageSize: 2})
	require.NoError(t, err)
	assert.Equal(t, 3, page.Total)
	require.Len(t, page.Hits, 2)
	page, err = c.Search(t.Context(), moapi.SearchQuery{From: now.Add(-time.Hour), To: now, Offset: 2, PageSize: 2})
	require.NoError(t, err)
	require.Len(t, page.Hits, 1)
	var h struct {
		ID string `json:"_id"`
	}
	require.NoError(t, json.Unmarshal(page.Hits[0], &h))
	assert.Equal(t, "log2", h.ID, "newest first: the oldest is last")

	_, err = moapi.New(srv.URL, "wrong-token").Search(t.Context(), moapi.SearchQuery{From: now.Add(-time.Hour), To: now})
	var me *moapi.Error
	require.ErrorAs(t, err, &me)
	assert.Equal(t, http.StatusBadRequest, me.Status)
	assert.True(t, me.Permanent)
	assert.Contains(t, err.Error(), "This not an authorized request")
	assert.NotContains(t, err.Error(), "wrong-token")
}

type fakeLimiter struct {
	mu     sync.Mutex
	waits  int
	paused []time.Duration
}

func (f *fakeLimiter) Wait(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits++
	return nil
}

func (f *fakeLimiter) Pause(_ context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = append(f.paused, d)
	return nil
}

// What MyOperator may answer, and what the client makes of it.
func TestSearchAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		total      int
		hits       int
		permanent  bool
		retryAfter time.Duration // > 0: a 429
	}{
		{"success", 200, nil, `{"status":"success","code":200,"data":{"total":"2","hits":[{"_source":{}},{"_source":{}}]}}`, 2, 2, false, 0},
		{"elasticsearch shape", 200, nil, `{"status":"success","data":{"total":{"value":1},"hits":{"hits":[{"_source":{}}]}}}`, 1, 1, false, 0},
		{"empty", 200, nil, `{"status":"success","data":{"total":0,"hits":[]}}`, 0, 0, false, 0},
		{"error with HTTP 200", 200, nil, `{"status":"error","code":400,"message":"Invalid filters"}`, 0, 0, true, 0},
		{"bad token", 400, nil, `{"status":"error","code":400,"message":"This not an authorized request"}`, 0, 0, true, 0},
		{"server error", 502, nil, `<html>bad gateway</html>`, 0, 0, false, 0},
		{"429 seconds", 429, map[string]string{"Retry-After": "7"}, `{"status":"error","message":"Too many requests"}`, 0, 0, false, 7 * time.Second},
		{"429 no header", 429, nil, ``, 0, 0, false, moapi.DefaultRetryAfter},
		{"undecodable", 200, nil, `{"status":"success","data":{"hits":"x"}}`, 0, 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/search" || r.URL.RawQuery != "" {
					http.Error(w, "unexpected request", http.StatusTeapot)
					return
				}
				_ = json.NewDecoder(r.Body).Decode(&got)
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			lim := &fakeLimiter{}
			c := moapi.New(srv.URL, "tok")
			c.Limiter = lim
			from := time.Unix(1700000000, 0)
			page, err := c.Search(t.Context(), moapi.SearchQuery{From: from, To: from.Add(time.Hour), Offset: 200})
			assert.Equal(t, map[string]any{"token": "tok", "from": 1700000000.0, "to": 1700003600.0, "log_from": 200.0, "page_size": 100.0}, got,
				"parameters in a JSON body, token included")
			assert.Equal(t, 1, lim.waits, "every request waits on the shared limiter")
			if tt.status == 200 && !tt.permanent {
				require.NoError(t, err)
				assert.Equal(t, tt.total, page.Total)
				assert.Len(t, page.Hits, tt.hits)
				return
			}
			var me *moapi.Error
			require.ErrorAs(t, err, &me)
			assert.Equal(t, tt.permanent, me.Permanent, "%v", err)
			d, limited := moapi.IsRateLimited(err)
			assert.Equal(t, tt.retryAfter > 0, limited)
			if limited {
				assert.Equal(t, tt.retryAfter, d)
				assert.Equal(t, []time.Duration{tt.retryAfter}, lim.paused, "a 429 pauses every replica")
			}
		})
	}
}
