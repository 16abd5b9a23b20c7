package clicktocall

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/ratelimit"
)

// RedisLimiter is the per-user budget, shared by every replica through Redis. It is
// ratelimit's sliding window, so no 60 s ever sees more than the budget: a token
// bucket (GCRA) of the same rate refills while its burst is spent, and let nearly
// twice the budget into one minute (11 of a "6 a minute" user).
type RedisLimiter struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time // nil: Redis's clock; tests set one
}

// NewRedisLimiter returns a limiter with keys under prefix.
func NewRedisLimiter(rdb redis.UniversalClient, prefix string) *RedisLimiter {
	return &RedisLimiter{rdb: rdb, prefix: prefix}
}

// Allow implements Limiter: perMinute requests in any minute, all of them at once if
// need be.
func (l *RedisLimiter) Allow(ctx context.Context, key string, perMinute int) (time.Duration, error) {
	if perMinute <= 0 {
		return 0, nil
	}
	ok, next, err := ratelimit.NewWindow(l.rdb, l.prefix, "c2c:"+key, perMinute, time.Minute).WithClock(l.now).Allow(ctx)
	if err != nil {
		return 0, fmt.Errorf("click-to-call limiter: %w", err)
	}
	if ok {
		return 0, nil
	}
	return max(next, time.Second), nil
}
