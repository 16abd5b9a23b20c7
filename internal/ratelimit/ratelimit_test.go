package ratelimit

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

// Two replicas sharing a 5/s limit never send more than 5 requests in any second.
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

func TestPauseHoldsEveryReplica(t *testing.T) {
	env := testenv.New(t)
	a := New(env.Redis, env.Prefix, "zoho:acme", 0)
	b := New(env.Redis, env.Prefix, "zoho:acme", 0)
	require.NoError(t, a.Pause(t.Context(), 300*time.Millisecond))
	start := time.Now()
	require.NoError(t, b.Wait(t.Context()))
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)
}
