package clicktocall

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// RedisLimiter is the per-user budget, shared by every replica through Redis
// (go-redis/redis_rate's GCRA).
type RedisLimiter struct {
	lim    *redis_rate.Limiter
	prefix string
}

// NewRedisLimiter returns a limiter with keys under prefix.
func NewRedisLimiter(rdb redis.UniversalClient, prefix string) *RedisLimiter {
	return &RedisLimiter{lim: redis_rate.NewLimiter(rdb), prefix: prefix}
}

// Allow implements Limiter: perMinute requests a minute, all of them at once if need be.
func (l *RedisLimiter) Allow(ctx context.Context, key string, perMinute int) (time.Duration, error) {
	if perMinute <= 0 {
		return 0, nil
	}
	res, err := l.lim.Allow(ctx, l.prefix+":c2c-rate:"+key, redis_rate.PerMinute(perMinute))
	if err != nil {
		return 0, fmt.Errorf("click-to-call limiter: %w", err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Second), nil
}
