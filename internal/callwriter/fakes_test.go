package callwriter_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/trace"
)

// fakeCRM stores records in memory, one per create, so a duplicate shows as two. Each
// create consumes the next scripted fault, if any.
type fakeCRM struct {
	mu      sync.Mutex
	records []record
	// late are creates the CRM applies only once now() reaches their time: a slow
	// backend finishing a request its client gave up on (fault.applyAfter).
	late    []lateRecord
	now     func() time.Time
	faults  []fault // consumed in order by CreateCall
	findErr error   // returned by FindCall while set
	// afterStore, when set, runs once a create has stored its record (e.g. to take the
	// state store down, as a crash right after the create would leave it).
	afterStore func()
	finds      int
	creates    int
	updates    int
}

type record struct {
	id   string
	call crm.Call
}

type lateRecord struct {
	at time.Time
	record
}

// fault is what one create does instead of succeeding.
type fault struct {
	store      bool          // the record is stored all the same
	applyAfter time.Duration // with store: only this long after the create (now())
	err        error         // what the adapter returns
}

var (
	// The CRM stored the record, then the adapter's deadline passed before the answer.
	storedThenDeadline = fault{store: true, err: &crm.Error{Op: "create", Err: context.DeadlineExceeded, Unknown: true}}
	// The CRM stored the record, then its gateway answered 500.
	stored500 = fault{store: true, err: &crm.Error{Op: "create", Status: http.StatusInternalServerError, Unknown: true}}
	// The CRM answered 201 but the body could not be read.
	storedBodyUnreadable = fault{store: true, err: &crm.Error{Op: "create", Status: http.StatusCreated, Message: "reading response", Err: errors.New("unexpected EOF"), Unknown: true}}
	// The create's context ended with the request in flight, before the adapter said anything.
	storedThenCancelled = fault{store: true, err: context.DeadlineExceeded}
	// The CRM answered 2xx without a record id (the adapter calls it permanent).
	storedNoID = fault{store: true, err: &crm.Error{Op: "create", Status: http.StatusCreated, Message: "response has no record id", Permanent: true}}
	// The CRM answered 503: nothing stored.
	unavailable = fault{err: &crm.Error{Op: "create", Status: http.StatusServiceUnavailable}}
	// The CRM refused the record.
	rejected = fault{err: &crm.Error{Op: "create", Status: http.StatusBadRequest, Message: "invalid owner", Permanent: true}}
	// The connection was reset with no answer; the CRM had not stored the record.
	connReset = fault{err: &crm.Error{Op: "create", Err: errors.New("read: connection reset by peer"), Unknown: true}}
	// The dial failed: nothing was sent.
	dialFailed = fault{err: &crm.Error{Op: "create", Err: errors.New("dial tcp: connection refused")}}
)

func (f *fakeCRM) CreateCall(_ context.Context, c crm.Call) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	var ft *fault
	if len(f.faults) > 0 {
		ft = &f.faults[0]
		f.faults = f.faults[1:]
	}
	if ft != nil && !ft.store {
		return "", ft.err
	}
	id := fmt.Sprintf("rec-%d", len(f.records)+len(f.late)+1)
	if ft != nil && ft.applyAfter > 0 {
		f.late = append(f.late, lateRecord{at: f.now().Add(ft.applyAfter), record: record{id: id, call: c}})
		return "", ft.err
	}
	f.records = append(f.records, record{id: id, call: c})
	if f.afterStore != nil {
		f.afterStore()
	}
	if ft != nil {
		return "", ft.err
	}
	return id, nil
}

func (f *fakeCRM) UpdateCall(_ context.Context, id string, c crm.Call) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates++
	for i := range f.records {
		if f.records[i].id == id {
			f.records[i].call = c
			return nil
		}
	}
	return &crm.Error{Op: "update", Status: http.StatusNotFound, Permanent: true}
}

// applyLate stores the late creates whose time has come.
func (f *fakeCRM) applyLate() {
	if f.now == nil {
		return
	}
	kept := f.late[:0]
	for _, l := range f.late {
		if f.now().Before(l.at) {
			kept = append(kept, l)
		} else {
			f.records = append(f.records, l.record)
		}
	}
	f.late = kept
}

func (f *fakeCRM) FindCall(_ context.Context, c crm.Call) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applyLate()
	f.finds++
	if f.findErr != nil {
		return "", false, f.findErr
	}
	for _, r := range f.records {
		if r.call.Log.CallID == c.Log.CallID {
			return r.id, true, nil
		}
	}
	return "", false, nil
}

func (f *fakeCRM) byCall(callID string) []record {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applyLate()
	var out []record
	for _, r := range f.records {
		if r.call.Log.CallID == callID {
			out = append(out, r)
		}
	}
	return out
}

// fakeOwners maps agents (by id, uuid or email) to CRM users; phones are agents' numbers.
type fakeOwners struct {
	mu     sync.Mutex
	owners map[string]string
	phones map[string]bool
	err    error
}

func (o *fakeOwners) Owner(_ context.Context, _, fallback string, a *call.Agent) (*call.Owner, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return nil, o.err
	}
	if a != nil {
		for _, k := range []string{a.ID, a.Email, a.Phone} {
			if id, ok := o.owners[k]; ok && k != "" {
				return &call.Owner{CRMUserID: id}, nil
			}
		}
	}
	if fallback != "" {
		return &call.Owner{CRMUserID: fallback, Source: "fallback"}, nil
	}
	return nil, nil
}

func (o *fakeOwners) IsAgentPhone(_ context.Context, _, p string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return false, o.err
	}
	return o.phones[p], nil
}

func (o *fakeOwners) set(agent, owner string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.owners[agent] = owner
}

// fakeParking is the parked set.
type fakeParking struct {
	mu     sync.Mutex
	parked map[string]call.Log
	err    error
}

func (p *fakeParking) Park(_ context.Context, l *call.Log) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.parked[l.Tenant+":"+l.CallID] = *l
	return nil
}

func (p *fakeParking) Unpark(_ context.Context, tenant, callID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.parked, tenant+":"+callID)
	return nil
}

func (p *fakeParking) has(tenant, callID string) (call.Log, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.parked[tenant+":"+callID]
	return l, ok
}

// fakeTrace keeps the updates of each call.
type fakeTrace struct {
	mu      sync.Mutex
	updates map[string][]trace.Update
	lose    int // the next lose updates are dropped (a writer killed before its trace write)
}

func (t *fakeTrace) Record(_ context.Context, tenant, callID string, u trace.Update) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lose > 0 {
		t.lose--
		return nil
	}
	t.updates[tenant+":"+callID] = append(t.updates[tenant+":"+callID], u)
	return nil
}

func (t *fakeTrace) stages(tenant, callID string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, u := range t.updates[tenant+":"+callID] {
		out = append(out, u.Stage.Stage)
	}
	return out
}

// attributed lists the agents the call's trace was told the call is attributed to, in order.
func (t *fakeTrace) attributed(tenant, callID string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, u := range t.updates[tenant+":"+callID] {
		if u.Attributed != nil {
			out = append(out, u.Attributed.Label())
		}
	}
	return out
}

// parked lists the agent ids the call's trace was told its parked versions named, in
// order, as "user_id:<id>" or "uuid:<id>".
func (t *fakeTrace) parked(tenant, callID string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, u := range t.updates[tenant+":"+callID] {
		if u.ParkedUserID != "" {
			out = append(out, "user_id:"+u.ParkedUserID)
		}
		if u.ParkedUUID != "" {
			out = append(out, "uuid:"+u.ParkedUUID)
		}
	}
	return out
}

// statuses lists the statuses the call's trace was set to, in order.
func (t *fakeTrace) statuses(tenant, callID string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, u := range t.updates[tenant+":"+callID] {
		if u.Status != "" {
			out = append(out, u.Status)
		}
	}
	return out
}

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
