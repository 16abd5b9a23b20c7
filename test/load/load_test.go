package main

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/myoperator"
)

// Each generated body is the sample afterCall as MyOperator posts it, made a new call:
// the form decodes, the JSON parses, and the UID and log id are the ones given.
func TestAfterCallBodiesAreNewCalls(t *testing.T) {
	_, gen, sample, err := loadAfterCall()
	require.NoError(t, err)
	assert.Len(t, sample, 950, "the 951-byte sample the issue measures with, less its newline")
	for _, id := range []string{"ld.abc.1", "ld.abc.2"} {
		form, err := url.ParseQuery(string(gen.body(id)))
		require.NoError(t, err)
		l, err := myoperator.ParseAfterCall("acme", []byte(form.Get("myoperator")), time.Now())
		require.NoError(t, err)
		assert.Equal(t, id, l.CallID)
		assert.Equal(t, id, l.LogID)
		require.NotNil(t, l.Agent)
		assert.Equal(t, sampleAgent, l.Agent.ID)
	}
}

func TestCommandDeltaPerRequest(t *testing.T) {
	before := map[string]int64{"get": 10, "hset": 5, "info": 3}
	after := map[string]int64{"get": 30, "hset": 45, "info": 4, "eval": 10}
	d := commandDelta(before, after)
	assert.Equal(t, map[string]int64{"get": 20, "hset": 40, "eval": 10}, d, "INFO is the measurement's own")
	assert.Equal(t, "7.0 (hset 4.0, get 2.0, eval 1.0)", perRequest(d, 10))
	assert.Equal(t, "n/a", perRequest(d, 0))
}

func TestWrkSummary(t *testing.T) {
	out := `Running 10s test @ http://127.0.0.1:1/x
  Latency Distribution
     50%    3.10ms
     75%    4.00ms
     90%    5.20ms
     99%   12.34ms
  90000 requests in 10.00s, 9.00MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   9000.12
`
	assert.Equal(t, "9000.12 req/s  p50 3.10ms  p90 5.20ms  p99 12.34ms  non-2xx 12", wrkSummary(out))
}

func TestResultPercentiles(t *testing.T) {
	r := &result{window: time.Second, ok: 4, lat: []time.Duration{1 * time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 100 * time.Millisecond}}
	assert.Equal(t, 2*time.Millisecond, r.pct(.5))
	assert.Equal(t, 3*time.Millisecond, r.pct(.9))
	assert.Equal(t, 100*time.Millisecond, r.pct(1))
	assert.InDelta(t, 4.0, r.rps(), 0.001)
}
