// Package ratelimit paces requests to a CRM credential across every writer replica,
// with a Redis-backed GCRA limiter (go-redis/redis_rate), and lets a 429's Retry-After
// pause the credential for all replicas at once.
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limiter paces one CRM credential.
type Limiter struct {
	rdb    redis.UniversalClient
	lim    *redis_rate.Limiter
	key    string
	limit  redis_rate.Limit
	prefix string
}

// Safety is the share of the nominal rate actually used: requests leave calltrack
// evenly spaced, but network jitter can bunch them at the CRM, which counts per
// wall-clock second.
const Safety = 0.9

// New returns a limiter of perSecond requests for key (e.g. "kylas:<tenant>"), shared
// through Redis. perSecond <= 0 means unlimited (Wait returns at once unless paused).
func New(rdb redis.UniversalClient, prefix, key string, perSecond float64) *Limiter {
	l := &Limiter{rdb: rdb, lim: redis_rate.NewLimiter(rdb), key: key, prefix: prefix}
	if perSecond > 0 {
		// Burst 1 with the period stretched by Safety: never more than perSecond in any
		// one second at the CRM, whatever the number of replicas.
		period := time.Duration(float64(time.Second) / (perSecond * Safety))
		l.limit = redis_rate.Limit{Rate: 1, Burst: 1, Period: period}
	}
	return l
}

func (l *Limiter) pauseKey() string { return l.prefix + ":ratelimit-pause:" + l.key }

// Wait blocks until a request may be sent, or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		if d := l.paused(ctx); d > 0 {
			if err := sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		if l.limit.IsZero() {
			return nil
		}
		res, err := l.lim.Allow(ctx, l.prefix+":ratelimit:"+l.key, l.limit)
		if err != nil {
			return fmt.Errorf("ratelimit %s: %w", l.key, err)
		}
		if res.Allowed > 0 {
			return nil
		}
		if err := sleep(ctx, max(res.RetryAfter, time.Millisecond)); err != nil {
			return err
		}
	}
}

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
