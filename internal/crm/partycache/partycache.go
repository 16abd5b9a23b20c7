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
	"github.com/calltrack/calltrack/internal/redislock"
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

// forgetScript deletes the entry only while it names the forgotten party (the JSON
// of crm.Party: e = entity, id): compare and delete in one step, so a party another
// writer cached since is kept (crm.PartyCache.Forget).
var forgetScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, p = pcall(cjson.decode, v)
if ok and type(p) == 'table' and p.e == ARGV[1] and (p.id or '') == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// Forget implements crm.PartyCache.
func (r *Redis) Forget(ctx context.Context, number string, p crm.Party) error {
	return forgetScript.Run(ctx, r.rdb, []string{r.prefix + "party:" + number}, p.Entity, p.ID).Err()
}

// Claim implements crm.PartyCache (a redislock claim: the token's own, released if it failed).
func (r *Redis) Claim(ctx context.Context, number, token string, ttl time.Duration) (bool, error) {
	return redislock.Claim(ctx, r.rdb, r.prefix+"lead-claim:"+number, token, ttl)
}

// Release implements crm.PartyCache.
func (r *Redis) Release(ctx context.Context, number, token string) error {
	return redislock.ReleaseToken(ctx, r.rdb, r.prefix+"lead-claim:"+number, token)
}
