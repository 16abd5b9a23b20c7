package callwriter_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callstate"
	"github.com/calltrack/calltrack/internal/callwriter"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
)

const (
	acme   = "acme"
	callID = "n2.1596270949.2175190"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// fixture is a service over in-memory fakes: no Kafka, no Redis.
type fixture struct {
	svc     *callwriter.Service
	crm     *fakeCRM
	store   *callstate.Memory
	owners  *fakeOwners
	parking *fakeParking
	trace   *fakeTrace
	clock   *clock
}

func newFixture() *fixture {
	f := &fixture{crm: &fakeCRM{}, store: callstate.NewMemory(),
		owners:  &fakeOwners{owners: map[string]string{"sumit": "1001", "sumit@example.com": "1001"}, phones: map[string]bool{"+918586848545": true}},
		parking: &fakeParking{parked: map[string]call.Log{}}, trace: &fakeTrace{updates: map[string][]trace.Update{}},
		clock: &clock{now: t0}}
	f.store.Now = f.clock.Now
	f.crm.now = f.clock.Now
	f.svc = &callwriter.Service{Tenants: tenant.NewRegistry(&tenant.Tenant{ID: acme}),
		CRMs:  func(*tenant.Tenant) (callwriter.CRM, error) { return f.crm, nil },
		Store: f.store, Owners: f.owners, Parking: f.parking, Trace: f.trace,
		Config: callwriter.Config{LeaseTTL: time.Minute, SettleDelay: 10 * time.Second, ClockSkew: 5 * time.Second,
			CallClockSkew: time.Minute},
		Now: f.clock.Now, Log: zerolog.Nop()}
	return f
}

// v1 is a v1 afterCall of the call, its agent mapped at ingest: the call began two
// minutes before it was received (t0) and lasted 42 s.
func v1() *call.Log {
	return &call.Log{Tenant: acme, CallID: callID, Source: "myoperator.v1", Direction: call.Incoming, Status: call.Answered,
		CallerNumber: "+919711636496", Duration: 42, Agent: &call.Agent{ID: "sumit", Email: "sumit@example.com"},
		Owner: &call.Owner{CRMUserID: "1001"}, StartedAt: t0.Add(-2 * time.Minute), EndedAt: t0.Add(-2*time.Minute + 42*time.Second),
		ReceivedAt: t0}
}

// receivedAt is l received again at t (a webhook redelivery, or a backfill hit whose
// receipt is the backfill's run).
func receivedAt(l *call.Log, t time.Time) *call.Log {
	l.ReceivedAt = t
	return l
}

// at is a call that began at start (by MyOperator's clock), ended 42 s later and was
// received at received.
func at(start, received time.Time) *call.Log {
	l := v1()
	l.StartedAt, l.EndedAt, l.ReceivedAt = start, start.Add(42*time.Second), received
	return l
}

// unmapped is the call of an agent nobody has mapped.
func unmapped() *call.Log {
	l := v1()
	l.Agent, l.Owner = &call.Agent{ID: "priya"}, nil
	return l
}

// v2Summary is the same call from Webhook v2, naming the agent by an uuid nobody mapped,
// with the disposition.
func v2Summary() *call.Log {
	l := v1()
	l.Source, l.Agent, l.Owner, l.Disposition = "myoperator.v2", &call.Agent{ID: "uuid-3f2a"}, nil, "Interested"
	return l
}

func disposition(d string) *call.RecordingEvent {
	return &call.RecordingEvent{Tenant: acme, CallID: callID, Disposition: d}
}

func recording(url string) *call.RecordingEvent {
	return &call.RecordingEvent{Tenant: acme, CallID: callID, Recording: call.Recording{URL: url}}
}

// step is one event handed to the service, with what must come of it.
type step struct {
	before  func(f *fixture)
	log     *call.Log
	amend   *call.RecordingEvent
	want    callwriter.Outcome
	wantErr error // errors.Is target; nil: no error
	// wantPermanent: the error is a permanent CRM rejection (dead-lettered at once).
	wantPermanent bool
	// wantTransient: the error is a transient CRM failure (retried).
	wantTransient bool
}

func (s step) run(t *testing.T, f *fixture, i int) {
	t.Helper()
	if s.before != nil {
		s.before(f)
	}
	var (
		got callwriter.Outcome
		err error
	)
	ctx := context.Background()
	if s.log != nil {
		got, err = f.svc.WriteLog(ctx, s.log)
	} else {
		got, err = f.svc.Amend(ctx, s.amend)
	}
	switch {
	case s.wantPermanent:
		require.Error(t, err, "step %d", i)
		assert.True(t, crm.IsPermanent(err), "step %d: want a permanent error, got %v", i, err)
	case s.wantTransient:
		var ce *crm.Error
		require.ErrorAs(t, err, &ce, "step %d", i)
		assert.False(t, ce.Permanent, "step %d", i)
		assert.NotErrorIs(t, err, callwriter.ErrOutcomeUnknown, "step %d", i)
	case s.wantErr != nil:
		require.ErrorIs(t, err, s.wantErr, "step %d", i)
	default:
		require.NoError(t, err, "step %d", i)
		assert.Equal(t, s.want, got, "step %d", i)
	}
}

// The decisions of the call-writing service, each from the events a call can get.
func TestService(t *testing.T) {
	advance := func(d time.Duration) func(*fixture) { return func(f *fixture) { f.clock.advance(d) } }
	faults := func(fs ...fault) func(*fixture) { return func(f *fixture) { f.crm.faults = fs } }
	settled := 11 * time.Second

	cases := []struct {
		name  string
		steps []step
		check func(t *testing.T, f *fixture)
	}{
		{
			name:  "a new call is written once, owned by its mapped user",
			steps: []step{{log: v1(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1)
				assert.Equal(t, "1001", recs[0].call.OwnerID)
				assert.Equal(t, callwriter.StatusWritten, f.store.State(acme, callID).Status)
				assert.Equal(t, []string{trace.StatusWritten}, f.trace.statuses(acme, callID))
				assert.Zero(t, f.crm.finds, "no lookup in steady state")
			},
		},
		{
			name:  "a redelivery of a written call is a duplicate: nothing sent",
			steps: []step{{log: v1(), want: callwriter.Written}, {log: v1(), want: callwriter.Duplicate}},
			check: func(t *testing.T, f *fixture) {
				assert.Equal(t, 1, f.crm.creates)
				assert.Zero(t, f.crm.updates)
				assert.Contains(t, f.trace.stages(acme, callID), trace.StageAlreadyWritten)
			},
		},
		{
			name: "a redelivery after the writer died before its trace write: the trace says written",
			steps: []step{{before: func(f *fixture) { f.trace.lose = 1 }, log: v1(), want: callwriter.Written},
				{log: v1(), want: callwriter.Duplicate}},
			check: func(t *testing.T, f *fixture) {
				assert.Equal(t, 1, f.crm.creates)
				assert.Equal(t, []string{trace.StatusWritten}, f.trace.statuses(acme, callID))
			},
		},
		{
			name: "a later version with a disposition amends the record",
			steps: []step{{log: v1(), want: callwriter.Written}, {log: func() *call.Log { l := v1(); l.Disposition = "Callback"; return l }(),
				want: callwriter.Amended}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1)
				assert.Equal(t, "Callback", recs[0].call.Log.Disposition)
				assert.Contains(t, f.trace.stages(acme, callID), trace.StageDispositionAdded)
			},
		},
		{
			name: "a recording and a disposition, from different consumer groups, both land on the record",
			steps: []step{{log: v1(), want: callwriter.Written}, {amend: recording("https://rec/1.mp3"), want: callwriter.Amended},
				{amend: disposition("Interested"), want: callwriter.Amended}, {amend: recording("https://rec/1.mp3"), want: callwriter.Duplicate}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1)
				assert.Equal(t, "https://rec/1.mp3", recs[0].call.RecordingURL)
				assert.Equal(t, "Interested", recs[0].call.Log.Disposition)
				assert.Equal(t, 2, f.crm.updates)
			},
		},
		{
			name:  "an amendment that arrives before its call log is kept and written with it",
			steps: []step{{amend: disposition("Interested"), want: callwriter.Kept}, {amend: recording("https://rec/1.mp3"), want: callwriter.Kept}, {log: v1(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1)
				assert.Equal(t, "Interested", recs[0].call.Log.Disposition)
				assert.Equal(t, "https://rec/1.mp3", recs[0].call.RecordingURL)
				assert.Zero(t, f.crm.updates)
				assert.Nil(t, f.store.State(acme, callID).Pending)
			},
		},
		{
			name:  "an unmapped agent's call is parked, not written",
			steps: []step{{log: unmapped(), want: callwriter.Parked}},
			check: func(t *testing.T, f *fixture) {
				assert.Zero(t, f.crm.creates)
				_, ok := f.parking.has(acme, callID)
				assert.True(t, ok, "parked")
				assert.Equal(t, []string{trace.StatusUnattributed}, f.trace.statuses(acme, callID))
				assert.Equal(t, []string{unmapped().Agent.Label()}, f.trace.attributed(acme, callID), "the agent to map")
			},
		},
		{
			name: "a parked call is written once its agent is mapped, and unparked",
			steps: []step{{log: unmapped(), want: callwriter.Parked}, {amend: disposition("Interested"), want: callwriter.Kept},
				{before: func(f *fixture) { f.owners.set("priya", "1002") }, log: unmapped(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1)
				assert.Equal(t, "1002", recs[0].call.OwnerID)
				assert.Equal(t, "Interested", recs[0].call.Log.Disposition)
				_, ok := f.parking.has(acme, callID)
				assert.False(t, ok, "unparked")
			},
		},
		{
			// A tenant sending both webhooks: the afterCall names the agent by user id,
			// the v2 summary of the same call by uuid; nobody is mapped yet.
			name:  "a parked call's later version keeps the agent its earlier one named",
			steps: []step{{log: unmapped(), want: callwriter.Parked}, {log: v2Summary(), want: callwriter.Parked}},
			check: func(t *testing.T, f *fixture) {
				l, ok := f.parking.has(acme, callID)
				require.True(t, ok)
				assert.Equal(t, "uuid-3f2a", l.Agent.ID)
				assert.Equal(t, []call.Agent{{ID: "priya"}}, l.EarlierAgents, "the parked copy can still be attributed by the user id")
				assert.Equal(t, []string{"user_id:priya", "uuid:uuid-3f2a"}, f.trace.parked(acme, callID),
					"the trace keeps the agent's id of each kind, for the console to offer both")
			},
		},
		{
			name: "a later version is attributed by the agent its earlier version named",
			steps: []step{{log: unmapped(), want: callwriter.Parked},
				{before: func(f *fixture) { f.owners.set("priya", "1002") }, log: v2Summary(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1)
				assert.Equal(t, "1002", recs[0].call.OwnerID, "the owner of the user id the afterCall named")
				_, ok := f.parking.has(acme, callID)
				assert.False(t, ok, "unparked")
			},
		},
		{
			name:  "an amendment of a parked call goes into the parked copy, which outlives Redis",
			steps: []step{{log: unmapped(), want: callwriter.Parked}, {amend: disposition("Interested"), want: callwriter.Kept}},
			check: func(t *testing.T, f *fixture) {
				l, ok := f.parking.has(acme, callID)
				require.True(t, ok)
				assert.Equal(t, "Interested", l.Disposition)
			},
		},
		{
			// The migrating tenant: v1 afterCall written for a mapped agent, then the v2
			// summary of the same call naming the agent by an unmapped uuid.
			name:  "a later version whose agent does not resolve amends the written call, never parks it",
			steps: []step{{log: v1(), want: callwriter.Written}, {log: v2Summary(), want: callwriter.Amended}, {log: v2Summary(), want: callwriter.Duplicate}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1, "one record")
				assert.Equal(t, "1001", recs[0].call.OwnerID, "owner kept")
				assert.Equal(t, "Interested", recs[0].call.Log.Disposition, "disposition applied")
				_, parked := f.parking.has(acme, callID)
				assert.False(t, parked)
				assert.Equal(t, []string{trace.StatusWritten}, slices.Compact(f.trace.statuses(acme, callID)), "status stays written")
				assert.Equal(t, callwriter.StatusWritten, f.store.State(acme, callID).Status)
				assert.Equal(t, []string{v1().Agent.Label()}, slices.Compact(f.trace.attributed(acme, callID)),
					"the trace keeps the agent of the written call, not the summary's")
			},
		},
		{
			name: "a later version fills what the written record lacked",
			steps: []step{{log: func() *call.Log { l := v1(); l.Duration, l.CallerNumber = 0, ""; return l }(), want: callwriter.Written},
				{log: v1(), want: callwriter.Amended}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1)
				assert.Equal(t, 42, recs[0].call.Log.Duration)
				assert.Equal(t, "+919711636496", recs[0].call.Log.CallerNumber)
			},
		},
		{
			name: "the CRM stores the record and the adapter's deadline passes: one record",
			steps: []step{{before: faults(storedThenDeadline), log: v1(), wantErr: callwriter.ErrOutcomeUnknown},
				// Too soon to trust a lookup: nothing is asked, nothing created.
				{log: v1(), wantErr: callwriter.ErrSettling},
				{before: advance(settled), log: v1(), want: callwriter.Adopted},
				{log: v1(), want: callwriter.Duplicate}},
			check: func(t *testing.T, f *fixture) {
				require.Len(t, f.crm.byCall(callID), 1, "one record")
				assert.Equal(t, 1, f.crm.finds)
				assert.Equal(t, 1, f.crm.creates)
				assert.Equal(t, "rec-1", f.store.State(acme, callID).RecordID)
				assert.Subset(t, f.trace.stages(acme, callID), []string{trace.StageOutcomeUnknown, trace.StageAdopted})
			},
		},
		{
			name: "a 2xx whose body cannot be read: one record",
			steps: []step{{before: faults(storedBodyUnreadable), log: v1(), wantErr: callwriter.ErrOutcomeUnknown},
				{before: advance(settled), log: v1(), want: callwriter.Adopted}},
			check: func(t *testing.T, f *fixture) { require.Len(t, f.crm.byCall(callID), 1) },
		},
		{
			// A CRM 40 s slow behind the adapter's 15 s timeout applies the create after
			// calltrack gave up; asked before that (the old 10 s settle), it says "absent"
			// and the call is created twice. The default settle outlasts it.
			name: "a create the CRM applies long after its client gave up: looked up after the default settle, one record",
			steps: []step{
				{before: func(f *fixture) {
					f.svc.Config.SettleDelay = 0 // the default
					f.crm.faults = append(f.crm.faults, fault{store: true, applyAfter: 40 * time.Second,
						err: &crm.Error{Op: "create", Err: context.DeadlineExceeded, Unknown: true}})
				}, log: v1(), wantErr: callwriter.ErrOutcomeUnknown},
				{before: func(f *fixture) { f.clock.advance(30 * time.Second) }, log: v1(), wantErr: callwriter.ErrSettling},
				{before: func(f *fixture) { f.clock.advance(crm.SettleDelay) }, log: v1(), want: callwriter.Adopted},
			},
			check: func(t *testing.T, f *fixture) {
				assert.Len(t, f.crm.byCall(callID), 1)
				assert.Equal(t, 1, f.crm.creates)
			},
		},
		{
			name: "a 2xx without a record id is unknown, not a rejection: one record",
			steps: []step{{before: faults(storedNoID), log: v1(), wantErr: callwriter.ErrOutcomeUnknown},
				{before: advance(settled), log: v1(), want: callwriter.Adopted}},
			check: func(t *testing.T, f *fixture) { require.Len(t, f.crm.byCall(callID), 1) },
		},
		{
			name: "a 500 after the CRM stored the record: one record",
			steps: []step{{before: faults(stored500), log: v1(), wantErr: callwriter.ErrOutcomeUnknown},
				{before: advance(settled), log: v1(), want: callwriter.Adopted}},
			check: func(t *testing.T, f *fixture) { require.Len(t, f.crm.byCall(callID), 1) },
		},
		{
			name: "the create's context ending with the request in flight: one record",
			steps: []step{{before: faults(storedThenCancelled), log: v1(), wantErr: callwriter.ErrOutcomeUnknown},
				{before: advance(settled), log: v1(), want: callwriter.Adopted}},
			check: func(t *testing.T, f *fixture) { require.Len(t, f.crm.byCall(callID), 1) },
		},
		{
			name:  "a dial that failed sent nothing: retried without a lookup",
			steps: []step{{before: faults(dialFailed), log: v1(), wantTransient: true}, {log: v1(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				require.Len(t, f.crm.byCall(callID), 1)
				assert.Zero(t, f.crm.finds)
			},
		},
		{
			name: "a connection reset with nothing stored: the lookup finds nothing and the call is created",
			steps: []step{{before: faults(connReset), log: v1(), wantErr: callwriter.ErrOutcomeUnknown},
				{before: advance(settled), log: v1(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				require.Len(t, f.crm.byCall(callID), 1)
				assert.Equal(t, 1, f.crm.finds)
			},
		},
		{
			name: "a lookup that fails creates nothing",
			steps: []step{{before: faults(storedThenDeadline), log: v1(), wantErr: callwriter.ErrOutcomeUnknown},
				{before: func(f *fixture) {
					f.clock.advance(settled)
					f.crm.findErr = &crm.Error{Op: "find", Status: http.StatusServiceUnavailable}
				}, log: v1(), wantErr: callwriter.ErrOutcomeUnknown},
				{before: func(f *fixture) { f.crm.findErr = nil }, log: v1(), want: callwriter.Adopted}},
			check: func(t *testing.T, f *fixture) {
				require.Len(t, f.crm.byCall(callID), 1)
				assert.Equal(t, 1, f.crm.creates)
			},
		},
		{
			name: "an amendment while the outcome is unknown is kept and applied once the record is adopted",
			steps: []step{{before: faults(storedThenDeadline), log: v1(), wantErr: callwriter.ErrOutcomeUnknown},
				{amend: disposition("Interested"), want: callwriter.Kept},
				{before: advance(settled), log: v1(), want: callwriter.Adopted}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1)
				assert.Equal(t, "Interested", recs[0].call.Log.Disposition)
			},
		},
		{
			name: "a crash between the create and its result: one record once the lease lapses",
			steps: []step{
				{before: func(f *fixture) {
					cs := &crashingStore{Store: f.store}
					f.svc.Store = cs
					f.crm.afterStore = cs.crash
				}, log: v1(), wantErr: callwriter.ErrInfra},
				// The worker is gone; its lease still holds the call.
				{before: func(f *fixture) { f.crm.afterStore = nil }, log: v1(), wantErr: callwriter.ErrBusy},
				{before: advance(time.Minute + time.Second), log: v1(), want: callwriter.Adopted}},
			check: func(t *testing.T, f *fixture) {
				require.Len(t, f.crm.byCall(callID), 1, "one record")
				assert.Equal(t, callwriter.StatusWritten, f.store.State(acme, callID).Status)
			},
		},
		{
			name:  "a 503 wrote nothing: the retry creates without a lookup",
			steps: []step{{before: faults(unavailable), log: v1(), wantTransient: true}, {log: v1(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				require.Len(t, f.crm.byCall(callID), 1)
				assert.Zero(t, f.crm.finds)
			},
		},
		{
			name:  "a rejection is permanent and writes nothing",
			steps: []step{{before: faults(rejected), log: v1(), wantPermanent: true}},
			check: func(t *testing.T, f *fixture) {
				assert.Empty(t, f.crm.byCall(callID))
				assert.Equal(t, callwriter.StatusNew, f.store.State(acme, callID).Status)
			},
		},
		{
			name: "a call held by another worker is busy for logs and amendments alike",
			steps: []step{{before: func(f *fixture) {
				_, _, err := f.store.Claim(context.Background(), acme, callID, time.Minute)
				if err != nil {
					panic(err)
				}
			}, log: v1(), wantErr: callwriter.ErrBusy}, {amend: disposition("x"), wantErr: callwriter.ErrBusy}},
			check: func(t *testing.T, f *fixture) { assert.Zero(t, f.crm.creates) },
		},
		{
			name: "owner_unresolved: the owner and the internal flag are resolved at write time",
			steps: []step{{log: func() *call.Log {
				l := v1()
				l.Owner, l.OwnerUnresolved, l.CallerNumber = nil, true, "+918586848545"
				return l
			}(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1)
				assert.Equal(t, "1001", recs[0].call.OwnerID)
				assert.True(t, recs[0].call.Log.Internal, "the caller is one of the tenant's agents")
				assert.False(t, recs[0].call.Log.OwnerUnresolved)
			},
		},
		{
			name: "owner_unresolved with no mapping: parked",
			steps: []step{{log: func() *call.Log {
				l := unmapped()
				l.OwnerUnresolved = true
				return l
			}(), want: callwriter.Parked}},
			check: func(t *testing.T, f *fixture) { assert.Zero(t, f.crm.creates) },
		},
		{
			name: "a call received before Redis lost its data is looked up first and adopted",
			steps: []step{{before: func(f *fixture) {
				f.crm.records = append(f.crm.records, record{id: "old-1", call: crm.Call{Log: *v1(), OwnerID: "1001"}})
				f.clock.advance(time.Hour)
				f.store.Forget()
			}, log: v1(), want: callwriter.Adopted}},
			check: func(t *testing.T, f *fixture) {
				require.Len(t, f.crm.byCall(callID), 1)
				assert.Zero(t, f.crm.creates)
				assert.Equal(t, "old-1", f.store.State(acme, callID).RecordID)
			},
		},
		{
			name: "a call received before Redis lost its data, absent from the CRM, is created after one lookup",
			steps: []step{{before: func(f *fixture) {
				f.clock.advance(time.Hour)
				f.store.Forget()
			}, log: v1(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				require.Len(t, f.crm.byCall(callID), 1)
				assert.Equal(t, 1, f.crm.finds)
			},
		},
		{
			// The reviewer's reproduction: written, Redis flushed (dedupe keys, traces and
			// call states gone), the same afterCall delivered again — received now.
			name: "a webhook redelivered after Redis lost its data is looked up and adopted, not created again",
			steps: []step{{log: v1(), want: callwriter.Written},
				{before: func(f *fixture) { f.clock.advance(time.Hour); f.store.Forget(); f.clock.advance(10 * time.Minute) },
					log: receivedAt(v1(), t0.Add(time.Hour+10*time.Minute)), want: callwriter.Adopted},
				{log: receivedAt(v1(), t0.Add(time.Hour+10*time.Minute)), want: callwriter.Duplicate}},
			check: func(t *testing.T, f *fixture) {
				require.Len(t, f.crm.byCall(callID), 1)
				assert.Equal(t, 1, f.crm.creates)
				assert.Equal(t, 1, f.crm.finds, "one lookup, then the state says written")
				assert.Equal(t, "rec-1", f.store.State(acme, callID).RecordID)
				assert.Contains(t, f.trace.stages(acme, callID), trace.StageAdopted)
			},
		},
		{
			name: "a backfill hit of a call written before Redis lost its data is looked up and adopted",
			steps: []step{{log: v1(), want: callwriter.Written},
				{before: func(f *fixture) { f.clock.advance(time.Hour); f.store.Forget(); f.clock.advance(5 * time.Hour) },
					log: func() *call.Log {
						l := receivedAt(v1(), t0.Add(6*time.Hour))
						l.Source, l.Owner, l.OwnerUnresolved = "myoperator.backfill", nil, true
						return l
					}(), want: callwriter.Adopted}},
			check: func(t *testing.T, f *fixture) {
				recs := f.crm.byCall(callID)
				require.Len(t, recs, 1)
				assert.Equal(t, "1001", recs[0].call.OwnerID)
				assert.Equal(t, 1, f.crm.creates)
			},
		},
		{
			name: "a call that began before the epoch, received after it and absent from the CRM, is created after one lookup",
			steps: []step{{before: func(f *fixture) { f.store.Forget(); f.clock.advance(time.Hour) },
				log: at(t0.Add(-time.Minute), t0.Add(time.Hour)), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				require.Len(t, f.crm.byCall(callID), 1)
				assert.Equal(t, 1, f.crm.finds)
			},
		},
		{
			name: "a call that began after the epoch (beyond the clock margin) costs no lookup",
			steps: []step{{before: func(f *fixture) { f.store.Forget(); f.clock.advance(3 * time.Minute) },
				log: at(t0.Add(2*time.Minute), t0.Add(3*time.Minute)), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) { assert.Zero(t, f.crm.finds) },
		},
		{
			// MyOperator's clock may run ahead of ours: a call stamped 30 s after the epoch
			// may have ended and been written before it.
			name: "a call that began within the clock margin after the epoch is looked up",
			steps: []step{{before: func(f *fixture) { f.store.Forget(); f.clock.advance(2 * time.Minute) },
				log: at(t0.Add(30*time.Second), t0.Add(2*time.Minute)), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) { assert.Equal(t, 1, f.crm.finds) },
		},
		{
			name: "a call with no start or end time is looked up: nothing says when it happened",
			steps: []step{{before: func(f *fixture) { f.store.Forget(); f.clock.advance(time.Hour) },
				log: func() *call.Log {
					l := at(time.Time{}, t0.Add(time.Hour))
					l.EndedAt = time.Time{}
					return l
				}(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) { assert.Equal(t, 1, f.crm.finds) },
		},
		{
			name: "a call with an end time only is placed by it",
			steps: []step{
				{before: func(f *fixture) { f.store.Forget(); f.clock.advance(time.Hour) },
					log: func() *call.Log {
						l := at(time.Time{}, t0.Add(time.Hour))
						l.EndedAt = t0.Add(-time.Minute)
						return l
					}(), want: callwriter.Written},
				{log: func() *call.Log {
					l := at(time.Time{}, t0.Add(time.Hour))
					l.CallID, l.EndedAt = "n2.after", t0.Add(30*time.Minute)
					return l
				}(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) {
				assert.Equal(t, 1, f.crm.finds, "the call that ended before the epoch only")
			},
		},
		{
			name: "a call stamped later than its receipt (beyond the margin) is looked up: its time is not believable",
			steps: []step{{before: func(f *fixture) { f.store.Forget(); f.clock.advance(time.Hour) },
				log: at(t0.Add(5*time.Hour+30*time.Minute), t0.Add(time.Hour)), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) { assert.Equal(t, 1, f.crm.finds) },
		},
		{
			name: "no epoch (a new deployment): no lookup, whatever the call's time",
			steps: []step{{log: at(t0.Add(-24*time.Hour), t0), want: callwriter.Written},
				{log: func() *call.Log {
					l := at(time.Time{}, t0)
					l.CallID, l.EndedAt = "n2.timeless", time.Time{}
					return l
				}(), want: callwriter.Written}},
			check: func(t *testing.T, f *fixture) { assert.Zero(t, f.crm.finds) },
		},
		{
			name:  "the state store down: nothing is sent to the CRM",
			steps: []step{{before: func(f *fixture) { f.store.Fail = errors.New("redis: connection refused") }, log: v1(), wantErr: callwriter.ErrInfra}},
			check: func(t *testing.T, f *fixture) { assert.Zero(t, f.crm.creates) },
		},
		{
			name:  "the mappings down: nothing is parked or sent",
			steps: []step{{before: func(f *fixture) { f.owners.err = errors.New("redis: connection refused") }, log: unmapped(), wantErr: callwriter.ErrInfra}},
			check: func(t *testing.T, f *fixture) {
				assert.Zero(t, f.crm.creates)
				_, ok := f.parking.has(acme, callID)
				assert.False(t, ok)
			},
		},
		{
			name:  "parking down: the call is not acknowledged as parked",
			steps: []step{{before: func(f *fixture) { f.parking.err = errors.New("kafka: no brokers") }, log: unmapped(), wantErr: callwriter.ErrInfra}},
			check: func(t *testing.T, f *fixture) {
				assert.Equal(t, callwriter.StatusNew, f.store.State(acme, callID).Status)
			},
		},
		{
			name:  "an unknown tenant",
			steps: []step{{log: func() *call.Log { l := v1(); l.Tenant = "nobody"; return l }(), wantErr: callwriter.ErrUnknownTenant}},
			check: func(t *testing.T, f *fixture) { assert.Zero(t, f.crm.creates) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			for i, s := range tc.steps {
				s.run(t, f, i)
			}
			tc.check(t, f)
			// Whatever happened, no call ever has two records.
			assert.LessOrEqual(t, len(f.crm.byCall(callID)), 1, "records of the call")
			assert.False(t, slices.Contains(f.trace.statuses(acme, callID)[indexOf(f.trace.statuses(acme, callID), trace.StatusWritten)+1:], trace.StatusUnattributed),
				"trace never regresses from written")
		})
	}
}

func indexOf(s []string, v string) int {
	i := slices.Index(s, v)
	if i < 0 {
		return len(s) - 1
	}
	return i
}

// crashingStore models a worker killed mid-job: once crash is called, nothing the
// worker holding the latest lease does reaches the store again (its saves and
// releases, background ones included, fail), while other workers' claims still do.
type crashingStore struct {
	callwriter.Store
	mu         sync.Mutex
	last, dead string
}

func (s *crashingStore) Claim(ctx context.Context, tenant, callID string, ttl time.Duration) (callwriter.Lease, callwriter.State, error) {
	l, st, err := s.Store.Claim(ctx, tenant, callID, ttl)
	s.mu.Lock()
	s.last = l.Token
	s.mu.Unlock()
	return l, st, err
}

func (s *crashingStore) crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = s.last
}

func (s *crashingStore) gone(l callwriter.Lease) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return l.Token == s.dead
}

func (s *crashingStore) Save(ctx context.Context, l callwriter.Lease, st callwriter.State, release bool) error {
	if s.gone(l) {
		return errors.New("redis: connection refused")
	}
	return s.Store.Save(ctx, l, st, release)
}

func (s *crashingStore) Release(ctx context.Context, l callwriter.Lease) error {
	if s.gone(l) {
		return errors.New("redis: connection refused")
	}
	return s.Store.Release(ctx, l)
}

// droppingStore is a call-state store that fails mid-answer: a claim carried out with
// its answer lost (lostClaims), releases refused (down).
type droppingStore struct {
	callwriter.Store
	lostClaims, down atomic.Bool
}

func (s *droppingStore) Claim(ctx context.Context, tenant, callID string, ttl time.Duration) (callwriter.Lease, callwriter.State, error) {
	l, st, err := s.Store.Claim(ctx, tenant, callID, ttl)
	if s.lostClaims.Load() {
		return l, callwriter.State{}, errors.New("redis: EOF")
	}
	return l, st, err
}

func (s *droppingStore) Release(ctx context.Context, l callwriter.Lease) error {
	if s.down.Load() {
		return errors.New("redis: connection refused")
	}
	return s.Store.Release(ctx, l)
}

// A lease nobody works under — its claim's answer was lost, or its release failed —
// is let go once the store answers again, so the call's next attempt writes it instead
// of finding it busy until the lease lapses (the fixture's clock stands still: never).
func TestLeaseNobodyWorksUnderIsLetGo(t *testing.T) {
	ownerLookupFails := errors.New("redis: connection refused")
	cases := []struct {
		name   string
		call   func() *call.Log
		before func(f *fixture, ds *droppingStore)
		after  func(f *fixture, ds *droppingStore)
	}{
		{name: "the claim's answer was lost", call: v1,
			before: func(_ *fixture, ds *droppingStore) { ds.lostClaims.Store(true); ds.down.Store(true) },
			after:  func(_ *fixture, ds *droppingStore) { ds.lostClaims.Store(false); ds.down.Store(false) }},
		{name: "the release failed", call: func() *call.Log {
			l := v1()
			l.Owner, l.OwnerUnresolved = nil, true // Redis was down at ingest: the writer looks the owner up
			return l
		},
			before: func(f *fixture, ds *droppingStore) {
				f.owners.mu.Lock()
				f.owners.err = ownerLookupFails
				f.owners.mu.Unlock()
				ds.down.Store(true)
			},
			after: func(f *fixture, ds *droppingStore) {
				f.owners.mu.Lock()
				f.owners.err = nil
				f.owners.mu.Unlock()
				ds.down.Store(false)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			ds := &droppingStore{Store: f.store}
			f.svc.Store = ds
			tc.before(f, ds)
			_, err := f.svc.WriteLog(context.Background(), tc.call())
			require.ErrorIs(t, err, callwriter.ErrInfra)

			tc.after(f, ds)
			var got callwriter.Outcome
			testenv.Eventually(t, 10*time.Second, "the call is no longer busy", func() bool {
				got, err = f.svc.WriteLog(context.Background(), tc.call())
				return !errors.Is(err, callwriter.ErrBusy)
			})
			require.NoError(t, err)
			assert.Equal(t, callwriter.Written, got)
			recs := f.crm.byCall(callID)
			require.Len(t, recs, 1)
			assert.Equal(t, "1001", recs[0].call.OwnerID)
		})
	}
}
