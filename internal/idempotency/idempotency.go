// Package idempotency makes an action happen once per key across replicas and
// redeliveries, with Redis: a short "processing" claim, then a long-lived "done"
// marker that keeps the action's result (webhook dedupe, backfill publishes). The CRM
// writer's once-per-call state, with unknown outcomes, is internal/callstate.
package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrInProgress means another worker holds the claim right now; try again later.
var ErrInProgress = errors.New("idempotency: in progress elsewhere")

const donePrefix = "done:"

// Store runs actions once per key.
type Store struct {
	rdb           redis.UniversalClient
	prefix        string
	ProcessingTTL time.Duration // longer than the slowest action, so a live claim never lapses
	DoneTTL       time.Duration // how long a replay is recognised

	unrecorded sync.Map // key → result of an action whose done marker Redis refused
}

// New returns a store; keys are prefix + ":idem:" + key.
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, ProcessingTTL: 2 * time.Minute, DoneTTL: 30 * 24 * time.Hour}
}

func (s *Store) key(k string) string { return s.prefix + ":idem:" + k }

// Key is the Redis key of k (for callers that pipeline their own commands on it).
func (s *Store) Key(k string) string { return s.key(k) }

// Exec runs fn unless key is done already. It returns fn's result and ran=true when it
// ran now, or the stored result and ran=false when it had run before. When fn fails the
// claim is released so a later attempt can run it again.
//
// Once fn succeeded its result must not be lost: the done marker is retried, and if
// Redis still refuses, the result is kept in this process (ErrNotRecorded) so the next
// Exec of the key records it instead of running fn a second time.
func (s *Store) Exec(ctx context.Context, key string, fn func(context.Context) (string, error)) (result string, ran bool, err error) {
	k := s.key(key)
	if v, ok := s.unrecorded.Load(key); ok {
		if err := s.markDone(ctx, k, v.(string)); err != nil {
			return "", false, err
		}
		s.unrecorded.Delete(key)
		return v.(string), false, nil
	}
	ok, err := s.rdb.SetNX(ctx, k, "processing", s.ProcessingTTL).Result()
	if err != nil {
		return "", false, fmt.Errorf("idempotency: claim %s: %w", key, err)
	}
	if !ok {
		v, err := s.rdb.Get(ctx, k).Result()
		switch {
		case errors.Is(err, redis.Nil):
			// The other claim was released between our two calls: try once more.
			return s.Exec(ctx, key, fn)
		case err != nil:
			return "", false, fmt.Errorf("idempotency: read %s: %w", key, err)
		case strings.HasPrefix(v, donePrefix):
			return strings.TrimPrefix(v, donePrefix), false, nil
		default:
			return "", false, ErrInProgress
		}
	}
	result, err = fn(ctx)
	if err != nil {
		// Release with a fresh context: the caller's may be the reason fn failed.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if derr := s.rdb.Del(rctx, k).Err(); derr != nil {
			err = errors.Join(err, fmt.Errorf("idempotency: release %s: %w", key, derr))
		}
		return "", true, err
	}
	if err := s.markDone(ctx, k, result); err != nil {
		s.unrecorded.Store(key, result)
		return result, true, err
	}
	return result, true, nil
}

// ErrNotRecorded means an action succeeded but Redis did not take its done marker;
// the result is kept in memory and recorded by the next Exec of the same key.
var ErrNotRecorded = errors.New("idempotency: done marker not recorded")

// markDone writes the done marker, retrying for up to half the processing TTL so a
// short Redis blip cannot let the claim lapse with the action done.
func (s *Store) markDone(ctx context.Context, k, result string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.ProcessingTTL/2)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := s.rdb.Set(ctx, k, donePrefix+result, s.DoneTTL).Err()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %w", ErrNotRecorded, k, err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// Done returns the stored result of key and whether it is done; ErrInProgress while
// an Exec of it is running.
func (s *Store) Done(ctx context.Context, key string) (string, bool, error) {
	v, err := s.rdb.Get(ctx, s.key(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("idempotency: read %s: %w", key, err)
	}
	if !strings.HasPrefix(v, donePrefix) {
		return "", false, ErrInProgress // being done right now
	}
	return strings.TrimPrefix(v, donePrefix), true, nil
}

// Claim states.
const (
	Claimed  = iota // this call claimed the key: do the work, then Finish or Release
	Pending         // another delivery claimed it and has not finished
	Finished        // the work was done before
)

// Claim claims key for pendingTTL, for dedupe where no result is kept (webhook
// redeliveries). A claim still pending is not yet a "done": a redelivery that meets one
// must not be told its work is done, or a failure of the first would lose it.
func (s *Store) Claim(ctx context.Context, key string, pendingTTL time.Duration) (int, error) {
	k := s.key(key)
	ok, err := s.rdb.SetNX(ctx, k, "pending", pendingTTL).Result()
	if err != nil {
		return 0, fmt.Errorf("idempotency: claim %s: %w", key, err)
	}
	if ok {
		return Claimed, nil
	}
	return s.held(ctx, key, pendingTTL)
}

// held is the state of a key a claim found taken: Pending or Finished (claimed after
// all when it lapsed meanwhile).
func (s *Store) held(ctx context.Context, key string, pendingTTL time.Duration) (int, error) {
	v, err := s.rdb.Get(ctx, s.key(key)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return s.Claim(ctx, key, pendingTTL)
	case err != nil:
		return 0, fmt.Errorf("idempotency: read %s: %w", key, err)
	case strings.HasPrefix(v, donePrefix):
		return Finished, nil
	default:
		return Pending, nil
	}
}

// ClaimPipe queues a Claim on p, for callers that batch their Redis round trips
// (ingest); the returned func reads its answer once p has run. The claim is one SET NX;
// only a key found taken (a redelivery) costs one more round trip, to read its state.
// SET NX GET did both at once but answers nil to every new claim, which go-redis
// takes for the pipeline's error and runs its retry checks on (1.5 % of serve's CPU,
// profile of serve).
func (s *Store) ClaimPipe(ctx context.Context, p redis.Pipeliner, key string, pendingTTL time.Duration) func() (int, error) {
	cmd := p.SetNX(ctx, s.key(key), "pending", pendingTTL)
	return func() (int, error) {
		ok, err := cmd.Result()
		switch {
		case err != nil:
			return 0, fmt.Errorf("idempotency: claim %s: %w", key, err)
		case ok:
			return Claimed, nil
		}
		return s.held(ctx, key, pendingTTL)
	}
}

// FinishPipe queues a Finish on p.
func (s *Store) FinishPipe(ctx context.Context, p redis.Pipeliner, key string, ttl time.Duration) {
	p.Set(ctx, s.key(key), donePrefix, ttl)
}

// Finish marks a claimed key done for ttl.
func (s *Store) Finish(ctx context.Context, key string, ttl time.Duration) error {
	return s.rdb.Set(ctx, s.key(key), donePrefix, ttl).Err()
}

// Release forgets key (used when the action a Claim guarded failed).
func (s *Store) Release(ctx context.Context, key string) error {
	return s.rdb.Del(ctx, s.key(key)).Err()
}
