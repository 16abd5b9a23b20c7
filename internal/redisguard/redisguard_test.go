package redisguard

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

// Redis without the marker is restored once, by one of several replicas at a time;
// with the marker nothing runs. Losing the data again (the marker gone) restores again.
func TestRestoreOncePerLoss(t *testing.T) {
	env := testenv.New(t)
	ctx := t.Context()
	var runs atomic.Int32
	release := make(chan struct{})
	newGuard := func() *Guard {
		g := &Guard{Redis: env.Redis, Prefix: env.Prefix, Log: zerolog.Nop()}
		g.Add(Step{Name: "mappings", Run: func(context.Context) error {
			runs.Add(1)
			<-release
			return nil
		}})
		return g
	}
	guards := []*Guard{newGuard(), newGuard(), newGuard()}
	var wg sync.WaitGroup
	restored := make([]bool, len(guards))
	for i, g := range guards {
		wg.Go(func() {
			ok, err := g.Check(ctx)
			assert.NoError(t, err)
			restored[i] = ok
		})
	}
	testenv.Eventually(t, 5*time.Second, "one replica restoring", func() bool { return runs.Load() == 1 })
	close(release)
	wg.Wait()
	assert.Equal(t, int32(1), runs.Load(), "one replica restored")
	for _, g := range guards {
		ok, err := g.Check(ctx)
		require.NoError(t, err)
		assert.True(t, ok)
		assert.False(t, g.Restoring())
	}
	assert.Equal(t, int32(1), runs.Load(), "the marker holds off further restores")

	require.NoError(t, env.Redis.Del(ctx, guards[0].markerKey()).Err()) // Redis lost its data
	ok, err := guards[1].Check(ctx)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int32(2), runs.Load())
}

// A failing step leaves the marker unset: the next check tries again.
func TestFailedRestoreIsRetried(t *testing.T) {
	env := testenv.New(t)
	fail := true
	g := &Guard{Redis: env.Redis, Prefix: env.Prefix, Log: zerolog.Nop()}
	g.Add(Step{Name: "mappings", Run: func(context.Context) error {
		if fail {
			return assert.AnError
		}
		return nil
	}})
	_, err := g.Check(t.Context())
	require.Error(t, err)
	assert.True(t, g.Restoring())
	fail = false
	ok, err := g.Check(t.Context())
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestEvictingPolicies(t *testing.T) {
	for policy, evicting := range map[string]bool{"noeviction": false, "": false, "allkeys-lru": true,
		"volatile-lru": true, "volatile-ttl": true, "allkeys-random": true} {
		assert.Equal(t, evicting, Evicting(policy), policy)
	}
	g := &Guard{policy: "volatile-lru"}
	assert.Contains(t, g.Detail(), "maxmemory-policy volatile-lru evicts keys")
	g = &Guard{policy: "noeviction"}
	assert.Empty(t, g.Detail())
}

// The policy is read from the server (services.sh runs redis-server with noeviction).
func TestCheckPolicyReadsTheServer(t *testing.T) {
	env := testenv.New(t)
	g := &Guard{Redis: env.Redis, Prefix: env.Prefix, Log: zerolog.Nop()}
	g.CheckPolicy(t.Context())
	if env.RedisKind == testenv.Embedded {
		// miniredis refuses CONFIG GET, as a managed Redis may: the policy stays unknown
		// and the error is kept (and logged), not taken for noeviction.
		require.Error(t, g.policyErr)
		assert.Empty(t, g.policy)
		return
	}
	require.NoError(t, g.policyErr)
	assert.NotEmpty(t, g.policy)
}
