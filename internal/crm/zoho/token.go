package zoho

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/crm"
)

// ErrRefreshLimit is behind the error a token request gets when the refresh token
// already got its quota of access tokens in the window (Zoho: 10 per 10 minutes).
// The error is transient: it carries when the next refresh is allowed.
var ErrRefreshLimit = errors.New("zoho: access-token refresh limit reached")

// Token is what the OAuth token endpoint grants.
type Token struct {
	AccessToken string
	ExpiresIn   time.Duration
	APIDomain   string
}

// ttl is how long to cache t: its lifetime minus a margin, so no request goes out
// with a token about to expire.
func (t Token) ttl() time.Duration {
	life := t.ExpiresIn
	if life <= 0 {
		life = time.Hour // Zoho's documented lifetime
	}
	return life - min(5*time.Minute, life/5)
}

// RefreshFunc asks the token endpoint for a new access token.
type RefreshFunc func(ctx context.Context) (Token, error)

// TokenStore caches access tokens where every user of one refresh token finds
// them, and makes sure they refresh it rarely: once when the cached token is gone,
// however many callers (and replicas) ask at that moment, and never more than the
// refresh quota.
type TokenStore interface {
	// Token returns key's cached access token, or gets one with refresh (one caller
	// at a time per key) and caches it.
	Token(ctx context.Context, key string, refresh RefreshFunc) (string, error)
	// Invalidate drops key's cached token if it is still stale (the API refused it),
	// so that the next Token refreshes; a newer token cached meanwhile is kept.
	Invalidate(ctx context.Context, key, stale string) error
}

// Refresh quota defaults: Zoho grants at most 10 access tokens per refresh token
// in 10 minutes.
const (
	DefaultMaxRefreshes  = 10
	DefaultRefreshWindow = 10 * time.Minute
)

const tokenOp = "zoho: access token"

// RedisTokenStore is the TokenStore every replica shares: the token under
// {prefix}:zoho:{key}:token with a TTL, a short lock so that one replica refreshes
// while the others wait for its token, and a sliding window of refresh times
// enforcing the quota.
type RedisTokenStore struct {
	Redis        redis.UniversalClient
	Prefix       string        // key prefix, e.g. "ct"
	MaxRefreshes int           // per Window; default DefaultMaxRefreshes
	Window       time.Duration // default DefaultRefreshWindow
	LockTTL      time.Duration // how long a refresher may hold the lock; default 20s
	Poll         time.Duration // how often waiters look for the token; default 50ms
}

// NewRedisTokenStore returns a store on rdb with the default quota.
func NewRedisTokenStore(rdb redis.UniversalClient, prefix string) *RedisTokenStore {
	return &RedisTokenStore{Redis: rdb, Prefix: prefix}
}

func (s *RedisTokenStore) key(key, what string) string {
	p := s.Prefix
	if p == "" {
		p = "ct"
	}
	return p + ":zoho:" + key + ":" + what
}

// Token implements TokenStore.
func (s *RedisTokenStore) Token(ctx context.Context, key string, refresh RefreshFunc) (string, error) {
	lockTTL, poll := orDefault(s.LockTTL, 20*time.Second), orDefault(s.Poll, 50*time.Millisecond)
	tokenKey, lockKey := s.key(key, "token"), s.key(key, "lock")
	for {
		tok, err := s.Redis.Get(ctx, tokenKey).Result()
		if err == nil {
			return tok, nil
		}
		if !errors.Is(err, redis.Nil) {
			return "", storeError(err)
		}
		owner := randomID()
		locked, err := s.Redis.SetNX(ctx, lockKey, owner, lockTTL).Result()
		if err != nil {
			return "", storeError(err)
		}
		if locked {
			return s.refreshLocked(ctx, key, tokenKey, lockKey, owner, refresh)
		}
		// Another caller (maybe another replica) is refreshing: wait for its token.
		// Its lock expires if it dies, and then one of us takes over.
		select {
		case <-ctx.Done():
			return "", &crm.Error{Op: tokenOp, Message: "waiting for the token refresh", Err: ctx.Err()}
		case <-time.After(poll):
		}
	}
}

func (s *RedisTokenStore) refreshLocked(ctx context.Context, key, tokenKey, lockKey, owner string, refresh RefreshFunc) (string, error) {
	defer func() {
		// Release only our own lock (it may have expired and been taken since).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = releaseScript.Run(ctx, s.Redis, []string{lockKey}, owner).Err()
	}()
	// Someone may have cached a token between our GET and our lock.
	if tok, err := s.Redis.Get(ctx, tokenKey).Result(); err == nil {
		return tok, nil
	} else if !errors.Is(err, redis.Nil) {
		return "", storeError(err)
	}
	// Attempts count against the quota, not only grants: Zoho may count a refused one.
	window, maxN := orDefault(s.Window, DefaultRefreshWindow), s.MaxRefreshes
	if maxN <= 0 {
		maxN = DefaultMaxRefreshes
	}
	now := time.Now().UnixMilli()
	res, err := quotaScript.Run(ctx, s.Redis, []string{s.key(key, "refreshes")},
		now, window.Milliseconds(), maxN, fmt.Sprintf("%d-%s", now, owner)).Int64Slice()
	if err != nil {
		return "", storeError(err)
	}
	if res[0] == 0 {
		return "", quotaError(maxN, window, time.Duration(res[1])*time.Millisecond)
	}
	t, err := refresh(ctx)
	if err != nil {
		return "", err
	}
	// A failed SET only means the others refresh again later; the token is good.
	_ = s.Redis.Set(ctx, tokenKey, t.AccessToken, t.ttl()).Err()
	return t.AccessToken, nil
}

// Invalidate implements TokenStore.
func (s *RedisTokenStore) Invalidate(ctx context.Context, key, stale string) error {
	if err := releaseScript.Run(ctx, s.Redis, []string{s.key(key, "token")}, stale).Err(); err != nil {
		return storeError(err)
	}
	return nil
}

// releaseScript deletes KEYS[1] only if it still holds ARGV[1].
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// quotaScript is a sliding-window counter: KEYS[1] is a sorted set of grant times
// (ms); ARGV: now, window, max, member. It returns {1, 0} and records a grant when
// under max, else {0, ms until the oldest grant leaves the window}.
var quotaScript = redis.NewScript(`
local now, window, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= max then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}`)

// MemoryTokenStore is a TokenStore for one process (tests, a single replica):
// the same single-refresher and quota rules, without Redis.
type MemoryTokenStore struct {
	MaxRefreshes int           // default DefaultMaxRefreshes
	Window       time.Duration // default DefaultRefreshWindow

	mu      sync.Mutex
	entries map[string]*memEntry
}

type memEntry struct {
	lock    chan struct{} // held by the refresher
	token   string
	expires time.Time
	grants  []time.Time
}

func (s *MemoryTokenStore) entry(key string) *memEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = map[string]*memEntry{}
	}
	e, ok := s.entries[key]
	if !ok {
		e = &memEntry{lock: make(chan struct{}, 1)}
		s.entries[key] = e
	}
	return e
}

// Token implements TokenStore.
func (s *MemoryTokenStore) Token(ctx context.Context, key string, refresh RefreshFunc) (string, error) {
	e := s.entry(key)
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return "", &crm.Error{Op: tokenOp, Message: "waiting for the token refresh", Err: ctx.Err()}
	}
	defer func() { <-e.lock }()
	now := time.Now()
	if e.token != "" && now.Before(e.expires) {
		return e.token, nil
	}
	window, maxN := orDefault(s.Window, DefaultRefreshWindow), s.MaxRefreshes
	if maxN <= 0 {
		maxN = DefaultMaxRefreshes
	}
	for len(e.grants) > 0 && now.Sub(e.grants[0]) >= window {
		e.grants = e.grants[1:]
	}
	if len(e.grants) >= maxN {
		return "", quotaError(maxN, window, e.grants[0].Add(window).Sub(now))
	}
	e.grants = append(e.grants, now)
	t, err := refresh(ctx)
	if err != nil {
		return "", err
	}
	e.token, e.expires = t.AccessToken, now.Add(t.ttl())
	return e.token, nil
}

// Invalidate implements TokenStore.
func (s *MemoryTokenStore) Invalidate(ctx context.Context, key, stale string) error {
	e := s.entry(key)
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if e.token == stale {
		e.token = ""
	}
	<-e.lock
	return nil
}

func quotaError(maxN int, window, wait time.Duration) *crm.Error {
	wait = max(wait, time.Second)
	return &crm.Error{Op: tokenOp, RetryAfter: wait, Err: ErrRefreshLimit,
		Message: fmt.Sprintf("refusing to refresh: this refresh token already got %d access tokens in %s (Zoho's limit); next refresh in %s",
			maxN, window, wait.Round(time.Second))}
}

func storeError(err error) *crm.Error {
	return &crm.Error{Op: tokenOp, Message: "token cache (redis)", Err: err}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
