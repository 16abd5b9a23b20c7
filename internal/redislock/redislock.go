// Package redislock is a lock in Redis that only its holder can extend or release, for
// work that one replica at a time must do (a tenant's user sync, a tenant's backfill).
package redislock

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLocked means another process holds the lock.
var ErrLocked = errors.New("redislock: lock held by another process")

// ErrLockLost means the lock expired and someone else may hold it now.
var ErrLockLost = errors.New("redislock: lock lost")

// Lock is a Redis lock (SET NX PX with a random token) that only its holder can
// extend or release, so a slow holder whose lock expired cannot release the next
// holder's.
type Lock struct {
	rdb   redis.UniversalClient
	key   string
	token string
}

var (
	// claimScript takes the key for a token unless another token holds it. The
	// caller's own token is the caller's: go-redis sends a command again when its
	// answer was lost, and that second run must not find the first one's claim a rival's.
	claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
	refreshScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
)

// Claim takes key for token for ttl: false while another token holds it. A claim
// that fails may have been carried out with its answer lost, so it is released (once,
// if Redis answers within 5 s) rather than left held by nobody until ttl.
func Claim(ctx context.Context, rdb redis.UniversalClient, key, token string, ttl time.Duration) (bool, error) {
	n, err := claimScript.Run(ctx, rdb, []string{key}, token, ttl.Milliseconds()).Int()
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = ReleaseToken(rctx, rdb, key, token)
		return false, fmt.Errorf("redislock: %s: %w", key, err)
	}
	return n == 1, nil
}

// ReleaseToken frees key if token still holds it (a holder whose claim lapsed does not
// free the next one's).
func ReleaseToken(ctx context.Context, rdb redis.UniversalClient, key, token string) error {
	if err := releaseScript.Run(ctx, rdb, []string{key}, token).Err(); err != nil {
		return fmt.Errorf("redislock: release %s: %w", key, err)
	}
	return nil
}

// NewToken is a random claim token.
func NewToken() string { return rand.Text() }

// Acquire takes the lock for ttl, or returns ErrLocked.
func Acquire(ctx context.Context, rdb redis.UniversalClient, key string, ttl time.Duration) (*Lock, error) {
	l := &Lock{rdb: rdb, key: key, token: NewToken()}
	ok, err := Claim(ctx, rdb, key, l.token, ttl)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrLocked
	}
	return l, nil
}

// AcquireWait retries Acquire until it succeeds or wait has passed.
func AcquireWait(ctx context.Context, rdb redis.UniversalClient, key string, ttl, wait time.Duration) (*Lock, error) {
	deadline := time.Now().Add(wait)
	for {
		l, err := Acquire(ctx, rdb, key, ttl)
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Refresh extends the lock to ttl from now; ErrLockLost when it is not ours any more.
func (l *Lock) Refresh(ctx context.Context, ttl time.Duration) error {
	n, err := refreshScript.Run(ctx, l.rdb, []string{l.key}, l.token, ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redislock: refresh %s: %w", l.key, err)
	}
	if n == 0 {
		return ErrLockLost
	}
	return nil
}

// Release frees the lock if it is still ours.
func (l *Lock) Release(ctx context.Context) error {
	return ReleaseToken(ctx, l.rdb, l.key, l.token)
}

// KeepAlive refreshes the lock every ttl/3 until stop is called; lost is cancelled
// when the lock could not be kept (the work under it should stop).
func (l *Lock) KeepAlive(ctx context.Context, ttl time.Duration) (lost context.Context, stop func()) {
	lost, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-lost.Done():
				return
			case <-t.C:
				if err := l.Refresh(lost, ttl); errors.Is(err, ErrLockLost) {
					cancel()
					return
				}
			}
		}
	}()
	return lost, func() {
		close(done)
		cancel()
	}
}
