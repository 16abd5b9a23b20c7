// Package usersync keeps each tenant's agent → CRM-user mappings in step with the
// two user directories: it pulls MyOperator's users and the CRM's users, has
// internal/usermatch plan the changes, applies them to the stored mappings, and
// reports every user it could not match with the reason. A Redis lock keeps one
// sync per tenant at a time across replicas; a scheduler runs it periodically.
package usersync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/redislock"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/usermatch"
)

// Errors of a sync.
var (
	// ErrNotConfigured: the tenant has no MyOperator API token, or its CRM has no users source.
	ErrNotConfigured = errors.New("usersync: user sync is not configured for the tenant")
	// ErrBusy: another sync of the tenant is running.
	ErrBusy = errors.New("usersync: a sync of the tenant is already running")
	// ErrUnknownTenant: no such tenant.
	ErrUnknownTenant = errors.New("usersync: unknown tenant")
	// ErrUpstream: a users API (MyOperator's or the CRM's) failed.
	ErrUpstream = errors.New("usersync: users API failed")
	// ErrNotPending: only a pending mapping can be approved.
	ErrNotPending = errors.New("usersync: mapping is not pending")
)

// Sources returns a tenant's two user directories: MyOperator's and the CRM's. It
// returns an error wrapping ErrNotConfigured when the tenant cannot be synced.
type Sources func(t *tenant.Tenant) (myoperator, crm directory.Source, err error)

// Service runs user syncs.
type Service struct {
	Tenants  *tenant.Registry
	Mappings *mapping.Store
	Redis    redis.UniversalClient
	Prefix   string
	Sources  Sources
	Log      zerolog.Logger
	LockTTL  time.Duration     // how long a sync's lock lasts without refresh; default 2m
	Timeout  time.Duration     // bound of one sync; default 10m
	Now      func() time.Time  // default time.Now
	Metrics  *metrics.UserSync // runs, results and failures by tenant; nil records nothing
}

// Options of one sync.
type Options struct {
	// Wait for a running sync of the tenant to finish (then run a fresh one) instead of
	// returning ErrBusy at once.
	Wait time.Duration
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) lockKey(tenant string) string {
	return fmt.Sprintf("%s:sync:{%s}:lock", s.Prefix, tenant)
}

// Sync runs one sync of the tenant now and returns its report. Only one sync of a
// tenant runs at a time, across every replica.
func (s *Service) Sync(ctx context.Context, tenantID string, o Options) (*Report, error) {
	t, ok := s.Tenants.Get(tenantID)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	mo, crm, err := s.Sources(t)
	if err != nil {
		return nil, err
	}
	ttl := s.LockTTL
	if ttl <= 0 {
		ttl = 2 * time.Minute
	}
	lock, err := redislock.AcquireWait(ctx, s.Redis, s.lockKey(tenantID), ttl, o.Wait)
	if errors.Is(err, redislock.ErrLocked) {
		s.Metrics.Ended(tenantID, metrics.SyncBusy)
		return nil, ErrBusy
	}
	if err != nil {
		s.Metrics.Ended(tenantID, metrics.SyncFailed)
		return nil, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := lock.Release(rctx); err != nil {
			s.Log.Warn().Err(err).Str("tenant", tenantID).Msg("sync lock not released; it expires")
		}
	}()
	lctx, stop := lock.KeepAlive(ctx, ttl)
	defer stop()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	lctx, cancel := context.WithTimeout(lctx, timeout)
	defer cancel()

	start := time.Now()
	r, err := s.run(lctx, t, mo, crm)
	if err != nil {
		if errors.Is(lctx.Err(), context.Canceled) && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", redislock.ErrLockLost, err)
		}
		s.recordFailure(context.WithoutCancel(ctx), tenantID, err)
		s.Metrics.Ended(tenantID, metrics.SyncFailed)
		return nil, err
	}
	r.DurationMS = time.Since(start).Milliseconds()
	if err := s.saveReport(context.WithoutCancel(ctx), r); err != nil {
		s.Metrics.Ended(tenantID, metrics.SyncFailed)
		return nil, err
	}
	changes := make([]string, len(r.Changes))
	for i, c := range r.Changes {
		changes[i] = c.Change
	}
	s.Metrics.Succeeded(tenantID, *r.LastSyncAt, time.Since(start), len(r.Matched), len(r.Unmatched), changes)
	s.Log.Info().Str("tenant", tenantID).Int("matched", len(r.Matched)).Int("unmatched", len(r.Unmatched)).
		Int("changes", len(r.Changes)).Int64("ms", r.DurationMS).Msg("user sync done")
	return r, nil
}

func (s *Service) run(ctx context.Context, t *tenant.Tenant, moSrc, crmSrc directory.Source) (*Report, error) {
	var mo, crm []directory.User
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		if mo, err = moSrc.Users(gctx); err != nil {
			return fmt.Errorf("%w: MyOperator: %w", ErrUpstream, err)
		}
		return nil
	})
	g.Go(func() (err error) {
		if crm, err = crmSrc.Users(gctx); err != nil {
			return fmt.Errorf("%w: CRM: %w", ErrUpstream, err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	existing, err := s.Mappings.List(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	settings := t.Sync.WithDefaults()
	now := s.now()
	p := usermatch.Match(usermatch.Input{Settings: settings, MyOperator: mo, CRM: crm, Existing: existing, Now: now})
	r := &Report{Tenant: t.ID, LastSyncAt: &now, Match: settings.Match, Users: UserCounts{MyOperator: len(mo), CRM: len(crm)},
		Unmatched: p.Unmatched, Changes: []Change{}, Warnings: p.Warnings}
	if r.Unmatched == nil {
		r.Unmatched = []usermatch.Unmatched{}
	}
	// Removals first: an agent leaving frees its email and phones for the one taking
	// them over in the same sync.
	ops := slices.Clone(p.Ops)
	slices.SortStableFunc(ops, func(a, b usermatch.Op) int { return removalsFirst(a) - removalsFirst(b) })
	left := map[string][]*mapping.ConflictError{} // by agent: values its mapping lists but another agent holds
	for _, op := range ops {
		applied, l, err := s.apply(ctx, t.ID, op)
		if err != nil {
			return nil, fmt.Errorf("apply %s of %s: %w", op.Kind, op.UserID, err)
		}
		if !applied {
			r.Warnings = append(r.Warnings, fmt.Sprintf("mapping of %s changed during the sync: %s skipped (the next sync reconciles)", op.UserID, op.Kind))
			continue
		}
		if len(l) > 0 {
			left[op.UserID] = l
		}
		c := Change{MyOperatorUserID: op.UserID, Change: op.Kind, Detail: op.Detail}
		switch {
		case op.Next != nil:
			c.CRMUserID, c.Status = op.Next.CRMUserID, op.Next.Status
		case op.Base != nil:
			c.CRMUserID = op.Base.CRMUserID
		}
		r.Changes = append(r.Changes, c)
	}
	// A value left to another agent may have been let go later in this sync (two agents
	// swapping phones: the first one changed before the second let its number go): the
	// agents claim what is free now, so a swap converges in one sync.
	for _, id := range slices.Sorted(maps.Keys(left)) {
		l, err := s.Mappings.Claim(ctx, t.ID, id)
		if err != nil {
			return nil, fmt.Errorf("claim the values of %s: %w", id, err)
		}
		for _, c := range l {
			r.Warnings = append(r.Warnings, leftWarning(id, c))
		}
	}
	ms, err := s.Mappings.List(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	r.withCurrent(ms)
	return r, nil
}

// leftWarning says that agent id's mapping lists a value the index leaves to another
// agent: calls and lookups by that value go to the other agent's owner.
func leftWarning(id string, c *mapping.ConflictError) string {
	return fmt.Sprintf("%s %s of %s stays with MyOperator user %s, whose mapping has it: calls by it go to that agent's owner; give one of them another %s, or map them by hand",
		c.Field, c.Value, id, c.Holder, c.Field)
}

func removalsFirst(op usermatch.Op) int {
	if op.Kind == usermatch.ChangeRemoved {
		return 0
	}
	return 1
}

// apply makes one planned change, unless the agent's mapping changed since it was
// planned (an admin's change in between wins). A value of the new mapping another
// agent's mapping has is left to that agent, and returned, rather than refusing the
// change: the owner, status and other values still follow the directories.
func (s *Service) apply(ctx context.Context, tenantID string, op usermatch.Op) (bool, []*mapping.ConflictError, error) {
	applied := false
	_, left, err := s.Mappings.UpdateLeaving(ctx, tenantID, op.UserID, usermatch.Actor, func(cur *call.Mapping) (*call.Mapping, error) {
		if !same(cur, op.Base) {
			return cur, nil
		}
		applied = true
		return op.Next, nil
	})
	return applied, left, err
}

func same(a, b *call.Mapping) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Source == b.Source && a.CRMUserID == b.CRMUserID && a.Status == b.Status && a.UpdatedAt.Equal(b.UpdatedAt)
}

func (s *Service) recordFailure(ctx context.Context, tenantID string, cause error) {
	s.Log.Warn().Err(cause).Str("tenant", tenantID).Msg("user sync failed")
	r, err := s.loadReport(ctx, tenantID)
	if errors.Is(err, ErrNoReport) {
		r, err = &Report{Tenant: tenantID, Matched: []Matched{}, Unmatched: []usermatch.Unmatched{}, Changes: []Change{}}, nil
	}
	if err != nil {
		return
	}
	r.LastError = &Failure{At: s.now(), Message: cause.Error()}
	_ = s.saveReport(ctx, r)
}

// Approve activates a pending mapping on behalf of actor. Approving an active
// mapping changes nothing.
func (s *Service) Approve(ctx context.Context, tenantID, userID, actor string) (*call.Mapping, error) {
	return s.Mappings.Update(ctx, tenantID, userID, actor, func(cur *call.Mapping) (*call.Mapping, error) {
		switch {
		case cur == nil:
			return nil, mapping.ErrNotFound
		case cur.Status == call.MappingActive:
			return cur, nil
		case cur.Status != call.MappingPending:
			return nil, fmt.Errorf("%w: it is %s", ErrNotPending, cur.Status)
		}
		next := *cur
		next.Status, next.UpdatedAt, next.UpdatedBy = call.MappingActive, s.now(), actor
		return &next, nil
	})
}
