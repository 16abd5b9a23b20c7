package mapping

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrBusy means another writer held the agent's mapping for too long.
var ErrBusy = errors.New("mapping: agent is being changed by another writer")

// Lock timings: a change is a journal write plus one Redis transaction.
const (
	lockTTL  = 15 * time.Second
	lockWait = 10 * time.Second
)

var releaseLock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// lock serialises changes of one agent's mapping across processes, so that the
// journal and Redis see them in the same order and a sync's read-check-write cannot
// overwrite an admin's change made in between.
func (s *Store) lock(ctx context.Context, tenant, userID string) (func(), error) {
	key := s.key(tenant, "lock:"+userID)
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	deadline := time.Now().Add(lockWait)
	wait := 5 * time.Millisecond
	for {
		ok, err := s.rdb.SetNX(ctx, key, token, lockTTL).Result()
		if err != nil {
			return nil, fmt.Errorf("mapping: lock: %w", err)
		}
		if ok {
			return func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = releaseLock.Run(rctx, s.rdb, []string{key}, token).Err()
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, ErrBusy
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}
