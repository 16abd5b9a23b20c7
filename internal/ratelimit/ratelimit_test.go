package ratelimit

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

// Two replicas sharing a 5/s limit never send more than 5 requests in any second
// (a rolling one, so none of the wall-clock seconds a CRM may count either).
func TestLimiterSharedAcrossReplicas(t *testing.T) {
	env := testenv.New(t)
	a := New(env.Redis, env.Prefix, "kylas:acme", 5)
	b := New(env.Redis, env.Prefix, "kylas:acme", 5)
	var mu sync.Mutex
	var sent []time.Time
	var wg sync.WaitGroup
	for i, l := range []*Limiter{a, b, a, b} {
		wg.Add(1)
		go func(i int, l *Limiter) {
			defer wg.Done()
			for j := 0; j < 3; j++ {
				require.NoError(t, l.Wait(t.Context()))
				mu.Lock()
				sent = append(sent, time.Now())
				mu.Unlock()
			}
		}(i, l)
	}
	wg.Wait()
	require.Len(t, sent, 12)
	for _, s := range sent {
		n := 0
		for _, o := range sent {
			if !o.Before(s) && o.Sub(s) < time.Second {
				n++
			}
		}
		assert.LessOrEqual(t, n, 5, "requests within one second starting at %s", s)
	}
}

// An idle credential lets a call's requests go at once, up to the limit; the next
// waits until the first leaves the window (5 in 1.11 s: 90 % of 5/s sustained).
func TestLimiterBurstWhenIdle(t *testing.T) {
	env := testenv.New(t)
	a := New(env.Redis, env.Prefix, "kylas:acme", 5)
	b := New(env.Redis, env.Prefix, "kylas:acme", 5)
	for i, l := range []*Limiter{a, b, a, b, a} {
		wait, err := l.take(t.Context())
		require.NoError(t, err)
		assert.Zero(t, wait, "request %d of an idle credential", i+1)
	}
	wait, err := b.take(t.Context())
	require.NoError(t, err)
	assert.Greater(t, wait, time.Second, "the 6th waits for the window")
	assert.LessOrEqual(t, wait, 1112*time.Millisecond)
	// Another credential is not held by this one's window.
	wait, err = New(env.Redis, env.Prefix, "kylas:beta", 5).take(t.Context())
	require.NoError(t, err)
	assert.Zero(t, wait)
}

func TestLimiterWindow(t *testing.T) {
	for _, tc := range []struct {
		perSecond float64
		n         int
		w         time.Duration
	}{
		{5, 5, 1111111 * time.Microsecond},
		{10, 10, 1111111 * time.Microsecond},
		{0.5, 1, 2222222 * time.Microsecond},
		{0, 0, 0},
	} {
		l := New(nil, "ct", "k", tc.perSecond)
		assert.Equal(t, tc.n, l.n, "%v/s", tc.perSecond)
		assert.InDelta(t, float64(tc.w), float64(l.w), float64(time.Microsecond), "%v/s", tc.perSecond)
	}
}

func TestPauseHoldsEveryReplica(t *testing.T) {
	env := testenv.New(t)
	a := New(env.Redis, env.Prefix, "zoho:acme", 0)
	b := New(env.Redis, env.Prefix, "zoho:acme", 0)
	require.NoError(t, a.Pause(t.Context(), 300*time.Millisecond))
	start := time.Now()
	require.NoError(t, b.Wait(t.Context()))
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)
}
