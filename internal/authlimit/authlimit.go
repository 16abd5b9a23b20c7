// Package authlimit refuses a client that keeps failing to authenticate: wrong admin
// tokens (admin API, console sign-in, /readyz's details) and wrong click-to-call API
// tokens count against one budget per client address. After PerMinute failures in any
// minute, every attempt from that client is answered 429 — a right token too, or
// guessing would go on behind the 429s — until its oldest failure is a minute old.
//
// Failures are counted in Redis (ratelimit's sliding window), so every replica sees
// them; a successful authentication costs no Redis round trip: a replica refuses the
// clients it has seen spend their budget before it authenticates them. A replica that
// has not seen a refused client's failures refuses it at its next failure, so a client
// gets at most one more guess per replica into a minute.
package authlimit

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/ratelimit"
	"github.com/calltrack/calltrack/internal/web"
)

// PerMinute is how many failed authentications a client has in any minute. There is
// no budget across clients: one client could spend it and lock every admin out.
const PerMinute = 10

// Limiter counts failed authentications per client; one per process, so a refusal
// seen by one surface holds on the others.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
	log    zerolog.Logger
	now    func() time.Time // time.Now; tests set one (it is the window's clock too)

	mu        sync.Mutex
	refused   map[string]refusal // client → its refusal
	nextSweep int                // the size of refused at which a refusal drops the lapsed ones
}

// New returns a limiter with keys under prefix.
func New(rdb redis.UniversalClient, prefix string, log zerolog.Logger) *Limiter {
	return &Limiter{rdb: rdb, prefix: prefix, log: log, refused: map[string]refusal{}, nextSweep: sweepAt}
}

// Surface is where a client authenticates, named in the log line of its refusal.
type Surface string

// The surfaces that count failed authentications. AdminAPI, Console and Readyz share
// one budget per client; the click-to-call ones keep one per tenant (AttemptIn).
const (
	AdminAPI        Surface = "admin-api"
	Console         Surface = "console"
	Readyz          Surface = "readyz"
	ClickToCall     Surface = "click-to-call"
	ZohoClickToDial Surface = "zoho-clicktodial"
)

// Attempt records an authentication attempt on surface by the client at address ip
// (ok: it succeeded) and says how long the client is refused: 0 lets the
// authentication's answer stand; more is a 429 with that Retry-After, whatever the
// token. A successful attempt touches no Redis. When Redis fails a failure is not
// counted (logged): the answer stays 401. A nil Limiter limits nothing.
func (l *Limiter) Attempt(ctx context.Context, surface Surface, ip string, ok bool) time.Duration {
	return l.attempt(ctx, surface, "", ip, ok)
}

// AttemptIn is Attempt with a budget of the client's own per tenant on surface: a
// surface whose tokens are each one tenant's (click-to-call's API tokens) counts by
// tenant, so that one tenant's stale token in an integration that many tenants call
// through (one egress address) does not lock the others out; each tenant's token is
// guessed apart anyway.
func (l *Limiter) AttemptIn(ctx context.Context, surface Surface, tenant, ip string, ok bool) time.Duration {
	return l.attempt(ctx, surface, tenant, ip, ok)
}

func (l *Limiter) attempt(ctx context.Context, surface Surface, tenant, ip string, ok bool) time.Duration {
	if l == nil {
		return 0
	}
	client := clientOf(ip)
	if tenant != "" {
		client = string(surface) + ":" + tenant + "/" + client
	}
	if wait := l.refusedFor(client); wait > 0 {
		l.logRefusal(client, surface, tenant, ip, wait)
		return wait
	}
	if ok {
		return 0
	}
	win := ratelimit.NewWindow(l.rdb, l.prefix, "auth-failures:"+client, PerMinute, time.Minute)
	if l.now != nil {
		win = win.WithClock(l.now)
	}
	admitted, next, err := win.Allow(ctx)
	if err != nil {
		l.log.Warn().Err(err).Str("client", ip).Str("surface", string(surface)).Msg("failed authentication not counted")
		return 0
	}
	if next > 0 {
		// The budget is spent (by this failure or before): refuse the client's next
		// attempts here without asking Redis.
		l.refuse(client, next)
	}
	if admitted {
		return 0
	}
	l.logRefusal(client, surface, tenant, ip, next)
	return next
}

// logRefusal logs a client's refusal once per lockout (and replica): a guessing
// client's every 429 would flood the log, and the operator needs only its address.
func (l *Limiter) logRefusal(client string, surface Surface, tenant, ip string, wait time.Duration) {
	l.mu.Lock()
	r, ok := l.refused[client]
	first := ok && !r.logged
	if first {
		r.logged = true
		l.refused[client] = r
	}
	l.mu.Unlock()
	if !first {
		return
	}
	ev := l.log.Warn().Str("client", ip).Str("surface", string(surface))
	if tenant != "" {
		ev = ev.Str("tenant", tenant)
	}
	ev.Dur("retry_after", wait).Msg("too many failed authentications: client refused")
}

func (l *Limiter) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// refusal is a refused client's lockout: until when, and whether its log line is written.
type refusal struct {
	until  time.Time
	logged bool
}

func (l *Limiter) refusedFor(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.refused[client]
	if !ok {
		return 0
	}
	wait := r.until.Sub(l.clock())
	if wait <= 0 {
		delete(l.refused, client)
		return 0
	}
	return wait
}

// sweepAt is the number of refused clients past which a refusal first drops the
// lapsed ones, so many addresses cannot grow the map for good.
const sweepAt = 1024

func (l *Limiter) refuse(client string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock()
	if len(l.refused) >= l.nextSweep {
		for c, r := range l.refused {
			if !r.until.After(now) {
				delete(l.refused, c)
			}
		}
		// Amortised: the next sweep waits for the map to double, so refusals of many
		// live clients (every /64 of a /48) do not each scan it under the lock.
		l.nextSweep = max(sweepAt, 2*len(l.refused))
	}
	r := l.refused[client]
	if !r.until.After(now) {
		r.logged = false // a new lockout, logged anew
	}
	r.until = now.Add(d)
	l.refused[client] = r
}

// clientOf is the client a failure counts against: the address, but an IPv6 /64 as one
// (a subscriber's usual allocation: one client must not get a fresh budget per address).
func clientOf(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// Refuse is the JSON APIs' answer to a refused client: 429 rate_limited with
// Retry-After.
func Refuse(c echo.Context, wait time.Duration) error {
	s := web.RetryAfter(c, wait)
	return web.Errorf(http.StatusTooManyRequests, "rate_limited",
		fmt.Sprintf("too many failed authentications from your address; try again in %d s", s))
}
