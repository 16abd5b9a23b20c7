package callpolicy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
)

// Trace stages of call policies (trace.Stage.Stage).
const (
	StageSkipped     = "skipped"      // the tenant's policy writes nothing for the call
	StageTaskCreated = "task_created" // the call's follow-up task was created
	StageTaskAdopted = "task_adopted" // a task create whose answer was lost had created it: kept
	StageTaskUnknown = "task_outcome_unknown"
	StatusSkipped    = "skipped" // the trace status of a skipped call
)

// ErrBusy: another worker holds the call's task right now; try again shortly.
var ErrBusy = errors.New("callpolicy: the call's task is being handled by another worker")

// TaskStore keeps each call's TaskState under a lease, so one call's task is never
// handled twice at once, whichever replica or consumer group its events reach.
type TaskStore interface {
	// Claim leases the call's task for ttl (ErrBusy while another live lease holds it)
	// and returns its state and the lease token.
	Claim(ctx context.Context, tenant, callID string, ttl time.Duration) (string, TaskState, error)
	// Save stores st while the lease is held (ErrBusy once it is not).
	Save(ctx context.Context, tenant, callID, token string, st TaskState) error
	Release(ctx context.Context, tenant, callID, token string) error
}

// Tracer records a call's stages (trace.Store).
type Tracer interface {
	Record(ctx context.Context, tenant, callID string, u trace.Update) error
}

// FollowUps creates the follow-up task of each written call whose tenant's policy is
// log_and_task, once per call: redeliveries, replays, lost answers and crashes yield
// one task (the Tasks state machine under a TaskStore lease).
type FollowUps struct {
	Store TaskStore
	CRMs  func(*tenant.Tenant) (crm.Tasker, error) // the tenant's CRM adapter
	Tasks Tasks
	Trace Tracer
	Lease time.Duration // default 2m
	Log   zerolog.Logger

	mu   sync.Mutex
	crms map[string]crm.Tasker
}

// Wanted reports whether l (as written, its owner resolved) gets a follow-up task.
func Wanted(t *tenant.Tenant, l *call.Log) bool {
	return l != nil && l.Owner != nil && Decide(t.Calls, l).Task()
}

// Ensure makes l's follow-up task exist once; l is the call as written (its owner
// resolved). A call whose policy is not log_and_task is left alone.
func (f *FollowUps) Ensure(ctx context.Context, t *tenant.Tenant, l *call.Log) (string, error) {
	if !Wanted(t, l) {
		return "", nil
	}
	c, err := f.crm(t)
	if err != nil {
		return "", err
	}
	lease := f.Lease
	if lease <= 0 {
		lease = 2 * time.Minute
	}
	token, st, err := f.Store.Claim(ctx, t.ID, l.CallID, lease)
	if err != nil {
		return "", err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = f.Store.Release(rctx, t.ID, l.CallID, token)
	}()
	ctx, cancel := context.WithTimeout(ctx, lease-lease/4) // never outlast the lease
	defer cancel()
	task := TaskFor(t.Calls, l)
	out, err := f.Tasks.Ensure(ctx, c, &st, task, func(ctx context.Context) error {
		return f.Store.Save(context.WithoutCancel(ctx), t.ID, l.CallID, token, st)
	})
	log := f.Log.With().Str("tenant", t.ID).Str("call_id", l.CallID).Logger()
	switch {
	case errors.Is(err, ErrTaskSettling):
		return "", err
	case errors.Is(err, ErrTaskOutcomeUnknown):
		f.trace(ctx, t.ID, l.CallID, trace.Update{Stage: trace.Stage{Stage: StageTaskUnknown, Kind: "log",
			Detail: err.Error() + "; the CRM is asked before any new create"}})
		log.Warn().Err(err).Msg("follow-up task create got no usable answer")
		return "", err
	case err != nil:
		log.Warn().Err(err).Msg("follow-up task not created")
		return "", err
	case out == TaskWritten || out == TaskAdopted:
		stage := StageTaskCreated
		if out == TaskAdopted {
			stage = StageTaskAdopted
		}
		f.trace(ctx, t.ID, l.CallID, trace.Update{Stage: trace.Stage{Stage: stage, Kind: "log",
			Detail: fmt.Sprintf("task %s %q for owner %s, due %s", st.ID, task.Subject, task.OwnerID, task.Due.UTC().Format(time.RFC3339))}})
		log.Info().Str("task_id", st.ID).Str("owner", task.OwnerID).Msg("follow-up task created")
	}
	return out, nil
}

func (f *FollowUps) trace(ctx context.Context, tenantID, callID string, u trace.Update) {
	if f.Trace == nil {
		return
	}
	if err := f.Trace.Record(context.WithoutCancel(ctx), tenantID, callID, u); err != nil {
		f.Log.Debug().Err(err).Msg("trace not recorded")
	}
}

func (f *FollowUps) crm(t *tenant.Tenant) (crm.Tasker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.crms[t.ID]; ok {
		return c, nil
	}
	c, err := f.CRMs(t)
	if err != nil {
		return nil, &crm.Error{Op: "crm tasks for " + t.ID, Permanent: true, Err: err}
	}
	if f.crms == nil {
		f.crms = map[string]crm.Tasker{}
	}
	f.crms[t.ID] = c
	return c, nil
}
