// Package idempotency makes an action happen once per key across replicas and
// redeliveries, with Redis: a short "processing" claim, then a long-lived "done"
// marker that keeps the action's result (e.g. the CRM record id).
package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
}

// New returns a store; keys are prefix + ":idem:" + key.
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, ProcessingTTL: 2 * time.Minute, DoneTTL: 30 * 24 * time.Hour}
}

func (s *Store) key(k string) string { return s.prefix + ":idem:" + k }

// Exec runs fn unless key is done already. It returns fn's result and ran=true when it
// ran now, or the stored result and ran=false when it had run before. When fn fails the
// claim is released so a later attempt can run it again.
func (s *Store) Exec(ctx context.Context, key string, fn func(context.Context) (string, error)) (result string, ran bool, err error) {
	k := s.key(key)
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
	if err := s.rdb.Set(context.WithoutCancel(ctx), k, donePrefix+result, s.DoneTTL).Err(); err != nil {
		return result, true, fmt.Errorf("idempotency: mark %s done: %w", key, err)
	}
	return result, true, nil
}

// Done returns the stored result of key and whether it is done.
func (s *Store) Done(ctx context.Context, key string) (string, bool, error) {
	v, err := s.rdb.Get(ctx, s.key(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("idempotency: read %s: %w", key, err)
	}
	if !strings.HasPrefix(v, donePrefix) {
		return "", false, nil
	}
	return strings.TrimPrefix(v, donePrefix), true, nil
}

// Claim marks key as seen for ttl if it was not; it reports whether this call claimed it.
// It is the light form for dedupe where no result must be kept (webhook redeliveries).
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.key(key), donePrefix, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("idempotency: claim %s: %w", key, err)
	}
	return ok, nil
}

// Release forgets key (used when the action a Claim guarded failed).
func (s *Store) Release(ctx context.Context, key string) error {
	return s.rdb.Del(ctx, s.key(key)).Err()
}
