package crm

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/calltrack/calltrack/internal/call"
)

// Party is the lead or contact a call is related to, as an adapter found or made it.
type Party struct {
	Entity string `json:"e"` // EntityContact, EntityLead; "" in a cached negative answer
	ID     string `json:"id,omitempty"`
	Name   string `json:"n,omitempty"`
}

// Entities of a Party, and the marker of a lead whose creation had an unknown outcome.
const (
	EntityContact = "contact"
	EntityLead    = "lead"
	entityPending = "pending" // a create of this number's lead may have been applied
)

// Cache TTLs of lookups: short, so that a lead or contact made in the CRM by a person
// is seen within minutes; a lead calltrack creates is cached at once.
const (
	PartyTTL        = 5 * time.Minute
	NoPartyTTL      = 2 * time.Minute
	pendingTTL      = 30 * time.Minute
	claimTTL        = 30 * time.Second
	claimWaitPoll   = 50 * time.Millisecond
	claimWaitBudget = 5 * time.Second
)

// PartyCache keeps lookups of a tenant's numbers (positive and negative), shared by
// every replica (partycache.Redis), and the claims that let one writer at a time
// create a number's lead. Keys are the E.164 number.
type PartyCache interface {
	Get(ctx context.Context, number string) (Party, bool, error)
	Put(ctx context.Context, number string, p Party, ttl time.Duration) error
	// Claim takes the number's lead-creation claim for ttl under token; false when
	// another token holds it. A claim already held under token is the caller's (a
	// client that sent it again after losing its answer must not find itself a rival),
	// and one that failed is released by the cache, as it may have been taken.
	Claim(ctx context.Context, number, token string, ttl time.Duration) (bool, error)
	// Release ends the claim if token still holds it (not a later writer's).
	Release(ctx context.Context, number, token string) error
	// Forget drops the number's entry if it still names p's record (entity and id):
	// a writer the CRM refused p must not drop the party another writer has resolved
	// since — its next lookup could miss that lead in a lagging search and make a
	// second one.
	Forget(ctx context.Context, number string, p Party) error
}

// LeadPolicy says what an adapter does for a caller who matches no lead or contact
// (tenants file: crm.unknown_caller, crm.lead_source, crm.lead_tag).
type LeadPolicy struct {
	Create bool   // unknown_caller: create_lead
	Source string // Kylas: the lead source's picklist option id; Zoho: a Lead_Source value
	Tag    string // Zoho: a tag on the lead
}

// NewLead is what an adapter writes for an unknown caller.
type NewLead struct {
	Number    string // E.164
	FirstName string
	LastName  string
	OwnerID   string // the call's owner
}

// LeadFor names the lead of an unknown caller: MyOperator's contact name for the
// number when it has one ("_cm"), else "Inbound <number>" ("Outbound <number>" for a
// number we called), as MyOperator's own CRM integrations name them ("Inbound
// <number>": https://support.myoperator.com/portal/en/kb/articles/what-data-is-logged-in-each-call-activity-field-when-zoho-is-integrated-with-myoperator).
// A "_cm" that is only a phone number (e.g. the caller's own: a lead named
// "9844400003") is no name.
func LeadFor(l call.Log, number, owner string) NewLead {
	n := NewLead{Number: number, OwnerID: owner}
	name := strings.Join(strings.Fields(l.CallerName), " ")
	if isNumberNotName(name) {
		name = ""
	}
	switch {
	case name != "":
		if i := strings.LastIndexByte(name, ' '); i > 0 {
			n.FirstName, n.LastName = name[:i], name[i+1:]
		} else {
			n.LastName = name
		}
	case l.Direction == call.Outgoing:
		n.LastName = "Outbound " + number
	default:
		n.LastName = "Inbound " + number
	}
	return n
}

// isNumberNotName reports whether name is a phone number rather than a name: only
// digits with the separators a number is written with (+, spaces, dashes, and the
// dots, slashes and parentheses internal/phone ignores) — the caller's own number in
// any form internal/phone reads among them.
func isNumberNotName(name string) bool {
	hasDigit := false
	for _, r := range name {
		switch {
		case r >= '0' && r <= '9':
			hasDigit = true
		case strings.ContainsRune("+ -.()/", r):
		default:
			return false
		}
	}
	return hasDigit
}

// Parties resolves a caller's number to the lead or contact its calls relate to,
// for one tenant's adapter: from the shared cache, else by the adapter's lookup, else
// (LeadPolicy.Create) by creating a lead — once per number across replicas.
type Parties struct {
	Cache  PartyCache
	Policy LeadPolicy
	Settle time.Duration // search settle time, for a lead whose create had an unknown outcome

	flights singleflight.Group // concurrent lookups of one number share one
}

// ErrLeadBeingCreated: another writer holds the number's lead-creation claim; retry.
var ErrLeadBeingCreated = errors.New("crm: another writer is creating this caller's lead")

// Resolve returns the number's party (nil for none). lookup searches the CRM;
// create makes the lead (only called under the number's claim).
func (p *Parties) Resolve(ctx context.Context, number string, lookup func(context.Context) (*Party, error),
	create func(context.Context) (Party, error)) (*Party, error) {
	// Every adapter's requests counted under the step they serve (metrics' op label).
	l0, c0 := lookup, create
	lookup = func(ctx context.Context) (*Party, error) { return l0(WithRequestOp(ctx, RequestSearch)) }
	create = func(ctx context.Context) (Party, error) { return c0(WithRequestOp(ctx, RequestLeadCreate)) }
	cached, ok, err := p.Cache.Get(ctx, number)
	if err != nil {
		return nil, &Error{Op: "crm: party cache", Err: err}
	}
	pending := ok && cached.Entity == entityPending
	switch {
	case ok && (cached.Entity == EntityContact || cached.Entity == EntityLead):
		return &cached, nil
	case ok && !pending && !p.Policy.Create:
		return nil, nil // a cached "no one"
	}
	if !pending {
		found, err := p.shared(ctx, number, lookup)
		if err != nil {
			return nil, err
		}
		if found != nil || !p.Policy.Create {
			return found, nil
		}
	}
	return p.createLead(ctx, number, pending, lookup, create)
}

// shared runs lookup once for concurrent callers of one number (a burst of calls
// from a new number); the lookup is no one caller's, so one leaving does not end it.
// The flight caches its answer before it ends, and reads the cache first: a caller
// that missed the cache just before the previous flight ended finds its answer
// there instead of searching again.
func (p *Parties) shared(ctx context.Context, number string, lookup func(context.Context) (*Party, error)) (*Party, error) {
	// The requests count to the call that started the lookup.
	ch := p.flights.DoChan(number, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		if c, ok, err := p.Cache.Get(ctx, number); err == nil && ok {
			switch {
			case c.Entity == EntityContact || c.Entity == EntityLead:
				return &c, nil
			case c.Entity == "" && !p.Policy.Create:
				return (*Party)(nil), nil
			}
		}
		found, err := lookup(ctx)
		switch {
		case err != nil:
		case found != nil:
			p.put(ctx, number, *found, PartyTTL)
		case !p.Policy.Create:
			p.put(ctx, number, Party{}, NoPartyTTL)
		}
		return found, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Party), nil
	case <-ctx.Done():
		return nil, &Error{Op: "crm: lookup", Err: ctx.Err()}
	}
}

// createLead makes the number's lead under its claim. After a create whose outcome
// was unknown (pending), the lead may exist: a settled lookup decides first. A writer
// that finds the claim taken waits for the holder's lead, and takes the claim over
// when the holder let it go without one (its create failed).
func (p *Parties) createLead(ctx context.Context, number string, pending bool, lookup func(context.Context) (*Party, error),
	create func(context.Context) (Party, error)) (*Party, error) {
	deadline := time.Now().Add(claimWaitBudget)
	token := rand.Text()
	for {
		claimed, err := p.Cache.Claim(ctx, number, token, claimTTL)
		if err != nil {
			return nil, &Error{Op: "crm: lead claim", Err: err}
		}
		if claimed {
			break
		}
		if time.Now().After(deadline) {
			return nil, &Error{Op: "crm: lead claim", Err: ErrLeadBeingCreated, RetryAfter: time.Second}
		}
		t := time.NewTimer(claimWaitPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &Error{Op: "crm: lead claim", Err: ctx.Err()}
		case <-t.C:
		}
		if c, ok, err := p.Cache.Get(ctx, number); err == nil && ok && (c.Entity == EntityContact || c.Entity == EntityLead) {
			return &c, nil
		} else if err == nil && ok && c.Entity == entityPending {
			pending = true // the holder's create lost its answer
		}
	}
	defer func() { _ = p.Cache.Release(context.WithoutCancel(ctx), number, token) }()
	// Another writer may have made it between our lookup and the claim — or tried, and
	// lost the answer: then the lead may exist though our lookup (before its create, or
	// behind the search's lag) missed it, and only a settled lookup may allow a create.
	if cached, ok, err := p.Cache.Get(ctx, number); err == nil && ok {
		switch cached.Entity {
		case EntityContact, EntityLead:
			return &cached, nil
		case entityPending:
			pending = true
		}
	}
	if pending {
		id, found, err := FindSettled(ctx, p.Settle, func(ctx context.Context) (string, bool, error) {
			f, err := lookup(ctx)
			if err != nil || f == nil {
				return "", false, err
			}
			p.put(ctx, number, *f, PartyTTL)
			return f.ID, true, nil
		})
		if err != nil {
			return nil, err
		}
		if found {
			c, ok, _ := p.Cache.Get(ctx, number)
			if ok && c.ID == id {
				return &c, nil
			}
		}
	}
	// Written ahead of the create: a writer killed mid-create (or whose create fails
	// in any way) leaves the marker, so the next one looks the lead up (settled)
	// before it creates another. Only the create's own answer replaces it.
	p.put(ctx, number, Party{Entity: entityPending}, pendingTTL)
	lead, err := create(ctx)
	if err != nil {
		return nil, err
	}
	p.put(ctx, number, lead, PartyTTL) // a lead we made is known at once
	return &lead, nil
}

// Used names the party a write related its record to, and the number it was
// resolved for.
type Used struct {
	Number string
	Party  Party
}

// RetryIfGone runs write (which resolves the caller's party and writes the record
// related to it, reporting the party it used) and, when the CRM refuses the record
// because that lead or contact does not exist (ErrPartyGone: deleted, merged or
// converted since its lookup was cached, or a cache filled from another CRM), forgets
// the party and runs write once more: the number is resolved again (a search, else a
// lead per the policy, under the number's claim). Why here: a cached party is trusted
// for PartyTTL, so without this every call of the caller would be refused until the
// entry expired. A second refusal is returned (a permanent rejection, dead-lettered
// as before): never a loop. The party is forgotten on that refusal too, so the
// caller's next call looks the number up afresh. Only a refusal is retried: nothing
// was written, so the second write cannot duplicate the first.
func RetryIfGone[T any](ctx context.Context, p *Parties, write func(context.Context) (T, *Used, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, used, err := write(ctx)
		if used == nil || !errors.Is(err, ErrPartyGone) {
			return v, err
		}
		if ferr := p.Cache.Forget(context.WithoutCancel(ctx), used.Number, used.Party); ferr != nil {
			// The entry is still there: a second write would be refused alike. Transient,
			// so the call is tried again later rather than dead-lettered for a cache blip.
			var zero T
			return zero, &Error{Op: "crm: party cache: forget", Err: errors.Join(ferr, err)}
		}
		zerolog.Ctx(ctx).Warn().Err(err).Str("entity", used.Party.Entity).Str("id", used.Party.ID).
			Int("attempt", attempt).Msg("crm: the CRM has no such lead/contact; forgot the cached party")
		if attempt == 2 {
			return v, err
		}
	}
}

// put caches best-effort: a cache that fails costs a lookup later, nothing more.
func (p *Parties) put(ctx context.Context, number string, party Party, ttl time.Duration) {
	_ = p.Cache.Put(context.WithoutCancel(ctx), number, party, ttl)
}

// MemoryPartyCache is an in-process PartyCache (tests, and adapters built without Redis).
type MemoryPartyCache struct {
	mu     sync.Mutex
	m      map[string]memParty
	claims map[string]memClaim
}

type memClaim struct {
	token string
	exp   time.Time
}

type memParty struct {
	p   Party
	exp time.Time
}

// Get implements PartyCache.
func (c *MemoryPartyCache) Get(_ context.Context, number string) (Party, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[number]
	if !ok || time.Now().After(e.exp) {
		return Party{}, false, nil
	}
	return e.p, true, nil
}

// Put implements PartyCache.
func (c *MemoryPartyCache) Put(_ context.Context, number string, p Party, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]memParty{}
	}
	if len(c.m) >= 10_000 {
		clear(c.m)
	}
	c.m[number] = memParty{p: p, exp: time.Now().Add(ttl)}
	return nil
}

// Claim implements PartyCache.
func (c *MemoryPartyCache) Claim(_ context.Context, number, token string, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.claims == nil {
		c.claims = map[string]memClaim{}
	}
	if cl, ok := c.claims[number]; ok && cl.token != token && time.Now().Before(cl.exp) {
		return false, nil
	}
	c.claims[number] = memClaim{token: token, exp: time.Now().Add(ttl)}
	return true, nil
}

// Release implements PartyCache.
func (c *MemoryPartyCache) Release(_ context.Context, number, token string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.claims[number].token == token {
		delete(c.claims, number)
	}
	return nil
}

// Forget implements PartyCache.
func (c *MemoryPartyCache) Forget(_ context.Context, number string, p Party) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[number]; ok && e.p.Entity == p.Entity && e.p.ID == p.ID {
		delete(c.m, number)
	}
	return nil
}

// --- requests per call ---

// The operations a call's CRM requests are counted by (the op label of
// calltrack_crm_call_requests_total).
const (
	RequestCreate     = "create"      // the call log's create (Zoho: its share of a batched insert)
	RequestUpdate     = "update"      // the call log's update
	RequestFind       = "find"        // looking up the call log itself (a create whose answer was lost)
	RequestSearch     = "search"      // the lead/contact search for the call's number
	RequestLeadCreate = "lead_create" // the lead created for an unknown caller
	RequestFields     = "fields"      // the CRM's field metadata (Zoho's Calls fields, cached)
)

type requestCountKey struct{}

type requestOpKey struct{}

type requestCount struct {
	mu   sync.Mutex
	op   string // the operation of a request made under no WithRequestOp
	n    float64
	byOp map[string]float64
}

// WithRequestCounts returns a context in which the adapter counts its CRM requests
// (CountRequest), and a function reading the count — the requests one call cost, in
// all and by operation: a request made under WithRequestOp counts as that operation,
// any other as op.
func WithRequestCounts(ctx context.Context, op string) (context.Context, func() (float64, map[string]float64)) {
	rc := &requestCount{op: op, byOp: map[string]float64{}}
	return context.WithValue(ctx, requestCountKey{}, rc), func() (float64, map[string]float64) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.n, maps.Clone(rc.byOp)
	}
}

// WithRequestOp marks the requests made under ctx as operation op (RequestSearch,
// RequestLeadCreate, ...) in the count of WithRequestCounts.
func WithRequestOp(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, requestOpKey{}, op)
}

// CountRequest adds n requests (a share, for a batch) to ctx's count, if it has one.
func CountRequest(ctx context.Context, n float64) {
	if rc, _ := ctx.Value(requestCountKey{}).(*requestCount); rc != nil {
		op, _ := ctx.Value(requestOpKey{}).(string)
		rc.mu.Lock()
		if op == "" {
			op = rc.op
		}
		rc.n += n
		rc.byOp[op] += n
		rc.mu.Unlock()
	}
}

// WithoutRequestCount detaches ctx from its count (a request shared by many calls).
func WithoutRequestCount(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestCountKey{}, (*requestCount)(nil))
}
