package recording

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// FileTTL is how long the file name of a never-expiring link is kept in Redis; past it
// (or if Redis lost it) a click finds the file in MyOperator's call log again.
const FileTTL = 366 * 24 * time.Hour

// Store keeps, in Redis and shared by every replica, each call's recording file name
// (the short link names the call) and MyOperator's fresh download links while they work.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewStore returns a store with keys under prefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) fileKey(tenant, callID string) string {
	return fmt.Sprintf("%s:rec:{%s}:file:%s", s.prefix, tenant, callID)
}

func (s *Store) linkKey(tenant, file string) string {
	h := sha256.Sum256([]byte(file))
	return fmt.Sprintf("%s:rec:{%s}:link:%s", s.prefix, tenant, hex.EncodeToString(h[:12]))
}

// PutFile keeps a call's recording file name for ttl.
func (s *Store) PutFile(ctx context.Context, tenant, callID, file string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.fileKey(tenant, callID), file, ttl).Err(); err != nil {
		return fmt.Errorf("recording: keep file name: %w", err)
	}
	return nil
}

// File returns a call's recording file name, "" when none is kept.
func (s *Store) File(ctx context.Context, tenant, callID string) (string, error) {
	v, err := s.rdb.Get(ctx, s.fileKey(tenant, callID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("recording: file name: %w", err)
	}
	return v, nil
}

// Link returns a cached fresh link of the file, "" when none.
func (s *Store) Link(ctx context.Context, tenant, file string) (string, error) {
	v, err := s.rdb.Get(ctx, s.linkKey(tenant, file)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("recording: cached link: %w", err)
	}
	return v, nil
}

// PutLink caches a fresh link of the file for ttl.
func (s *Store) PutLink(ctx context.Context, tenant, file, link string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	if err := s.rdb.Set(ctx, s.linkKey(tenant, file), link, ttl).Err(); err != nil {
		return fmt.Errorf("recording: cache link: %w", err)
	}
	return nil
}

// cacheFor is how long a link valid until expires is served from the cache: all but a
// tenth of what is left (at least 5 minutes), so that whoever gets it has time to listen.
func cacheFor(expires, now time.Time) time.Duration {
	left := expires.Sub(now)
	return left - max(left/10, 5*time.Minute)
}
