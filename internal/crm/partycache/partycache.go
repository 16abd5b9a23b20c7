// Package partycache is the Redis crm.PartyCache: a tenant's number → lead/contact
// lookups (positive and negative) and lead-creation claims, shared by every replica
// so that a repeat caller costs no search on any of them.
package partycache

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/crm"
)

// Redis keeps entries under <prefix>:crm:<tenant>:party:<number> and claims under
// <prefix>:crm:<tenant>:lead-claim:<number>, each with its TTL.
type Redis struct {
	rdb    redis.UniversalClient
	prefix string // <prefix>:crm:<tenant>:
}

var _ crm.PartyCache = (*Redis)(nil)

// New returns the cache of one tenant.
func New(rdb redis.UniversalClient, prefix, tenant string) *Redis {
	return &Redis{rdb: rdb, prefix: prefix + ":crm:" + tenant + ":"}
}

// Get implements crm.PartyCache.
func (r *Redis) Get(ctx context.Context, number string) (crm.Party, bool, error) {
	raw, err := r.rdb.Get(ctx, r.prefix+"party:"+number).Bytes()
	if errors.Is(err, redis.Nil) {
		return crm.Party{}, false, nil
	}
	if err != nil {
		return crm.Party{}, false, err
	}
	var p crm.Party
	if json.Unmarshal(raw, &p) != nil {
		return crm.Party{}, false, nil // an entry we cannot read is no answer
	}
	return p, true, nil
}

// Put implements crm.PartyCache.
func (r *Redis) Put(ctx context.Context, number string, p crm.Party, ttl time.Duration) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return r.rdb.Set(ctx, r.prefix+"party:"+number, raw, ttl).Err()
}

// claimScript takes a lead claim unless another token holds it; the caller's own token
// is the caller's (go-redis sends a command again when its answer was lost).
var claimScript = redis.NewScript(`local v = redis.call('GET', KEYS[1]) if v and v ~= ARGV[1] then return 0 end redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1`)

// releaseScript ends a claim only if the token still holds it: a writer whose claim
// lapsed does not end the next one's.
var releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// Claim implements crm.PartyCache.
func (r *Redis) Claim(ctx context.Context, number, token string, ttl time.Duration) (bool, error) {
	n, err := claimScript.Run(ctx, r.rdb, []string{r.prefix + "lead-claim:" + number}, token, ttl.Milliseconds()).Int()
	return n == 1, err
}

// Release implements crm.PartyCache.
func (r *Redis) Release(ctx context.Context, number, token string) error {
	return releaseScript.Run(ctx, r.rdb, []string{r.prefix + "lead-claim:" + number}, token).Err()
}
