package kylas_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/kylas"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// Kylas says when a 429 may be retried in X-RateLimit-Retry-After, in seconds, and
// sends no Retry-After (https://support.kylas.io/portal/en/kb/articles/kylas-api-rate-limit):
// the adapter's search waits that long before asking again, then gets its answer.
func TestSearchWaitsForRateLimitRetryAfter(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, sandbox.KylasOptions{})
	require.NoError(t, sb.SetFaults(sandbox.Faults{ErrorRate: 1, Status: http.StatusTooManyRequests}))
	var (
		mu       sync.Mutex
		answered []time.Time // when each call-log search was answered
		first    http.Header // the 429's headers
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb.ServeHTTP(w, r)
		if r.URL.Path != "/v1/call-logs/search" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		answered = append(answered, time.Now())
		if len(answered) == 1 { // only the first search is refused
			first = w.Header().Clone()
			assert.NoError(t, sb.SetFaults(sandbox.Faults{}))
		}
	}))
	t.Cleanup(srv.Close)
	a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key", BearerToken: "demo-kylas-oauth", SearchSettle: testSettle})
	require.NoError(t, err)

	_, found, err := a.FindCall(t.Context(), crmtest.NewCall("rate-1", customer, "7", call.Incoming, call.Answered))
	require.NoError(t, err, "the search is answered once the wait is over")
	assert.False(t, found)

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(answered), 2, "the refused search was asked again")
	assert.Equal(t, "1", first.Get("X-RateLimit-Retry-After"))
	assert.Empty(t, first.Values("Retry-After"), "Kylas sends no Retry-After")
	assert.GreaterOrEqual(t, answered[1].Sub(answered[0]), time.Second, "the search waited X-RateLimit-Retry-After (1 s) before asking again")
}
