package overview

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/testenv"
)

// Two replicas count into the same hours; each flush adds only what grew since the
// one before.
func TestHourlyCountsAddUpReplicas(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	now := time.Date(2026, 10, 10, 9, 30, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	serve, work := metrics.New(), metrics.New()
	rs := []*Recorder{
		{Redis: env.Redis, Prefix: env.Prefix, Metrics: serve, Now: clock, Log: zerolog.Nop()},
		{Redis: env.Redis, Prefix: env.Prefix, Metrics: work, Now: clock, Log: zerolog.Nop()},
	}
	flush := func() {
		for _, r := range rs {
			require.NoError(t, r.Flush(ctx))
		}
	}
	serve.Webhooks.WithLabelValues("acme", "aftercall", "accepted").Add(3)
	serve.Webhooks.WithLabelValues("beta", "aftercall", "accepted").Add(5)
	for _, s := range []float64{0.003, 0.004, 0.02, 0.2} {
		serve.WebhookLatency.WithLabelValues("aftercall").Observe(s)
	}
	work.WriterOutcomes.WithLabelValues("acme", "log", "written").Add(2)
	work.WriterOutcomes.WithLabelValues("acme", "recording", "written").Add(9) // amendments are not calls
	work.CRMRequests.WithLabelValues("acme", "kylas", "2xx").Add(4)
	work.CRMRequests.WithLabelValues("acme", "kylas", "5xx").Add(1)
	flush()
	flush() // nothing grew: nothing added
	work.WriterOutcomes.WithLabelValues("acme", "log", "written").Add(1)
	work.WriterOutcomes.WithLabelValues("acme", "log", "unattributed").Add(1)
	flush()
	now = now.Add(time.Hour) // the next hour
	work.WriterOutcomes.WithLabelValues("acme", "log", "dead_lettered").Inc()
	flush()

	hs, err := Read(ctx, env.Redis, env.Prefix, "acme", 3, now)
	require.NoError(t, err)
	require.Len(t, hs, 3)
	assert.Equal(t, time.Date(2026, 10, 10, 8, 0, 0, 0, time.UTC), hs[0].Start)
	assert.Empty(t, hs[0].Calls)
	h9 := hs[1]
	assert.Equal(t, map[string]int64{"written": 3, "unattributed": 1}, h9.Calls)
	assert.Equal(t, map[string]int64{"accepted": 3}, h9.Webhooks, "beta's webhooks are beta's")
	assert.Equal(t, map[string]int64{"2xx": 4, "5xx": 1}, h9.CRM)
	assert.EqualValues(t, 4, h9.Answered)
	assert.InDelta(t, 5, h9.P50, 0.01, "2nd of 4 answers: the top of the 2-5 ms bucket")
	assert.Greater(t, h9.P95, 100.0)
	assert.Equal(t, map[string]int64{"dead_lettered": 1}, hs[2].Calls)
	assert.True(t, math.IsNaN(hs[2].P50), "no webhook in the hour: no answer time")
}
