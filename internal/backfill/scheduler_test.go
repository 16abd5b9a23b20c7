package backfill_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/backfill"
	"github.com/calltrack/calltrack/internal/tenant"
)

func TestSchedulerRunDue(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	acme, _ := w.tenants.Get("acme")
	acme.Backfill = tenant.Backfill{Interval: 15 * time.Minute, Window: 2 * time.Hour, Settle: 5 * time.Minute}
	replicaA := &backfill.Scheduler{Service: w.service(), Jitter: 0.0001}
	replicaB := &backfill.Scheduler{Service: w.service(), Jitter: 0.0001}
	ctx := t.Context()

	w.search.add(w.now.Add(-time.Hour), "old-enough", 1)
	w.search.add(w.now.Add(-2*time.Minute), "too-young", 1) // its webhook may still come
	wait, err := replicaA.RunDue(ctx, "acme")
	require.NoError(t, err)
	assert.InDelta(t, float64(15*time.Minute), float64(wait), float64(time.Second))
	require.Len(t, w.search.asked, 1)
	assert.Equal(t, w.now.Add(-2*time.Hour), w.search.asked[0].From)
	assert.Equal(t, w.now.Add(-5*time.Minute), w.search.asked[0].To)
	assert.Equal(t, []string{"old-enough"}, ids(w.published(t)))

	// Another replica, 5 minutes later: it was done recently, so it waits for the rest.
	w.now = w.now.Add(5 * time.Minute)
	wait, err = replicaB.RunDue(ctx, "acme")
	require.NoError(t, err)
	assert.InDelta(t, float64(10*time.Minute), float64(wait), float64(time.Second))
	assert.Len(t, w.search.asked, 1, "no request")

	// 10 minutes on it is due: the young call is now old enough.
	w.now = w.now.Add(10 * time.Minute)
	_, err = replicaB.RunDue(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, []string{"old-enough", "too-young"}, ids(w.published(t)))

	// calltrack work was down 5 hours: the next run looks back to where the last ended.
	lastUntil := w.now.Add(-5 * time.Minute)
	w.now = w.now.Add(5 * time.Hour)
	_, err = replicaA.RunDue(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, lastUntil, w.search.asked[len(w.search.asked)-1].From)

	// A run elsewhere holds the lock: this replica skips.
	w.now = w.now.Add(time.Hour)
	require.NoError(t, w.rdb.Set(ctx, "ct:backfill:{acme}:lock", "other", time.Minute).Err())
	_, err = replicaA.RunDue(ctx, "acme")
	assert.ErrorIs(t, err, backfill.ErrBusy)
}
