// Package callwriter decides what becomes of each call in its tenant's CRM: create the
// record once, amend it with what arrives later, park a call nobody owns yet, and
// resolve a create whose answer was lost by looking the record up before any new
// create. It works over small interfaces it owns (the call-state store, the CRM, the
// mappings, parking, traces), so every decision is tested with in-memory fakes; Kafka,
// retries and dead letters are the caller's business (internal/route).
package callwriter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
)

// Outcome is what handling one event did.
type Outcome string

// Outcomes (also the `outcome` label of calltrack_writer_outcomes_total).
const (
	Written   Outcome = "written"      // the call's record was created
	Adopted   Outcome = "adopted"      // a create whose answer was lost had written the record: it is kept
	Duplicate Outcome = "duplicate"    // the record exists and has everything this event carries
	Amended   Outcome = "amended"      // the record exists and was updated with what this event adds
	Parked    Outcome = "unattributed" // nobody owns the call yet: kept until a mapping appears
	Kept      Outcome = "kept"         // an amendment waits for its call's record to be written
	Skipped   Outcome = "skipped"      // the tenant's call policy writes nothing for such calls
)

// Errors the caller routes on. Errors from the CRM are *crm.Error (permanent or not).
var (
	// ErrUnknownTenant: the event names a tenant calltrack does not serve.
	ErrUnknownTenant = errors.New("callwriter: tenant is not configured")
	// ErrOutcomeUnknown: a create may or may not have written the record; nothing will
	// be created for the call until the CRM has been asked.
	ErrOutcomeUnknown = errors.New("callwriter: outcome of a CRM create is unknown")
	// ErrSettling: an unknown outcome too recent to ask the CRM about yet (it may still
	// apply the create, and its search lags its writes): try again once SettleDelay
	// has passed (a *SettlingError says when). It is an ErrOutcomeUnknown, but no
	// attempt was made.
	ErrSettling = fmt.Errorf("%w: waiting for the CRM to settle", ErrOutcomeUnknown)
	// ErrBusy: another worker holds the call right now; try again shortly.
	ErrBusy = errors.New("callwriter: call is being handled by another worker")
	// ErrLeaseLost: the worker's hold on the call lapsed and another took it.
	ErrLeaseLost = errors.New("callwriter: hold on the call lapsed")
	// ErrInfra: calltrack's own dependency (Redis, Kafka) failed, not the CRM: the
	// event is to be retried as it is, not routed.
	ErrInfra = errors.New("callwriter: calltrack dependency failed")
)

// Status of a call's CRM record.
type Status string

// Statuses.
const (
	StatusNew      Status = ""         // no record written (or the state was lost)
	StatusCreating Status = "creating" // a create is being sent under a lease
	StatusUnknown  Status = "unknown"  // a create got no usable answer (or its worker died)
	StatusWritten  Status = "written"  // the record exists: RecordID
)

// State is what the store keeps of one call.
type State struct {
	Status   Status
	RecordID string               // StatusWritten
	Log      *call.Log            // written: as written; creating/unknown: as sent; new and parked: as parked
	Pending  *call.RecordingEvent // amendments waiting for the record (new, creating, unknown)
	Parked   bool                 // the call is in the tenant's parked set
	Since    time.Time            // when the status became creating or unknown
	// Epoch is when the store's current data began (Redis restarted empty then): a call
	// that happened before it may have been written with no state left to show it.
	Epoch time.Time
}

// Lease is a worker's hold on one call, from Store.Claim.
type Lease struct {
	Tenant, CallID, Token string
}

// Store keeps call states. A call is handled under a lease, so one call's events are
// never handled at once, whichever consumer group or replica they reach.
type Store interface {
	// Claim leases the call for ttl and returns its state (ErrBusy while another live
	// lease holds it). A lease that lapsed while the call was StatusCreating turns it
	// StatusUnknown: its worker died between the create and recording its result.
	Claim(ctx context.Context, tenant, callID string, ttl time.Duration) (Lease, State, error)
	// Save stores st under the lease (ErrLeaseLost once another worker claimed the
	// call); release ends the lease.
	Save(ctx context.Context, l Lease, st State, release bool) error
	// Release ends the lease, leaving the state as it is.
	Release(ctx context.Context, l Lease) error
}

// CRM is a tenant's CRM as the writer uses it.
type CRM interface {
	CreateCall(ctx context.Context, c crm.Call) (recordID string, err error)
	UpdateCall(ctx context.Context, recordID string, c crm.Call) error
	crm.Finder
}

// Owners resolves who owns a call (mapping.Store).
type Owners interface {
	Owner(ctx context.Context, tenant, fallbackOwner string, a *call.Agent) (*call.Owner, error)
	IsAgentPhone(ctx context.Context, tenant, phone string) (bool, error)
}

// Parking keeps unattributed calls until a mapping for their agent appears
// (internal/latebind): durably, not in Redis alone.
type Parking interface {
	Park(ctx context.Context, l *call.Log) error
	Unpark(ctx context.Context, tenant, callID string) error
}

// FollowUps makes a written call's follow-up task exist once when its tenant's policy
// says log_and_task (callpolicy.FollowUps); it leaves other calls alone.
type FollowUps interface {
	Ensure(ctx context.Context, t *tenant.Tenant, l *call.Log) (string, error)
}

// Tracer records a call's stages (trace.Store).
type Tracer interface {
	Record(ctx context.Context, tenant, callID string, u trace.Update) error
}

// RecordingLinker turns a recording into the link written to the CRM.
type RecordingLinker func(tenant, callID string, rec call.Recording) string

// RawRecordingURL is the default linker: MyOperator's own URL.
func RawRecordingURL(_, _ string, rec call.Recording) string { return rec.URL }

// Config tunes the service; zero fields take the defaults.
type Config struct {
	// LeaseTTL is how long a worker holds a call. A create is given at most
	// LeaseTTL-LeaseMargin, so a live worker never outlasts its lease; a dead one's
	// call is taken over (and its create looked up) once it lapses. Default 2m.
	LeaseTTL time.Duration
	// SettleDelay is how long after calltrack stopped waiting for a create's answer
	// the CRM is asked whether it has the record; a lookup that finds none allows a new
	// create. It must outlast the time a CRM may still apply a request its client gave
	// up on (a slow backend behind a gateway finishes the work after the client's
	// timeout: a Kylas sandbox 40 s slow got every call of that window twice with 10 s)
	// and the lag of its search behind its writes. Default crm.SettleDelay.
	SettleDelay time.Duration
	// ClockSkew widens the epoch check: calls received up to this long after the
	// epoch began are looked up too (ingest's clock may run ahead of the writer's).
	// Default 2s.
	ClockSkew time.Duration
	// CallClockSkew widens the epoch check by a call's own time (its start, else its
	// end, by MyOperator's clock): calls that began up to this long after the epoch
	// began are looked up too, and a call that claims to have begun more than this
	// after it was received is looked up whatever its time says. Default 5m: it costs
	// a lookup only for the calls of the first minutes after Redis lost its data.
	CallClockSkew time.Duration
}

// SettlingError is ErrSettling with how long is left before the CRM may be asked.
type SettlingError struct {
	CallID    string
	Age, Left time.Duration
}

func (e *SettlingError) Error() string {
	return fmt.Sprintf("%v: create of call %s answered nothing %s ago; asking the CRM in %s",
		ErrSettling, e.CallID, e.Age.Round(time.Millisecond), e.Left.Round(time.Millisecond))
}

func (e *SettlingError) Unwrap() error { return ErrSettling }

// LeaseMargin is the part of a lease never spent on CRM requests (at most a quarter
// of it), so a worker's last write of the call's state happens while it still holds it.
const LeaseMargin = 10 * time.Second

// requestBudget is how long a worker may spend on CRM requests under one lease.
func (c Config) requestBudget() time.Duration {
	return c.LeaseTTL - min(LeaseMargin, c.LeaseTTL/4)
}

func (c Config) withDefaults() Config {
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 2 * time.Minute
	}
	if c.SettleDelay <= 0 {
		c.SettleDelay = crm.SettleDelay
	}
	if c.ClockSkew <= 0 {
		c.ClockSkew = 2 * time.Second
	}
	if c.CallClockSkew <= 0 {
		c.CallClockSkew = 5 * time.Minute
	}
	return c
}
