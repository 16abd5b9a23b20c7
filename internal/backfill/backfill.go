// Package backfill finds the calls MyOperator never delivered to calltrack: it asks
// MyOperator's call-log search which calls a tenant had in a time window and publishes
// each call calltrack has never seen as a call log (source myoperator.backfill), once,
// even across replicas and runs. `calltrack work` runs it periodically (Scheduler);
// on-call runs it by hand (`calltrack backfill`, POST /admin/v1/tenants/{t}/backfill).
//
// "Seen" means a call log of the call was published to Kafka — by ingest, by the
// release of a held v2 call.end, by a replay or by an earlier backfill — as the call's
// trace shows from its "published" stage on (Seen). A webhook that was received but
// whose publish failed is not seen: MyOperator may have given up retrying it.
package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/idempotency"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/redislock"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
)

// Errors of a run.
var (
	// ErrNotConfigured: the tenant has no MyOperator API token, or its backfill is off.
	ErrNotConfigured = errors.New("backfill: not configured for the tenant")
	// ErrBusy: another backfill of the tenant is running.
	ErrBusy = errors.New("backfill: a backfill of the tenant is already running")
	// ErrUnknownTenant: no such tenant.
	ErrUnknownTenant = errors.New("backfill: unknown tenant")
	// ErrBadWindow: the window is empty, in the future, or older than calltrack remembers.
	ErrBadWindow = errors.New("backfill: bad window")
	// ErrUpstream: MyOperator's call-log search failed.
	ErrUpstream = errors.New("backfill: MyOperator's call-log search failed")
	// ErrNoReport: no backfill has run for the tenant yet.
	ErrNoReport = errors.New("backfill: no backfill has run for the tenant yet")
)

// MaxAge is how far back a backfill may look: calltrack keeps a call's trace (what it
// has seen of the call) 7 days, so beyond that it could not tell a new call from one
// already written.
const MaxAge = trace.TTL

// MaxPages bounds one run: 200 pages of 100 calls (at 20 requests a minute, 10 minutes).
const MaxPages = 200

// Trigger says who started a run.
const (
	TriggerSchedule = "schedule"
	TriggerAdmin    = "admin"
	TriggerCLI      = "cli"
)

// Searcher lists one page of an account's call logs (moapi.Client).
type Searcher interface {
	Search(ctx context.Context, q moapi.SearchQuery) (moapi.SearchPage, error)
}

// Searchers returns the tenant's MyOperator client; an error wrapping ErrNotConfigured
// when the tenant has no API token.
type Searchers func(t *tenant.Tenant) (Searcher, error)

// Traces is what the backfill needs of the call traces (trace.Store).
type Traces interface {
	Get(ctx context.Context, tenant, id string) (*trace.Trace, error)
	Record(ctx context.Context, tenant, callID string, u trace.Update) error
}

// Once runs an action once per key across replicas (idempotency.Store).
type Once interface {
	Exec(ctx context.Context, key string, fn func(context.Context) (string, error)) (string, bool, error)
}

// Publisher is what the backfill needs of Kafka.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// Service runs backfills.
type Service struct {
	Tenants   *tenant.Registry
	Searchers Searchers
	Traces    Traces
	Once      Once
	Publisher Publisher
	Topics    kafkabus.Topics // Log: the found calls; Rejected: hits that cannot be read
	Redis     redis.UniversalClient
	Prefix    string
	Metrics   *Metrics // optional
	Log       zerolog.Logger
	LockTTL   time.Duration    // how long a run's lock lasts without refresh; default 1m
	Timeout   time.Duration    // bound of one run; default 15m
	RetryWait time.Duration    // first wait before a failed page is asked again (doubling); default 2s
	Now       func() time.Time // default time.Now
}

// Options of one run.
type Options struct {
	Since, Until time.Time // the window (of call start times); Until zero: now
	DryRun       bool      // count, write nothing
	Trigger      string    // TriggerSchedule, TriggerAdmin, TriggerCLI
	// Wait for a running backfill of the tenant to end instead of returning ErrBusy at once.
	Wait time.Duration
}

// Report is what a run found and did.
type Report struct {
	Tenant  string    `json:"tenant"`
	Trigger string    `json:"trigger"`
	DryRun  bool      `json:"dry_run"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	// Found: calls MyOperator lists in the window. Known: of them, calls calltrack had
	// seen. Published: calls published now. WouldPublish: a dry run's count of the calls
	// a real run would publish.
	Found        int `json:"found"`
	Known        int `json:"known"`
	Published    int `json:"published"`
	WouldPublish int `json:"would_publish,omitempty"`
	// Unreadable: hits that could not be read as a call (kept on the rejected topic).
	Unreadable int `json:"unreadable"`
	Pages      int `json:"pages"`
	// Calls are the ids of the calls (that would be) published, the first 100.
	Calls     []string  `json:"calls,omitempty"`
	StartedAt time.Time `json:"started_at"`
	TookMS    int64     `json:"took_ms"`
	Error     string    `json:"error,omitempty"`
}

const maxReportCalls = 100

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) key(tenant, what string) string {
	return fmt.Sprintf("%s:backfill:{%s}:%s", s.Prefix, tenant, what)
}

// Enabled reports whether the tenant is backfilled: it has a MyOperator API token and
// its backfill is not off.
func Enabled(t *tenant.Tenant) error {
	switch {
	case t.MyOperatorKey.Reveal() == "":
		return fmt.Errorf("%w: tenant %s has no MyOperator API token (myoperator_api_token_env)", ErrNotConfigured, t.ID)
	case t.Backfill.Disabled:
		return fmt.Errorf("%w: tenant %s has backfill.enabled: false", ErrNotConfigured, t.ID)
	}
	return nil
}

// windowSlack is how much older than MaxAge a window's start may be: a relative since
// ("7d") is computed from the caller's clock a moment before the run reads now (the
// admin API's and the CLI's check, then Service.Run's), so "7d" must not turn into
// "7 days and a few milliseconds". Kept under a minute: 7d1m is still refused.
const windowSlack = 30 * time.Second

// Window checks a run's window against now and fills Until.
func Window(since, until, now time.Time) (time.Time, time.Time, error) {
	if until.IsZero() || until.After(now) {
		until = now
	}
	switch {
	case since.IsZero():
		return since, until, fmt.Errorf("%w: since is required (e.g. 6h or 2026-10-10T09:00:00Z)", ErrBadWindow)
	case !since.Before(until):
		return since, until, fmt.Errorf("%w: since %s is not before until %s", ErrBadWindow, since.Format(time.RFC3339), until.Format(time.RFC3339))
	case since.Before(now.Add(-MaxAge - windowSlack)):
		return since, until, fmt.Errorf("%w: since %s is more than 7 days ago: calltrack keeps what it has seen of a call 7 days, so it could not tell new calls from written ones",
			ErrBadWindow, since.Format(time.RFC3339))
	}
	return since, until, nil
}

// Run backfills one tenant's window now and returns its report. Only one backfill of
// a tenant writes at a time, across every replica (a dry run writes nothing and takes
// no lock). The report is kept as the tenant's last (Report).
func (s *Service) Run(ctx context.Context, tenantID string, o Options) (*Report, error) {
	t, ok := s.Tenants.Get(tenantID)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	// A tenant whose periodic backfill is off can still be backfilled by hand.
	if err := Enabled(t); err != nil && (o.Trigger == TriggerSchedule || t.MyOperatorKey.Reveal() == "") {
		return nil, err
	}
	now := s.now()
	since, until, err := Window(o.Since, o.Until, now)
	if err != nil {
		return nil, err
	}
	search, err := s.Searchers(t)
	if err != nil {
		return nil, err
	}
	r := &Report{Tenant: t.ID, Trigger: o.Trigger, DryRun: o.DryRun, Since: since, Until: until, StartedAt: now}
	log := s.Log.With().Str("tenant", t.ID).Str("trigger", o.Trigger).Bool("dry_run", o.DryRun).Logger()

	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Minute
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !o.DryRun {
		ttl := s.LockTTL
		if ttl <= 0 {
			ttl = time.Minute
		}
		lock, err := redislock.AcquireWait(ctx, s.Redis, s.key(t.ID, "lock"), ttl, o.Wait)
		if errors.Is(err, redislock.ErrLocked) {
			s.Metrics.run(t.ID, o.Trigger, "busy")
			return nil, ErrBusy
		}
		if err != nil {
			return nil, err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := lock.Release(cctx); err != nil {
				log.Warn().Err(err).Msg("backfill lock not released; it expires")
			}
		}()
		var stop func()
		rctx, stop = lock.KeepAlive(rctx, ttl)
		defer stop()
	}

	err = s.run(rctx, t, search, r, o.DryRun, log)
	if err != nil && errors.Is(rctx.Err(), context.Canceled) && ctx.Err() == nil {
		err = fmt.Errorf("%w: %w", redislock.ErrLockLost, err)
	}
	r.TookMS = time.Since(now).Milliseconds()
	outcome := "ok"
	if err != nil {
		r.Error = err.Error()
		outcome = "failed"
	}
	if o.DryRun {
		outcome = "dry_run"
	}
	s.Metrics.run(t.ID, o.Trigger, outcome)
	if err == nil && !o.DryRun {
		s.Metrics.success(t.ID, now)
	}
	if serr := s.saveReport(context.WithoutCancel(ctx), r); serr != nil {
		log.Warn().Err(serr).Msg("backfill report not kept")
	}
	ev := log.Info()
	if err != nil {
		ev = log.Warn().Err(err)
	}
	ev.Time("since", since).Time("until", until).Int("found", r.Found).Int("known", r.Known).Int("published", r.Published).
		Int("would_publish", r.WouldPublish).Int("unreadable", r.Unreadable).Int64("ms", r.TookMS).Msg("backfill done")
	return r, err
}

// run pages through the window and handles each call.
func (s *Service) run(ctx context.Context, t *tenant.Tenant, search Searcher, r *Report, dryRun bool, log zerolog.Logger) error {
	seen := map[string]bool{}
	for offset := 0; ; {
		if r.Pages >= MaxPages {
			return fmt.Errorf("%w: more than %d pages of calls in the window: backfill a shorter window", ErrUpstream, MaxPages)
		}
		page, err := s.page(ctx, search, moapi.SearchQuery{From: r.Since, To: r.Until, Offset: offset, PageSize: moapi.MaxPageSize})
		if err != nil {
			s.Metrics.errorAt(t.ID, "search")
			return err
		}
		r.Pages++
		for _, hit := range page.Hits {
			if err := s.handle(ctx, t, hit, r, seen, dryRun, log); err != nil {
				return err
			}
		}
		offset += len(page.Hits)
		if len(page.Hits) == 0 || offset >= page.Total {
			return nil
		}
	}
}

// pageAttempts bounds the tries of one page: 429s wait for MyOperator's Retry-After
// (the limiter is paused for every replica), other transient failures back off.
const pageAttempts = 4

func (s *Service) page(ctx context.Context, search Searcher, q moapi.SearchQuery) (moapi.SearchPage, error) {
	backoff := s.RetryWait
	if backoff <= 0 {
		backoff = 2 * time.Second
	}
	for attempt := 1; ; attempt++ {
		page, err := search.Search(ctx, q)
		if err == nil {
			return page, nil
		}
		var me *moapi.Error
		permanent := errors.As(err, &me) && me.Permanent
		if permanent || attempt == pageAttempts || ctx.Err() != nil {
			return page, fmt.Errorf("%w: %w", ErrUpstream, err)
		}
		wait := backoff
		if _, limited := moapi.IsRateLimited(err); limited {
			wait = 0 // the client paused the shared limiter for the Retry-After: the next Search waits on it
		}
		backoff *= 2
		select {
		case <-ctx.Done():
			return page, fmt.Errorf("%w: %w", ErrUpstream, err)
		case <-time.After(wait):
		}
	}
}

// handle decides about one hit: unreadable, already seen, or published now (once).
func (s *Service) handle(ctx context.Context, t *tenant.Tenant, hit json.RawMessage, r *Report, seen map[string]bool, dryRun bool, log zerolog.Logger) error {
	l, err := myoperator.ParseSearchHit(t.ID, hit, s.now())
	if err != nil {
		r.Unreadable++
		s.Metrics.calls(t.ID, "unreadable", dryRun)
		log.Warn().Err(err).Msg("call-log search hit cannot be read; kept on the rejected topic")
		if !dryRun {
			m := kafkabus.Event(s.Topics.Rejected, t.ID, "calltrack/backfill", t.ID, "", hit,
				kafka.Header{Key: kafkabus.HeaderReason, Value: []byte("unreadable_search_hit")},
				kafka.Header{Key: kafkabus.HeaderError, Value: []byte(err.Error())},
				kafka.Header{Key: "kind", Value: []byte("backfill")})
			if err := s.Publisher.Publish(ctx, m); err != nil {
				s.Metrics.errorAt(t.ID, "publish")
				return fmt.Errorf("backfill: keep an unreadable hit: %w", err)
			}
		}
		return nil
	}
	if seen[l.CallID] {
		return nil // listed twice (the log grew while paging)
	}
	seen[l.CallID] = true
	r.Found++
	s.Metrics.calls(t.ID, "found", dryRun)
	clog := log.With().Str("call_id", l.CallID).Logger()

	known, err := s.seen(ctx, t.ID, l.CallID, l.LogID)
	if err != nil {
		s.Metrics.errorAt(t.ID, "check")
		return err
	}
	if known {
		r.Known++
		s.Metrics.calls(t.ID, "known", dryRun)
		return nil
	}
	if dryRun {
		r.WouldPublish++
		r.addCall(l.CallID)
		return nil
	}
	_, ran, err := s.Once.Exec(ctx, "backfill:"+t.ID+":"+l.CallID, func(ctx context.Context) (string, error) {
		return "published", s.publish(ctx, l)
	})
	switch {
	case errors.Is(err, idempotency.ErrInProgress) || (err == nil && !ran):
		// Another replica is publishing it, or an earlier run did.
		r.Known++
		s.Metrics.calls(t.ID, "known", false)
		return nil
	case err != nil && !(ran && errors.Is(err, idempotency.ErrNotRecorded)):
		s.Metrics.errorAt(t.ID, "publish")
		return fmt.Errorf("backfill: publish call %s: %w", l.CallID, err)
	}
	r.Published++
	r.addCall(l.CallID)
	s.Metrics.calls(t.ID, "published", false)
	clog.Info().Msg("call MyOperator never delivered published")
	return nil
}

func (r *Report) addCall(id string) {
	if len(r.Calls) < maxReportCalls {
		r.Calls = append(r.Calls, id)
	}
}

// seen reports whether calltrack has seen the call under either of its ids.
func (s *Service) seen(ctx context.Context, tenantID string, ids ...string) (bool, error) {
	for _, id := range ids {
		if id == "" {
			continue
		}
		tr, err := s.Traces.Get(ctx, tenantID, id)
		if errors.Is(err, trace.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("backfill: trace of %s: %w", id, err)
		}
		if Seen(tr) {
			return true, nil
		}
	}
	return false, nil
}

// StageBackfilled details the trace's first stage of a backfilled call, "received" (as
// ingest's is), recorded before the call is published.
const StageBackfilled = "found in MyOperator's call log (its webhook never reached calltrack)"

// stagePublished details its "published" stage.
const stagePublished = "published by the backfill"

// publish writes the call log with its owner left to the writer, and traces it.
func (s *Service) publish(ctx context.Context, l *call.Log) error {
	// The writer resolves the owner (and whether the call is internal) when it writes,
	// from the mappings of that moment.
	l.Owner, l.OwnerUnresolved = nil, true
	val, err := json.Marshal(l)
	if err != nil {
		return err
	}
	m := kafkabus.Event(s.Topics.Log, call.Key(l.Tenant, l.CallID), "calltrack/backfill", l.Tenant, l.CallID, val)
	// Its first stage before the publish: once published, the writer's stages may be
	// recorded before a stage written after the ack would be.
	agent := ""
	if l.Agent != nil {
		agent = l.Agent.Label()
	}
	// The call's facts with it, as ingest records a webhook's: the console shows them.
	s.trace(ctx, l, trace.Update{Stage: trace.Stage{Stage: trace.StatusReceived, Kind: "log", Detail: StageBackfilled},
		Status: trace.StatusReceived, LogID: l.LogID, Agent: agent, Call: trace.InfoOf(l)})
	if err := s.Publisher.Publish(ctx, m); err != nil {
		return err
	}
	s.trace(ctx, l, trace.Update{Stage: trace.Stage{Stage: trace.StatusPublished, Kind: "log", Detail: stagePublished},
		Status: trace.StatusPublished})
	return nil
}

// trace records a stage of a backfilled call. A stage not recorded is logged: the call
// is published all the same, and the idempotency marker keeps the next run from
// publishing it again.
func (s *Service) trace(ctx context.Context, l *call.Log, u trace.Update) {
	if err := s.Traces.Record(ctx, l.Tenant, l.CallID, u); err != nil {
		s.Log.Warn().Err(err).Str("tenant", l.Tenant).Str("call_id", l.CallID).Str("stage", u.Stage.Stage).Msg("trace not recorded")
	}
}

// Seen reports whether a trace shows that a call log of the call was published: a
// stage of the log from "published" on. "received" alone is not seen.
func Seen(t *trace.Trace) bool {
	if t == nil {
		return false
	}
	if trace.PastPublished(t.Status) {
		return true
	}
	for _, st := range t.Stages {
		if st.Kind != "log" {
			continue
		}
		switch st.Stage {
		case trace.StatusPublished, trace.StatusWritten, trace.StatusUnattributed, trace.StatusRetrying,
			trace.StatusDeadLettered, "already_written", "reattributed":
			return true
		}
	}
	return false
}

func (s *Service) saveReport(ctx context.Context, r *Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.Redis.Set(ctx, s.key(r.Tenant, "report"), b, MaxAge).Err()
}

// LastReport returns the tenant's last backfill report (of any trigger).
func (s *Service) LastReport(ctx context.Context, tenantID string) (*Report, error) {
	if _, ok := s.Tenants.Get(tenantID); !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	b, err := s.Redis.Get(ctx, s.key(tenantID, "report")).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoReport
	}
	if err != nil {
		return nil, fmt.Errorf("backfill: load report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("backfill: decode report: %w", err)
	}
	return &r, nil
}
