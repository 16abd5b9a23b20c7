// Package ratelimit paces requests to a CRM credential across every writer replica,
// with a Redis-backed sliding-window limiter, and lets a 429's Retry-After pause the
// credential for all replicas at once.
package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter paces one CRM credential: at most n requests in any window of w, counted
// by every replica together.
type Limiter struct {
	rdb    redis.UniversalClient
	key    string
	prefix string
	n      int           // requests a window allows; 0 = unlimited
	w      time.Duration // the window
}

// Safety is the share of the nominal rate actually used: requests leave calltrack
// within the limit, but network jitter can bunch them at the CRM.
const Safety = 0.9

// New returns a limiter of perSecond requests for key (e.g. "kylas:<tenant>"), shared
// through Redis. perSecond <= 0 means unlimited (Wait returns at once unless paused).
//
// It allows n = perSecond requests (at least 1) in any window of n / (perSecond ×
// Safety): for Kylas's 5/s, 5 requests in any 1.11 s. So an idle credential sends a
// call's few requests (searches, a lead, the call log) at once instead of one per
// 222 ms, while the sustained rate stays 90 % of the limit, and no second — a
// wall-clock one or any other — sees more than the limit. That holds under both
// readings of Kylas's limit: a count per second, and the token bucket its 429 headers
// describe (X-RateLimit-Replenish-Rate, X-RateLimit-Burst-Capacity; a bucket's burst
// capacity is at least its rate, so n at once conforms): "API Key: 5 requests per
// second", https://support.kylas.io/portal/en/kb/articles/kylas-api-rate-limit.
func New(rdb redis.UniversalClient, prefix, key string, perSecond float64) *Limiter {
	l := &Limiter{rdb: rdb, key: key, prefix: prefix}
	if perSecond > 0 {
		l.n = max(1, int(math.Floor(perSecond)))
		l.w = time.Duration(float64(l.n) / (perSecond * Safety) * float64(time.Second))
	}
	return l
}

// window keeps the requests sent within the last window (a sorted set scored by Redis's
// own clock in microseconds, so replicas' clocks do not matter) and admits one more
// while they are fewer than the limit; else it answers how long until the oldest
// leaves the window. KEYS[1] the set; ARGV: limit, window (µs), a unique member.
var window = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, w = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - w)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(w / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(tonumber(oldest[2]) + w - now, 1)
`)

// Wait blocks until a request may be sent, or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		if d := l.paused(ctx); d > 0 {
			if err := sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		if l.n == 0 {
			return nil
		}
		wait, err := l.take(ctx)
		if err != nil {
			return err
		}
		if wait == 0 {
			return nil
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// take admits one request now (0), or says how long until one may be.
func (l *Limiter) take(ctx context.Context) (time.Duration, error) {
	wait, err := window.Run(ctx, l.rdb, []string{l.prefix + ":ratelimit-window:" + l.key},
		l.n, l.w.Microseconds(), member()).Int64()
	if err != nil {
		return 0, fmt.Errorf("ratelimit %s: %w", l.key, err)
	}
	return time.Duration(wait) * time.Microsecond, nil
}

// member names one request in the window's set.
func member() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (l *Limiter) pauseKey() string { return l.prefix + ":ratelimit-pause:" + l.key }

// Pause holds every replica's requests for d (a CRM's 429 with Retry-After).
func (l *Limiter) Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	// Only extend: a shorter pause must not cut a longer one short.
	if l.paused(ctx) >= d {
		return nil
	}
	// The deadline is the value (the TTL only cleans up): remaining time is computed
	// from it, which also works where TTLs do not run in real time (miniredis).
	until := time.Now().Add(d).UnixMilli()
	return l.rdb.Set(ctx, l.pauseKey(), until, d+time.Second).Err()
}

// paused returns how long requests are still paused.
func (l *Limiter) paused(ctx context.Context) time.Duration {
	until, err := l.rdb.Get(ctx, l.pauseKey()).Int64()
	if err != nil {
		return 0
	}
	return time.Until(time.UnixMilli(until))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
