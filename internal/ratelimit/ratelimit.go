// Package ratelimit is calltrack's one Redis-backed sliding-window limiter, shared by
// every replica: it paces requests to a CRM credential (and lets a 429's Retry-After
// pause the credential for all replicas at once), and counts the budgets calltrack
// enforces itself — click-to-call's per user, failed authentications per client.
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
	now    func() time.Time
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

// NewWindow returns a limiter of at most n requests in any window of w, exactly: for
// budgets calltrack sets itself (New's safety margin is for a CRM's limit). n <= 0
// means unlimited.
func NewWindow(rdb redis.UniversalClient, prefix, key string, n int, w time.Duration) *Limiter {
	return &Limiter{rdb: rdb, key: key, prefix: prefix, n: max(n, 0), w: w}
}

// WithClock makes the window read now instead of Redis's clock (nil: Redis's clock).
// For tests, which cannot move a real Redis's clock; replicas must not use it, their
// clocks differ.
func (l *Limiter) WithClock(now func() time.Time) *Limiter {
	l.now = now
	return l
}

// window keeps the requests sent within the last window (a sorted set scored by Redis's
// own clock in microseconds, so replicas' clocks do not matter) and admits one more
// while they are fewer than the limit. It answers {admitted 0|1, µs until the window
// has room again}: 0 while it has room, else until the oldest leaves it — also when
// this request took the last place, so a caller knows the budget is spent without
// asking again. KEYS[1] the set; ARGV: limit, window (µs), a unique member, and the
// time in µs when a test's clock replaces Redis's.
var window = redis.NewScript(`
local now
if ARGV[4] then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local limit, w = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - w)
local n = redis.call('ZCARD', KEYS[1])
local admitted = 0
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(w / 1000) + 1000)
  n, admitted = n + 1, 1
end
if n < limit then
  return {admitted, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {admitted, math.max(tonumber(oldest[2]) + w - now, 1)}
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
		ok, next, err := l.Allow(ctx)
		if err != nil || ok {
			return err
		}
		if err := sleep(ctx, next); err != nil {
			return err
		}
	}
}

// Allow takes one request if the window has room, without waiting. ok says whether it
// did; next is how long until the window has room again: 0 while it has, else until
// its oldest request leaves it (also when this request filled it). Pause does not hold
// Allow.
func (l *Limiter) Allow(ctx context.Context) (ok bool, next time.Duration, err error) {
	if l.n == 0 {
		return true, 0, nil
	}
	args := []any{l.n, l.w.Microseconds(), member()}
	if l.now != nil {
		args = append(args, l.now().UnixMicro())
	}
	res, err := window.Run(ctx, l.rdb, []string{l.prefix + ":ratelimit-window:" + l.key}, args...).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit %s: %w", l.key, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("ratelimit %s: the window answered %v", l.key, res)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
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
