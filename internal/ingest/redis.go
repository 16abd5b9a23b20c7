package ingest

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// DefaultRedisBudget bounds the Redis work before and after a webhook's publish
// (CALLTRACK_INGEST_REDIS_BUDGET): past it the call goes on without Redis.
const DefaultRedisBudget = time.Second

// redisPause is how long ingest leaves Redis alone after it failed, so that while
// Redis is down each webhook does not spend its budget finding that out again.
const redisPause = 2 * time.Second

var (
	errRedisSkipped      = errors.New("ingest: redis failed moments ago: not consulted")
	errMappingsRestoring = errors.New("ingest: mappings are being restored")
	// errNotQueued: the commands were not built (the batcher reported why).
	errNotQueued = errors.New("ingest: the webhook's redis commands were not queued")
)

// redisGate remembers a recent Redis failure.
type redisGate struct {
	downUntil atomic.Int64 // unix ns
}

func (g *redisGate) usable() bool { return time.Now().UnixNano() >= g.downUntil.Load() }

// failed records a Redis failure; errors that say nothing about Redis are ignored.
func (g *redisGate) failed(err error) {
	if err == nil || errors.Is(err, errMappingsRestoring) || errors.Is(err, errRedisSkipped) || errors.Is(err, errNotQueued) {
		return
	}
	g.downUntil.Store(time.Now().Add(redisPause).UnixNano())
}

// redisContext bounds Redis calls by the budget; the caller hanging up does not cut
// them short (a claim half-made would hold off MyOperator's retry).
func (h *Handler) redisContext(ctx context.Context) (context.Context, context.CancelFunc) {
	b := h.RedisBudget
	if b <= 0 {
		b = DefaultRedisBudget
	}
	return context.WithTimeout(context.WithoutCancel(ctx), b)
}
