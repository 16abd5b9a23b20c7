package callwriter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callpolicy"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
)

// Service writes calls to their tenants' CRMs. Build it once and share it: it keeps
// one CRM client per tenant.
type Service struct {
	Tenants *tenant.Registry
	CRMs    func(*tenant.Tenant) (CRM, error)
	Store   Store
	Owners  Owners
	Parking Parking
	Trace   Tracer
	// FollowUps creates call policies' follow-up tasks once a call is written; nil: none.
	FollowUps FollowUps
	Link      RecordingLinker // default RawRecordingURL
	Config    Config
	Now       func() time.Time // default time.Now
	Log       zerolog.Logger

	mu   sync.Mutex
	crms map[string]CRM
}

// WriteLog makes the call's CRM record exist once, with everything this version of
// the call carries:
//   - written already: amend the record with what this version adds, never park it;
//   - an earlier create's outcome is unknown: look the record up first and adopt it
//     if the CRM has it; a failed lookup creates nothing;
//   - the tenant's call policy skips such calls: write nothing (a parked copy goes);
//   - nobody owns the call: park it;
//   - else create it, recording the intent first so that a crash before the result
//     is kept is resolved by a lookup, not by a second create.
//
// A call whose record exists then gets its policy's follow-up task, once.
func (s *Service) WriteLog(ctx context.Context, l *call.Log) (Outcome, error) {
	return s.handle(ctx, l.Tenant, l.CallID, func(ctx context.Context, j *job) (Outcome, error) {
		out, err := j.writeLog(ctx, l)
		if err != nil {
			return out, err
		}
		switch out {
		case Written, Adopted, Duplicate, Amended:
			// A redelivery finds the record written and tries a failed task again.
			return out, j.followUp(ctx)
		}
		return out, nil
	})
}

func (j *job) writeLog(ctx context.Context, l *call.Log) (Outcome, error) {
	if j.st.Status == StatusUnknown {
		adopted, err := j.resolveUnknown(ctx)
		if err != nil {
			return "", err
		}
		if adopted {
			if _, err := j.amendWritten(ctx, l, nil); err != nil {
				return "", err
			}
			return Adopted, nil
		}
	}
	if j.st.Status == StatusWritten {
		return j.amendWritten(ctx, l, nil)
	}
	if j.st.Parked && j.st.Log != nil {
		l.EarlierAgents = earlierAgents(l, j.st.Log)
	}
	if err := j.resolveOwner(ctx, l); err != nil {
		return "", err
	}
	if d := callpolicy.Decide(j.t.Calls, l); d.Skip() {
		return j.skip(ctx, d.Reason)
	}
	if j.st.Pending != nil {
		applyAmendment(l, j.st.Pending)
	}
	if l.Owner == nil {
		return j.park(ctx, l)
	}
	if j.mayHaveBeenWritten(l) {
		// Redis lost its data since this call happened: its record may exist with no
		// state left to say so.
		adopted, err := j.lookUp(ctx, l, "the call may have been written before the call-state epoch began")
		if err != nil {
			return "", err
		}
		if adopted {
			if _, err := j.amendWritten(ctx, l, nil); err != nil {
				return "", err
			}
			return Adopted, nil
		}
	}
	return j.create(ctx, l)
}

// Amend adds a recording and/or disposition to the call's record, or keeps it for the
// record's creation when the call is not written yet.
func (s *Service) Amend(ctx context.Context, ev *call.RecordingEvent) (Outcome, error) {
	if ev.Recording.Empty() && ev.Disposition == "" {
		return Duplicate, nil
	}
	return s.handle(ctx, ev.Tenant, ev.CallID, func(ctx context.Context, j *job) (Outcome, error) { return j.amend(ctx, ev) })
}

func (j *job) amend(ctx context.Context, ev *call.RecordingEvent) (Outcome, error) {
	if j.st.Status == StatusWritten {
		return j.amendWritten(ctx, nil, ev)
	}
	j.st.Pending = mergePending(j.st.Pending, ev)
	if j.st.Parked && j.st.Log != nil {
		// The parked copy is the durable one: it carries the amendment too.
		applyAmendment(j.st.Log, ev)
		if err := j.s.Parking.Park(ctx, j.st.Log); err != nil {
			return "", infra(err)
		}
	}
	if err := j.save(ctx, true); err != nil {
		return "", err
	}
	j.trace(ctx, trace.Update{Stage: trace.Stage{Stage: trace.StageAmendmentKept, Kind: trace.KindRecording,
		Detail: "kept until the call log is written"}})
	j.log.Info().Msg("amendment kept until the call log is written")
	return Kept, nil
}

// job is one call handled under a lease.
type job struct {
	s        *Service
	t        *tenant.Tenant
	lease    Lease
	st       State
	released bool
	deadline time.Time // for CRM requests: the lease's end less a margin
	log      zerolog.Logger
}

// handle runs fn on the call under a lease, its CRM requests bounded by the lease.
func (s *Service) handle(ctx context.Context, tenantID, callID string, fn func(context.Context, *job) (Outcome, error)) (Outcome, error) {
	j, err := s.begin(ctx, tenantID, callID)
	if err != nil {
		return "", err
	}
	defer j.end(ctx)
	ctx, cancel := context.WithDeadline(ctx, j.deadline)
	defer cancel()
	return fn(ctx, j)
}

func (s *Service) begin(ctx context.Context, tenantID, callID string) (*job, error) {
	t, ok := s.Tenants.Get(tenantID)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTenant, tenantID)
	}
	cfg := s.Config.withDefaults()
	now := s.now()
	lease, st, err := s.Store.Claim(ctx, tenantID, callID, cfg.LeaseTTL)
	if errors.Is(err, ErrBusy) {
		return nil, fmt.Errorf("call %s: %w", callID, err)
	}
	if err != nil {
		// The store may have taken the lease and lost its answer (Redis stopped right
		// then): let it go, or the call's next attempts find it busy until it lapses.
		// A claim that never reached it (no connection) took nothing.
		if !neverSent(err) {
			s.letGo(lease)
		}
		return nil, infra(err)
	}
	j := &job{s: s, t: t, lease: lease, st: st, deadline: now.Add(cfg.requestBudget()),
		log: telemetry.Log(ctx, s.Log.With()).Str("tenant", tenantID).Str("call_id", callID).Logger()}
	if st.Status == StatusUnknown && st.Log == nil {
		// Nothing to look up by: the create never got as far as its request.
		j.st.Status = StatusNew
	}
	return j, nil
}

// end releases the lease unless a save did.
func (j *job) end(ctx context.Context) {
	if j.released {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := j.s.Store.Release(rctx, j.lease); err != nil && !errors.Is(err, ErrLeaseLost) {
		j.log.Warn().Err(err).Msg("call lease not released yet; released once the store answers, else it lapses")
		j.s.letGo(j.lease)
	}
}

// letGo releases a lease in the background, trying until the store answers or the
// lease would have lapsed anyway: a call whose lease nobody works under is otherwise
// busy for the rest of it (2 minutes by default), and its retries with it.
func (s *Service) letGo(l Lease) {
	if l.Token == "" {
		return
	}
	ttl := s.Config.withDefaults().LeaseTTL
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ttl)
		defer cancel()
		bo := backoff.NewExponentialBackOff()
		bo.InitialInterval, bo.MaxInterval = 100*time.Millisecond, 5*time.Second
		_, _ = backoff.Retry(ctx, func() (struct{}, error) {
			err := s.Store.Release(ctx, l)
			if errors.Is(err, ErrLeaseLost) {
				return struct{}{}, nil // released already, or lapsed and taken: not ours
			}
			return struct{}{}, err
		}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(ttl))
	}()
}

// save stores the state, retrying a failing store for a few seconds: what it records
// (above all a written record) must not be lost to a blip.
func (j *job) save(ctx context.Context, release bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 50 * time.Millisecond
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := j.s.Store.Save(ctx, j.lease, j.st, release)
		if errors.Is(err, ErrLeaseLost) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bo))
	var perr *backoff.PermanentError
	if errors.As(err, &perr) {
		err = perr.Err
	}
	switch {
	case errors.Is(err, ErrLeaseLost):
		j.released = true
		return fmt.Errorf("call %s: %w", j.lease.CallID, err)
	case err != nil:
		return infra(err)
	}
	if release {
		j.released = true
	}
	return nil
}

func (j *job) now() time.Time { return j.s.now() }

// resolveUnknown asks the CRM whether the create whose outcome is unknown wrote the
// record: found, the record is adopted (true); not found, the call is new again.
func (j *job) resolveUnknown(ctx context.Context) (bool, error) {
	settle := j.s.Config.withDefaults().SettleDelay
	if age := j.now().Sub(j.st.Since); age < settle {
		return false, &SettlingError{CallID: j.lease.CallID, Age: age, Left: settle - age}
	}
	return j.lookUp(ctx, j.st.Log, "an earlier create got no answer")
}

// lookUp asks the CRM for the call's record and adopts it when found. Any failure
// leaves the call as it was: nothing may be created before the CRM said "absent".
func (j *job) lookUp(ctx context.Context, l *call.Log, why string) (bool, error) {
	c, err := j.s.crm(j.t)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	id, found, err := c.FindCall(ctx, j.s.crmCall(l))
	if err != nil {
		return false, fmt.Errorf("%w: looking up call %s in the CRM: %w", ErrOutcomeUnknown, l.CallID, err)
	}
	if !found {
		j.log.Info().Str("why", why).Msg("CRM has no record of the call: it is created")
		j.st.Status, j.st.Since = StatusNew, time.Time{}
		if !j.st.Parked {
			j.st.Log = nil
		}
		return false, nil
	}
	wasParked := j.st.Parked
	j.st = State{Status: StatusWritten, RecordID: id, Log: l, Pending: j.st.Pending, Epoch: j.st.Epoch}
	if err := j.save(ctx, false); err != nil {
		return false, err
	}
	j.unpark(ctx, wasParked)
	j.trace(ctx, trace.Update{Stage: trace.Stage{Stage: trace.StageAdopted, Kind: trace.KindLog,
		Detail: why + "; the CRM has record " + id + ": kept, not created again"},
		Status: trace.StatusWritten, OwnerID: ownerID(l), RecordID: id, Attributed: agentOf(l)})
	j.log.Info().Str("record_id", id).Str("why", why).Msg("call record found in the CRM and adopted")
	return true, nil
}

// mayHaveBeenWritten: the call may have been written before the store's data began
// (Redis lost its data), so a record written for it then would have left no state.
// Decided on the call's own time, not on when this copy of it arrived: a webhook
// redelivery, a replay or a backfill hit of a call written before the loss is received
// after it. A call may have been written before the epoch when
//   - it was received before the epoch (ClockSkew: our clocks' skew), or has no
//     receipt time;
//   - it began (else ended) before the epoch, allowing CallClockSkew for MyOperator's
//     clock against ours;
//   - it carries no start or end time at all: nothing says when it happened;
//   - its start (else end) is later than its receipt by more than CallClockSkew: a call
//     is received after it began, so that time cannot be trusted to place the call.
//
// Only a call that began after the epoch (and was received after it) skips the lookup.
func (j *job) mayHaveBeenWritten(l *call.Log) bool {
	if j.st.Epoch.IsZero() {
		return false
	}
	cfg := j.s.Config.withDefaults()
	if l.ReceivedAt.IsZero() || l.ReceivedAt.Before(j.st.Epoch.Add(cfg.ClockSkew)) {
		return true
	}
	at := callTime(l)
	switch {
	case at.IsZero():
		return true
	case at.After(l.ReceivedAt.Add(cfg.CallClockSkew)):
		return true
	}
	return at.Before(j.st.Epoch.Add(cfg.CallClockSkew))
}

// callTime is when the call began by MyOperator's clock, else when it ended; zero
// when it carries neither.
func callTime(l *call.Log) time.Time {
	if !l.StartedAt.IsZero() {
		return l.StartedAt
	}
	return l.EndedAt
}

// resolveOwner decides the owner where ingest did not (no mapping then, or Redis
// down: owner_unresolved, which leaves Internal undecided too).
func (j *job) resolveOwner(ctx context.Context, l *call.Log) error {
	if l.Owner != nil && !l.OwnerUnresolved {
		return nil
	}
	owner, err := j.s.Owners.Owner(ctx, j.t.ID, "", l.Agent)
	for i := 0; owner == nil && err == nil && i < len(l.EarlierAgents); i++ {
		owner, err = j.s.Owners.Owner(ctx, j.t.ID, "", &l.EarlierAgents[i])
	}
	if err != nil {
		return infra(err)
	}
	if owner == nil {
		owner = j.t.FallbackOwnerOf(l) // the department's owner, else the tenant's fallback_owner
	}
	if l.OwnerUnresolved {
		if l.Internal, err = j.s.Owners.IsAgentPhone(ctx, j.t.ID, l.CallerNumber); err != nil {
			return infra(err)
		}
		l.OwnerUnresolved = owner == nil // decided now, unless parked: then again when it is written
	}
	l.Owner = owner
	return nil
}

// skip writes nothing for a call its tenant's policy skips: not parked either (a
// parked copy from before the policy is dropped), its trace says why.
func (j *job) skip(ctx context.Context, reason string) (Outcome, error) {
	wasParked := j.st.Parked
	j.st.Parked, j.st.Log, j.st.Pending = false, nil, nil
	if err := j.save(ctx, true); err != nil {
		return "", err
	}
	j.unpark(ctx, wasParked)
	j.trace(ctx, trace.Update{Stage: trace.Stage{Stage: callpolicy.StageSkipped, Kind: trace.KindLog, Detail: reason},
		Status: callpolicy.StatusSkipped})
	j.log.Info().Str("reason", reason).Msg("call skipped by the tenant's policy")
	return Skipped, nil
}

// followUp makes the written call's follow-up task exist once (the tenant's policy
// decides whether it has one). Its errors route like the record's: a CRM refusal as
// the CRM's, an unknown outcome as one (looked up before any new create), a task being
// handled elsewhere as busy, the task store failing as calltrack's own.
func (j *job) followUp(ctx context.Context) error {
	if j.s.FollowUps == nil || j.st.Log == nil {
		return nil
	}
	_, err := j.s.FollowUps.Ensure(ctx, j.t, j.st.Log)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, callpolicy.ErrTaskSettling):
		return fmt.Errorf("%w: follow-up task: %w", ErrSettling, err)
	case errors.Is(err, callpolicy.ErrTaskOutcomeUnknown):
		return fmt.Errorf("%w: follow-up task: %w", ErrOutcomeUnknown, err)
	case errors.Is(err, callpolicy.ErrBusy):
		return fmt.Errorf("%w: follow-up task: %w", ErrBusy, err)
	case errors.As(err, new(*crm.Error)):
		return err
	default:
		return infra(err)
	}
}

// earlierAgents are the agents a parked earlier version of the call named that l does
// not: kept on l, so that a mapping of any identity the call was given attributes it
// (an afterCall names its agent by user id, a Webhook v2 summary of the same call by
// uuid; an admin may map the agent by either).
func earlierAgents(l, parked *call.Log) []call.Agent {
	named := parked.EarlierAgents
	if parked.Agent != nil {
		named = append([]call.Agent{*parked.Agent}, named...)
	}
	out := slices.Clone(l.EarlierAgents)
	for _, a := range named {
		if a.Empty() || (l.Agent != nil && *l.Agent == a) || slices.Contains(out, a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// park keeps the call until a mapping for its agent appears.
func (j *job) park(ctx context.Context, l *call.Log) (Outcome, error) {
	if err := j.s.Parking.Park(ctx, l); err != nil {
		return "", infra(err)
	}
	j.st.Parked, j.st.Log = true, l
	if err := j.save(ctx, true); err != nil {
		return "", err
	}
	u := trace.Update{Stage: trace.Stage{Stage: trace.StatusUnattributed, Kind: trace.KindLog,
		Detail: "no mapping for agent " + l.Agent.Label() + " and no fallback owner"}, Status: trace.StatusUnattributed, Attributed: agentOf(l)}
	// The agent's id by its kind, so that the trace keeps both when both webhooks name
	// the call (the console offers to map the user id with the uuid).
	if l.Agent != nil && l.Source == call.SourceMyOperatorV2 {
		u.ParkedUUID = l.Agent.ID
	} else if l.Agent != nil {
		u.ParkedUserID = l.Agent.ID
	}
	j.trace(ctx, u)
	j.log.Info().Msg("call kept unattributed")
	return Parked, nil
}

// create sends the create, with the intent recorded before it.
func (j *job) create(ctx context.Context, l *call.Log) (Outcome, error) {
	c, err := j.s.crm(j.t)
	if err != nil {
		return "", err
	}
	wasParked := j.st.Parked
	j.st.Status, j.st.Log, j.st.Since = StatusCreating, l, j.now()
	if err := j.save(ctx, false); err != nil {
		return "", err
	}
	id, err := c.CreateCall(ctx, j.s.crmCall(l))
	switch {
	case err == nil:
		j.st = State{Status: StatusWritten, RecordID: id, Log: l, Epoch: j.st.Epoch}
		if err := j.save(ctx, true); err != nil {
			// Written, but not recorded: the lease lapses with the call "creating", and
			// the next attempt finds this record by a lookup.
			j.log.Error().Err(err).Str("record_id", id).Msg("call record created but its state not kept; it is looked up when the lease lapses")
			return "", err
		}
		j.unpark(ctx, wasParked)
		detail := "record " + id
		if note := l.FallbackNote(); note != "" {
			detail += "; owned by " + note + " (owner source " + l.Owner.Source + ")"
		}
		j.trace(ctx, trace.Update{Stage: trace.Stage{Stage: trace.StatusWritten, Kind: trace.KindLog, Detail: detail},
			Status: trace.StatusWritten, OwnerID: ownerID(l), RecordID: id, Attributed: agentOf(l)})
		j.log.Info().Str("record_id", id).Str("owner", ownerID(l)).Str("owner_source", l.Owner.Source).Msg("call log written")
		return Written, nil
	case outcomeUnknown(err):
		j.st.Status, j.st.Since = StatusUnknown, j.now()
		if serr := j.save(ctx, true); serr != nil {
			j.log.Warn().Err(serr).Msg("unknown outcome not recorded; the lapsed lease records it")
		}
		j.trace(ctx, trace.Update{Stage: trace.Stage{Stage: trace.StageOutcomeUnknown, Kind: trace.KindLog,
			Detail: err.Error() + "; the CRM is asked before any new create"}})
		j.log.Warn().Err(err).Msg("CRM create got no usable answer: outcome unknown")
		return "", fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	default:
		// The CRM answered no: nothing was written.
		j.st.Status, j.st.Since = StatusNew, time.Time{}
		if !j.st.Parked {
			j.st.Log = nil
		}
		if serr := j.save(ctx, true); serr != nil {
			j.log.Warn().Err(serr).Msg("failed create not recorded; the lapsed lease costs a lookup")
		}
		j.log.Warn().Err(err).Msg("CRM write failed")
		return "", err
	}
}

// amendWritten brings the written record up to date with a later version of the
// call and/or an amendment. It never parks, re-owns or re-creates.
func (j *job) amendWritten(ctx context.Context, later *call.Log, ev *call.RecordingEvent) (Outcome, error) {
	if j.st.Log == nil {
		// Written, with no copy of what was written (lost state): keep the amendment.
		j.st.Pending = mergePending(j.st.Pending, ev)
		if err := j.save(ctx, true); err != nil {
			return "", err
		}
		j.log.Warn().Str("record_id", j.st.RecordID).Msg("written call has no stored log; amendment kept")
		return Kept, nil
	}
	merged := cloneLog(j.st.Log)
	var stages []string
	if later != nil && mergeLater(merged, later) {
		stages = append(stages, trace.StageAmended)
	}
	for _, am := range []*call.RecordingEvent{amendmentOf(later), j.st.Pending, ev} {
		applyAmendment(merged, am)
	}
	// Only what the record shows counts: a recording whose link is the same (e.g. the
	// v1 URL of a file a v2 summary named) costs no update.
	before, after := j.s.crmCall(j.st.Log), j.s.crmCall(merged)
	if after.RecordingURL != before.RecordingURL {
		stages = append(stages, trace.StageRecordingAttached)
	}
	if merged.Disposition != j.st.Log.Disposition {
		stages = append(stages, trace.StageDispositionAdded)
	}
	kind := trace.KindRecording
	if later != nil {
		kind = trace.KindLog
	}
	if len(stages) == 0 {
		if j.st.Pending != nil {
			j.st.Pending = nil
			if err := j.save(ctx, true); err != nil {
				return "", err
			}
		}
		if later != nil {
			// With the status: a writer killed between the CRM write and its trace left
			// the trace short of "written".
			j.trace(ctx, trace.Update{Stage: trace.Stage{Stage: trace.StageAlreadyWritten, Kind: kind,
				Detail: "redelivered, replayed or a later version with nothing new; record " + j.st.RecordID + " kept"},
				Status: trace.StatusWritten, OwnerID: ownerID(j.st.Log), RecordID: j.st.RecordID, Attributed: agentOf(j.st.Log)})
		}
		j.log.Info().Str("record_id", j.st.RecordID).Msg("call already written; nothing to add")
		return Duplicate, nil
	}
	c, err := j.s.crm(j.t)
	if err != nil {
		return "", err
	}
	if err := c.UpdateCall(ctx, j.st.RecordID, j.s.crmCall(merged)); err != nil {
		j.log.Warn().Err(err).Str("record_id", j.st.RecordID).Msg("CRM update failed")
		return "", err
	}
	j.st.Log, j.st.Pending = merged, nil
	if err := j.save(ctx, true); err != nil {
		return "", err
	}
	for _, st := range stages {
		j.trace(ctx, trace.Update{Stage: trace.Stage{Stage: st, Kind: kind, Detail: "record " + j.st.RecordID}})
	}
	j.log.Info().Str("record_id", j.st.RecordID).Strs("stages", stages).Msg("call record amended")
	return Amended, nil
}

func (j *job) unpark(ctx context.Context, wasParked bool) {
	if !wasParked {
		return
	}
	if err := j.s.Parking.Unpark(ctx, j.t.ID, j.lease.CallID); err != nil {
		// The redrive drops a written call from the parked set when it meets it.
		j.log.Warn().Err(err).Msg("written call not unparked yet")
	}
}

func (j *job) trace(ctx context.Context, u trace.Update) {
	if j.s.Trace == nil {
		return
	}
	if err := j.s.Trace.Record(context.WithoutCancel(ctx), j.lease.Tenant, j.lease.CallID, u); err != nil {
		j.log.Debug().Err(err).Msg("trace not recorded")
	}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// crm returns the tenant's CRM client, built once.
func (s *Service) crm(t *tenant.Tenant) (CRM, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.crms[t.ID]; ok {
		return c, nil
	}
	c, err := s.CRMs(t)
	if err != nil {
		return nil, &crm.Error{Op: "crm adapter for " + t.ID, Permanent: true, Err: err}
	}
	if s.crms == nil {
		s.crms = map[string]CRM{}
	}
	s.crms[t.ID] = c
	return c, nil
}

func (s *Service) crmCall(l *call.Log) crm.Call {
	c := crm.Call{Log: *l, OwnerID: ownerID(l)}
	if !l.Recording.Empty() {
		link := s.Link
		if link == nil {
			link = RawRecordingURL
		}
		c.RecordingURL = link(l.Tenant, l.CallID, *l.Recording)
	}
	return c
}

// outcomeUnknown tells whether a failed create may have written the record: the
// adapter says so (crm.ErrOutcomeUnknown: no answer, an unreadable one, a 5xx other
// than 503), or the create ended without the adapter's word (a deadline), or the CRM
// answered 2xx with something unusable (no record id), whatever the adapter called it.
func outcomeUnknown(err error) bool {
	if crm.OutcomeUnknown(err) {
		return true
	}
	ce, ok := errors.AsType[*crm.Error](err)
	if !ok {
		return true
	}
	return ce.Status >= 200 && ce.Status < 300
}

func infra(err error) error { return fmt.Errorf("%w: %w", ErrInfra, err) }

// neverSent: the request failed to connect, so the store ran nothing.
func neverSent(err error) bool {
	op, ok := errors.AsType[*net.OpError](err)
	return ok && op.Op == "dial"
}

// agentOf is the agent a written (or parked) log attributed the call to, for its trace
// (trace.Update.Attributed); nil for none.
func agentOf(l *call.Log) *call.Agent {
	if l == nil {
		return nil
	}
	return l.Agent
}

func ownerID(l *call.Log) string {
	if l == nil || l.Owner == nil {
		return ""
	}
	return l.Owner.CRMUserID
}
