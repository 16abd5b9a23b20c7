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
	for i, l := range []*Limiter{a, b, a, b} {
		ok, next, err := l.Allow(t.Context())
		require.NoError(t, err)
		assert.True(t, ok, "request %d of an idle credential", i+1)
		assert.Zero(t, next, "request %d leaves room", i+1)
	}
	ok, next, err := a.Allow(t.Context())
	require.NoError(t, err)
	assert.True(t, ok, "the 5th goes")
	assert.Greater(t, next, time.Second, "and says the window is full")
	ok, next, err = b.Allow(t.Context())
	require.NoError(t, err)
	assert.False(t, ok, "the 6th waits for the window")
	assert.Greater(t, next, time.Second)
	assert.LessOrEqual(t, next, 1112*time.Millisecond)
	// Another credential is not held by this one's window.
	ok, next, err = New(env.Redis, env.Prefix, "kylas:beta", 5).Allow(t.Context())
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Zero(t, next)
}

// A window of n in w admits no more than n in any w, however the requests are spread:
// unlike a token bucket's burst that refills, which lets up to 2n into some w. The
// test's clock stands in for Redis's.
func TestWindowNeverAdmitsMoreThanNInAnyWindow(t *testing.T) {
	type try struct {
		at   time.Duration // since the start
		ok   bool
		next time.Duration // until the window has room again
	}
	for _, tc := range []struct {
		name  string
		tries []try
	}{
		{"spread over the minute", []try{
			{0, true, 0}, {10 * time.Second, true, 0}, {20 * time.Second, true, 0},
			{30 * time.Second, true, 0}, {40 * time.Second, true, 0}, {50 * time.Second, true, 10 * time.Second},
			{55 * time.Second, false, 5 * time.Second},
			{60 * time.Second, true, 10 * time.Second}, // the first has left the window
			{61 * time.Second, false, 9 * time.Second},
		}},
		{"a burst, then a bucket's refill time later", []try{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, time.Minute},
			{10 * time.Second, false, 50 * time.Second},
			{59 * time.Second, false, time.Second},
			{time.Minute, true, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			start := time.Now()
			var now time.Time
			l := NewWindow(env.Redis, env.Prefix, "c2c:acme:1001", 6, time.Minute).WithClock(func() time.Time { return now })
			for i, try := range tc.tries {
				now = start.Add(try.at)
				ok, next, err := l.Allow(t.Context())
				require.NoError(t, err)
				assert.Equal(t, try.ok, ok, "request %d at %s", i+1, try.at)
				assert.Equal(t, try.next, next, "request %d at %s: room again in", i+1, try.at)
			}
		})
	}
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
