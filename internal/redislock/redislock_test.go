package redislock_test

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/redislock"
)

func TestLock(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := t.Context()

	a, err := redislock.Acquire(ctx, rdb, "k", time.Second)
	require.NoError(t, err)
	_, err = redislock.Acquire(ctx, rdb, "k", time.Second)
	assert.ErrorIs(t, err, redislock.ErrLocked)
	require.NoError(t, a.Refresh(ctx, time.Second))

	// a's lock expires and b takes it: a can neither extend nor release b's lock.
	mr.FastForward(2 * time.Second)
	b, err := redislock.Acquire(ctx, rdb, "k", time.Minute)
	require.NoError(t, err)
	assert.ErrorIs(t, a.Refresh(ctx, time.Second), redislock.ErrLockLost)
	require.NoError(t, a.Release(ctx))
	_, err = redislock.Acquire(ctx, rdb, "k", time.Second)
	assert.ErrorIs(t, err, redislock.ErrLocked, "b still holds it")
	require.NoError(t, b.Release(ctx))
	c, err := redislock.Acquire(ctx, rdb, "k", time.Second)
	require.NoError(t, err)
	require.NoError(t, c.Release(ctx))
}
