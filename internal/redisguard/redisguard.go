// Package redisguard watches the Redis calltrack depends on for the two faults it
// cannot live with silently: an evicting maxmemory-policy (an evicted idempotency key
// is a duplicate CRM record, an evicted parked call a lost one), and lost data (a
// restart without persistence, a failover to an empty replica). When Redis has lost
// its data, the guard restores what calltrack keeps elsewhere — the mappings from
// their journal topic (the steps added) — by itself, one replica at a time. The
// writer's parked calls are not a step: serve's replicas run the guard too and may set
// the marker first, so `work` restores them by its own check of the call-state epoch
// (app.watchEpoch).
//
// Lost data is noticed by a marker key the guard sets once a restore (or the first
// start) is done: Redis without the marker has lost its data or never had any, and
// restoring is right in both cases.
package redisguard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Step is one thing to restore into an empty Redis.
type Step struct {
	Name string
	Run  func(ctx context.Context) error
}

// Guard checks Redis at start and every Interval.
type Guard struct {
	Redis    redis.UniversalClient
	Prefix   string
	Interval time.Duration // default 10 s
	// NoPolicy skips the maxmemory-policy check: for an embedded Redis (dev's), which
	// has none to read; only a real server's policy can evict calltrack's keys.
	NoPolicy bool
	Log      zerolog.Logger

	mu        sync.Mutex
	steps     []Step
	policy    string // the maxmemory-policy seen, "" when unknown
	policyErr error
	restoring atomic.Bool // Redis lacks its data: a restore is due or running
	lastErr   atomic.Value
}

// Add registers a restore step; steps run in the order added.
func (g *Guard) Add(s Step) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.steps = append(g.steps, s)
}

func (g *Guard) markerKey() string { return g.Prefix + ":redisguard:marker" }
func (g *Guard) lockKey() string   { return g.Prefix + ":redisguard:restore-lock" }

// lockTTL bounds a restore; a replica that dies mid-way lets another take over after it.
const lockTTL = 5 * time.Minute

// Evicting reports whether a maxmemory-policy may evict calltrack's keys: any but
// noeviction (volatile-* policies evict keys with a TTL, as idempotency keys have).
func Evicting(policy string) bool { return policy != "" && policy != "noeviction" }

// CheckPolicy reads maxmemory-policy and logs loudly when it evicts. A Redis that
// refuses CONFIG (managed services) is logged too: the operator must check.
func (g *Guard) CheckPolicy(ctx context.Context) {
	res, err := g.Redis.ConfigGet(ctx, "maxmemory-policy").Result()
	policy := res["maxmemory-policy"]
	g.mu.Lock()
	g.policy, g.policyErr = policy, err
	g.mu.Unlock()
	switch {
	case err != nil:
		g.Log.Warn().Err(err).Msg("redis: could not read maxmemory-policy (CONFIG GET refused?): make sure it is noeviction, or calls may be duplicated or lost")
	case Evicting(policy):
		g.Log.Error().Str("maxmemory_policy", policy).Msg("REDIS EVICTS KEYS: maxmemory-policy must be noeviction — an evicted idempotency key writes a call twice, an evicted parked call is lost")
	}
}

// Check restores Redis when it has lost its data and no other replica is at it. It
// returns whether Redis has its data now.
func (g *Guard) Check(ctx context.Context) (bool, error) {
	n, err := g.Redis.Exists(ctx, g.markerKey()).Result()
	if err != nil {
		return false, fmt.Errorf("redisguard: %w", err)
	}
	if n == 1 {
		g.restoring.Store(false)
		return true, nil
	}
	g.restoring.Store(true)
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	ok, err := g.Redis.SetNX(ctx, g.lockKey(), token, lockTTL).Result()
	if err != nil {
		return false, fmt.Errorf("redisguard: %w", err)
	}
	if !ok {
		g.Log.Info().Msg("redis lost its data: another replica is restoring it")
		return false, nil
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = releaseLock.Run(rctx, g.Redis, []string{g.lockKey()}, token).Err()
	}()
	// Another replica may have restored and let go of the lock between the look at the
	// marker above and taking the lock: restoring again would be harmless but wasted.
	if n, err := g.Redis.Exists(ctx, g.markerKey()).Result(); err != nil {
		return false, fmt.Errorf("redisguard: %w", err)
	} else if n == 1 {
		g.restoring.Store(false)
		return true, nil
	}
	g.mu.Lock()
	steps := append([]Step(nil), g.steps...)
	g.mu.Unlock()
	start := time.Now()
	g.Log.Warn().Msg("redis has no calltrack marker (lost its data, or first start): restoring")
	var names []string
	for _, s := range steps {
		if err := s.Run(ctx); err != nil {
			return false, fmt.Errorf("redisguard: restore %s: %w", s.Name, err)
		}
		names = append(names, s.Name)
	}
	if err := g.Redis.Set(ctx, g.markerKey(), time.Now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
		return false, fmt.Errorf("redisguard: %w", err)
	}
	g.restoring.Store(false)
	g.Log.Warn().Strs("restored", names).Dur("took", time.Since(start)).Msg("redis restored")
	return true, nil
}

var releaseLock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Run checks the policy, then Redis's data every Interval, until ctx ends.
func (g *Guard) Run(ctx context.Context) {
	interval := g.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	policyChecked := g.NoPolicy
	for {
		if !policyChecked {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if g.Redis.Ping(pctx).Err() == nil {
				g.CheckPolicy(pctx)
				policyChecked = true
			}
			cancel()
		}
		cctx, cancel := context.WithTimeout(ctx, lockTTL)
		_, err := g.Check(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			g.lastErr.Store(err.Error())
			g.Log.Warn().Err(err).Msg("redis check failed")
		} else {
			g.lastErr.Store("")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Restoring reports whether Redis is known to lack its data (a restore is due or
// running): mappings read now would be missing.
func (g *Guard) Restoring() bool { return g.restoring.Load() }

// Detail is what readiness says of Redis beyond "it answers": an evicting policy, an
// unreadable one, a restore under way. "" when there is nothing to say.
func (g *Guard) Detail() string {
	g.mu.Lock()
	policy, perr := g.policy, g.policyErr
	g.mu.Unlock()
	var parts []string
	switch {
	case perr != nil:
		parts = append(parts, "maxmemory-policy unknown (CONFIG GET refused): check it is noeviction")
	case Evicting(policy):
		parts = append(parts, fmt.Sprintf("WARNING maxmemory-policy %s evicts keys: calls may be duplicated or lost; set noeviction", policy))
	}
	if g.Restoring() {
		parts = append(parts, "restoring lost data (mappings from the journal)")
	}
	if e, _ := g.lastErr.Load().(string); e != "" {
		parts = append(parts, "last check failed: "+e)
	}
	return strings.Join(parts, "; ")
}
