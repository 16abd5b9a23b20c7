package latebind_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callstate"
	"github.com/calltrack/calltrack/internal/latebind"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/testenv"
)

// What an operator sees on /metrics: each tenant's parked calls and the age of the
// oldest, which keeps growing between censuses; a tenant with none shows 0 calls and no
// age; a written call leaves the count.
func TestCensusExportsParkedCallsAndOldestAge(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	state := callstate.NewRedis(env.Redis, env.Prefix)
	now := time.Now()
	for _, l := range []*call.Log{
		{Tenant: "acme", CallID: "old", ReceivedAt: now.Add(-30 * time.Hour)},
		{Tenant: "acme", CallID: "new", ReceivedAt: now.Add(-time.Minute)},
		{Tenant: "beta", CallID: "b1", ReceivedAt: now.Add(-2 * time.Hour)},
	} {
		require.NoError(t, state.AddParked(ctx, l))
	}
	m := metrics.New()
	c := &latebind.Census{State: state, Tenants: func() []string { return []string{"acme", "beta", "gamma"} }, Metrics: m.Parked}
	snap, err := c.Take(ctx)
	require.NoError(t, err)
	m.Parked.Set(snap)

	assert.NoError(t, testutil.GatherAndCompare(m.Registry, strings.NewReader(`
# HELP calltrack_parked_calls Calls parked unattributed (no mapping for the agent, no fallback owner), by tenant, at the last census.
# TYPE calltrack_parked_calls gauge
calltrack_parked_calls{tenant="acme"} 2
calltrack_parked_calls{tenant="beta"} 1
calltrack_parked_calls{tenant="gamma"} 0
`), "calltrack_parked_calls"))
	ages := map[string]float64{}
	mfs, err := m.Registry.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "calltrack_parked_oldest_age_seconds" {
			for _, s := range mf.GetMetric() {
				ages[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
			}
		}
	}
	require.Len(t, ages, 2, "no age for a tenant with nothing parked: %v", ages)
	assert.InDelta(t, (30 * time.Hour).Seconds(), ages["acme"], 60, "acme's oldest is the 30-hour-old call")
	assert.InDelta(t, (2 * time.Hour).Seconds(), ages["beta"], 60)

	require.NoError(t, state.RemoveParked(ctx, "acme", "old"))
	snap, err = c.Take(ctx)
	require.NoError(t, err)
	assert.Equal(t, metrics.ParkedTenant{Calls: 1, Oldest: snap["acme"].Oldest}, snap["acme"])
	assert.WithinDuration(t, now.Add(-time.Minute), snap["acme"].Oldest, time.Second, "the oldest is now the minute-old call")
}
