// Package crmtest is the conformance suite every crm.Adapter passes against its
// CRM's sandbox: the same cases run for Kylas and Zoho, so "the call appears once,
// owned by the mapped user, related to the caller, with its recording" means the
// same thing for both.
package crmtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// Record is what the CRM stored for one call, in CRM-neutral terms.
type Record struct {
	ID           string
	OwnerID      string
	CallID       string         // our call id, when the CRM keeps it (Kylas remoteId); else ""
	Phone        string         // the customer's number as stored
	Direction    call.Direction // "" when the CRM does not keep it apart
	Outcome      string         // the CRM's own word, for failure messages
	RecordingURL string
	RelatedID    string // the lead/contact the record is related to; "" for none
	RelatedType  string // "contact" or "lead"
}

// Backend is the CRM side of one test: a fresh sandbox the adapter writes to.
type Backend interface {
	// Records returns everything the CRM holds, in creation order.
	Records(t *testing.T) []Record
	// AddContact and AddLead store a person with one phone number (E.164) and return its id.
	AddContact(t *testing.T, e164 string) string
	AddLead(t *testing.T, e164 string) string
	// Fail makes every following adapter call (writes and searches) answer status
	// (400, 429, 500 or 503); 0 heals.
	Fail(t *testing.T, status int)
	// LoseResponses makes that share (0..1) of writes be applied and then answered by
	// closing the connection; SearchLag makes stored records show in searches only
	// that long after they were stored. Duplicates counts creates of a call id
	// already stored.
	LoseResponses(t *testing.T, rate float64)
	SearchLag(t *testing.T, d time.Duration)
	Duplicates(t *testing.T) int
	// Leads returns every lead the CRM holds, in creation order.
	Leads(t *testing.T) []Lead
	// DeleteLead and DeleteContact remove a person, as a CRM user deleting, merging
	// or converting it does: a write still naming it is refused.
	DeleteLead(t *testing.T, id string)
	DeleteContact(t *testing.T, id string)
}

// Lead is a lead as the CRM stored it.
type Lead struct {
	ID, FirstName, LastName, OwnerID, Source string
	Phone                                    string // as stored
}

// Options configure the adapter of one case.
type Options struct {
	Leads   crm.LeadPolicy
	Parties crm.PartyCache // nil: the adapter's own
}

// Harness builds what each case needs.
type Harness struct {
	// Setup returns a fresh adapter wired to a fresh backend; cleanup via t.Cleanup.
	Setup func(t *testing.T, o Options) (crm.Adapter, Backend)
	// Another returns a second adapter (its own caches) on the backend of a.
	Another func(t *testing.T, b Backend, o Options) crm.Adapter
	// LeadSource is a lead source the CRM accepts (Kylas: an option id; Zoho: a Lead_Source value).
	LeadSource string
	// Owners are two distinct user ids the CRM accepts as owners.
	Owners [2]string
	// Settle is the adapter's search settle time (crm.FindSettled); the find cases
	// make the sandbox's search lag behind writes by half of it.
	Settle time.Duration
}

// Customer numbers used by the cases.
const (
	phoneA = "+919711636496"
	phoneB = "+919822334455"
	phoneC = "+918800112233"
)

var base = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// NewCall returns a completed call ready to write: callID from customer e164,
// owned by owner.
func NewCall(callID, e164, owner string, dir call.Direction, status call.Status) crm.Call {
	agent := &call.Agent{ID: "5f2a9c0e1b3d4a67", Name: "Asha Rao", Email: "asha@example.com", Phone: "+919000000001"}
	dur := 95
	if status != call.Answered {
		dur = 0
	}
	return crm.Call{
		OwnerID: owner,
		Log: call.Log{
			Tenant: "conformance", CallID: callID, Source: "myoperator.v1",
			Direction: dir, Status: status, CallerNumber: e164, DID: "+918000000000",
			Department: "Sales", StartedAt: base, EndedAt: base.Add(time.Duration(dur) * time.Second),
			Duration: dur, Agent: agent, ReceivedAt: base.Add(2 * time.Minute),
		},
	}
}

// Run runs the suite; each case gets its own adapter and backend and runs in parallel.
func Run(t *testing.T, h Harness) {
	require.NotNil(t, h.Setup, "Harness.Setup")
	require.NotEqual(t, h.Owners[0], h.Owners[1], "Harness.Owners must differ")
	require.Positive(t, h.Settle, "Harness.Settle")
	require.NotNil(t, h.Another, "Harness.Another")
	h = h.withOwners()
	cases := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"create sets owner", testOwner},
		{"one record per create", testOneRecordPerCreate},
		{"concurrent creates each get their own record", testConcurrentCreates},
		{"update adds recording without a second record", testUpdateRecording},
		{"related contact found", testRelatedContact},
		{"related lead found", testRelatedLead},
		{"contact preferred over lead", testContactOverLead},
		{"unknown caller stays unrelated", testUnrelated},
		{"errors classified", testErrors},
		{"cancelled context is transient", testCancelled},
		{"find: a written call is found, even while the search lags", testFindWritten},
		{"find: another call at the same time from the same number is not ours", testFindAbsent},
		{"find: a lost response is an unknown outcome, and the record is found", testFindLostResponse},
		{"find: a failing search is an error, never absent", testFindSearchFails},
		{"withheld caller: written once, owned by the call's owner, related to no one, no lead made", testWithheldCaller},
		{"unknown caller: a lead named Inbound <number>, owned by the call's owner, related", testUnknownCallerLead},
		{"unknown caller: MyOperator's contact name names the lead", testCallerNameNamesLead},
		{"unknown caller: the next call finds the lead, also from another replica", testNextCallFindsLead},
		{"unknown caller: a burst of first calls makes one lead", testBurstMakesOneLead},
		{"unknown caller: a lead create that lost its answer is not repeated", testLeadLostResponse},
		{"stale party: a cached lead deleted in the CRM: written once, related to a new lead, owned right, one lead", testGoneLeadMadeAgain},
		{"stale party: a cached lead merged into a contact: related to the contact, no lead made", testGoneLeadMerged},
		{"stale party: a cached contact deleted, unknown_caller none: written unrelated", testGoneContactUnrelated},
		{"stale party: an update of a call whose lead was deleted is written", testGoneUpdate},
		{"stale party: a burst of calls on two replicas makes one new lead", testGoneBurst},
		{"stale party: refused again, the call is rejected after two writes, no loop", testGoneTwice},
		{"stale party: another refusal (an owner the CRM lacks) is not retried", testOtherRefusalNotRetried},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, h)
		})
	}
}

// only returns the single record, failing the test when there is not exactly one.
func only(t *testing.T, b Backend) Record {
	t.Helper()
	recs := b.Records(t)
	require.Len(t, recs, 1, "records: %+v", recs)
	return recs[0]
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// samePhone: CRMs may store a number with or without + and dial code.
func samePhone(t *testing.T, want, got string) {
	t.Helper()
	w, g := digits(want), digits(got)
	assert.True(t, g != "" && (strings.HasSuffix(w, g) || strings.HasSuffix(g, w)) && len(g) >= 10,
		"phone: want %s, CRM stored %q", want, got)
}

func testOwner(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	want := map[string]string{}
	for i, owner := range h.Owners {
		c := NewCall(fmt.Sprintf("owner-%d", i), phoneA, owner, call.Incoming, call.Answered)
		id, err := a.CreateCall(ctx, c)
		require.NoError(t, err)
		require.NotEmpty(t, id)
		want[id] = owner
	}
	recs := b.Records(t)
	require.Len(t, recs, 2)
	for _, r := range recs {
		assert.Equal(t, want[r.ID], r.OwnerID, "owner of record %s", r.ID)
	}
}

func testOneRecordPerCreate(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	calls := []crm.Call{
		NewCall("one-1", phoneA, h.Owners[0], call.Incoming, call.Answered),
		NewCall("one-2", phoneB, h.Owners[0], call.Incoming, call.Missed),
		NewCall("one-3", phoneC, h.Owners[1], call.Outgoing, call.Missed),
	}
	ids := map[string]crm.Call{}
	for _, c := range calls {
		id, err := a.CreateCall(ctx, c)
		require.NoError(t, err)
		require.NotContains(t, ids, id, "record id reused")
		ids[id] = c
	}
	recs := b.Records(t)
	require.Len(t, recs, len(calls))
	for _, r := range recs {
		c, ok := ids[r.ID]
		require.True(t, ok, "record %s was not returned by CreateCall", r.ID)
		samePhone(t, c.Log.CallerNumber, r.Phone)
		if r.Direction != "" {
			assert.Equal(t, c.Log.Direction, r.Direction, "direction of %s", r.ID)
		}
		if r.CallID != "" {
			assert.Equal(t, c.Log.CallID, r.CallID)
		}
		assert.Empty(t, r.RecordingURL)
	}
}

// testConcurrentCreates: an adapter may share requests between concurrent
// callers (Zoho batches inserts); each caller must still get its own record.
func testConcurrentCreates(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	phones := []string{phoneA, phoneB, phoneC}
	calls := make([]crm.Call, 12)
	for i := range calls {
		calls[i] = NewCall(fmt.Sprintf("conc-%02d", i), phones[i%3], h.Owners[i%2], call.Incoming, call.Answered)
	}
	ids := make([]string, len(calls))
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { ids[i], errs[i] = a.CreateCall(ctx, c) })
	}
	wg.Wait()
	byID := map[string]Record{}
	for _, r := range b.Records(t) {
		byID[r.ID] = r
	}
	require.Len(t, byID, len(calls))
	for i, c := range calls {
		require.NoError(t, errs[i], "create %d", i)
		r, ok := byID[ids[i]]
		require.True(t, ok, "id %q returned to caller %d is no record", ids[i], i)
		assert.Equal(t, c.OwnerID, r.OwnerID, "owner of caller %d's record", i)
		samePhone(t, c.Log.CallerNumber, r.Phone)
		if r.CallID != "" {
			assert.Equal(t, c.Log.CallID, r.CallID, "caller %d got another call's record", i)
		}
	}
}

func testUpdateRecording(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	contact := b.AddContact(t, phoneA)
	c := NewCall("rec-1", phoneA, h.Owners[1], call.Incoming, call.Answered)
	id, err := a.CreateCall(ctx, c)
	require.NoError(t, err)
	assert.Empty(t, only(t, b).RecordingURL)

	c.RecordingURL = "https://calltrack.example/recordings/conformance/rec-1?sig=abc"
	c.Log.Recording = &call.Recording{FileName: "rec-1.mp3"}
	require.NoError(t, a.UpdateCall(ctx, id, c))

	r := only(t, b)
	assert.Equal(t, id, r.ID)
	assert.Equal(t, c.RecordingURL, r.RecordingURL)
	assert.Equal(t, h.Owners[1], r.OwnerID, "update must keep the owner")
	assert.Equal(t, contact, r.RelatedID, "update must keep the relation")
}

func testRelatedContact(t *testing.T, h Harness) {
	a, b := h.Setup(t, Options{})
	b.AddContact(t, phoneB) // someone else
	want := b.AddContact(t, phoneA)
	_, err := a.CreateCall(t.Context(), NewCall("rel-c", phoneA, h.Owners[0], call.Incoming, call.Answered))
	require.NoError(t, err)
	r := only(t, b)
	assert.Equal(t, want, r.RelatedID)
	assert.Equal(t, "contact", r.RelatedType)
}

func testRelatedLead(t *testing.T, h Harness) {
	a, b := h.Setup(t, Options{})
	want := b.AddLead(t, phoneC)
	_, err := a.CreateCall(t.Context(), NewCall("rel-l", phoneC, h.Owners[0], call.Outgoing, call.Answered))
	require.NoError(t, err)
	r := only(t, b)
	assert.Equal(t, want, r.RelatedID)
	assert.Equal(t, "lead", r.RelatedType)
}

func testContactOverLead(t *testing.T, h Harness) {
	a, b := h.Setup(t, Options{})
	b.AddLead(t, phoneA)
	want := b.AddContact(t, phoneA)
	_, err := a.CreateCall(t.Context(), NewCall("rel-both", phoneA, h.Owners[0], call.Incoming, call.Missed))
	require.NoError(t, err)
	r := only(t, b)
	assert.Equal(t, want, r.RelatedID)
	assert.Equal(t, "contact", r.RelatedType)
}

func testUnrelated(t *testing.T, h Harness) {
	a, b := h.Setup(t, Options{})
	b.AddContact(t, phoneB)
	b.AddLead(t, phoneC)
	_, err := a.CreateCall(t.Context(), NewCall("rel-none", phoneA, h.Owners[0], call.Incoming, call.Answered))
	require.NoError(t, err)
	assert.Empty(t, only(t, b).RelatedID)
}

func testErrors(t *testing.T, h Harness) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
		{http.StatusServiceUnavailable, false},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			a, b := h.Setup(t, Options{})
			c := NewCall("err", phoneA, h.Owners[0], call.Incoming, call.Answered)
			b.Fail(t, tc.status)
			_, err := a.CreateCall(ctx, c)
			check := func(err error) {
				t.Helper()
				require.Error(t, err)
				assert.NotErrorIs(t, err, crm.ErrPartyGone, "a fault is no stale party")
				var ce *crm.Error
				require.True(t, errors.As(err, &ce), "want a *crm.Error, got %T: %v", err, err)
				assert.Equal(t, tc.status, crm.HTTPStatus(err))
				assert.Equal(t, tc.permanent, crm.IsPermanent(err), "%v", err)
				if tc.status == http.StatusTooManyRequests {
					assert.Positive(t, crm.RetryAfter(err), "a 429 must carry the CRM's Retry-After")
				}
			}
			check(err)
			assert.Empty(t, b.Records(t), "a failed create must leave no record")

			b.Fail(t, 0)
			id, err := a.CreateCall(ctx, c)
			require.NoError(t, err, "after healing")
			b.Fail(t, tc.status)
			check(a.UpdateCall(ctx, id, c))
			assert.Len(t, b.Records(t), 1)
		})
	}
}

func testCancelled(t *testing.T, h Harness) {
	a, b := h.Setup(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := a.CreateCall(ctx, NewCall("cancel", phoneA, h.Owners[0], call.Incoming, call.Answered))
	require.Error(t, err)
	assert.False(t, crm.IsPermanent(err), "%v", err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, b.Records(t))
}

func testFindWritten(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	b.SearchLag(t, h.Settle/2)
	c := NewCall("find-1", phoneA, h.Owners[0], call.Incoming, call.Answered)
	id, err := a.CreateCall(ctx, c)
	require.NoError(t, err)
	// Asked at once: the search does not show the record yet; the answer must still be "found".
	got, found, err := a.FindCall(ctx, c)
	require.NoError(t, err)
	require.True(t, found, "a record written just before FindCall must be found")
	assert.Equal(t, id, got)
	assert.Len(t, b.Records(t), 1)
}

func testFindAbsent(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	b.SearchLag(t, h.Settle/2)
	mine := NewCall("find-mine", phoneB, h.Owners[0], call.Incoming, call.Answered)
	other := NewCall("find-other", phoneB, h.Owners[0], call.Incoming, call.Answered) // same number, same time
	_, err := a.CreateCall(ctx, other)
	require.NoError(t, err)
	_, found, err := a.FindCall(ctx, mine)
	require.NoError(t, err)
	assert.False(t, found, "another call's record must not be taken for this one")
	begun := time.Now()
	_, found, err = a.FindCall(ctx, NewCall("find-never", phoneC, h.Owners[1], call.Outgoing, call.Missed))
	require.NoError(t, err)
	assert.False(t, found)
	assert.GreaterOrEqual(t, time.Since(begun), h.Settle, "absent must come from a search made after the settle time")
}

func testFindLostResponse(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	b.SearchLag(t, h.Settle/2)
	c := NewCall("find-lost", phoneA, h.Owners[1], call.Incoming, call.Answered)
	b.LoseResponses(t, 1)
	_, err := a.CreateCall(ctx, c)
	require.Error(t, err)
	assert.True(t, crm.OutcomeUnknown(err), "a write without an answer has an unknown outcome: %v", err)
	assert.ErrorIs(t, err, crm.ErrOutcomeUnknown)
	assert.False(t, crm.IsPermanent(err))
	b.LoseResponses(t, 0)
	require.Len(t, b.Records(t), 1, "the sandbox applied the write")

	id, found, err := a.FindCall(ctx, c)
	require.NoError(t, err)
	require.True(t, found, "the record the lost write made must be found")
	r := only(t, b)
	assert.Equal(t, r.ID, id)
	assert.Equal(t, h.Owners[1], r.OwnerID)
	assert.Zero(t, b.Duplicates(t))
}

func testFindSearchFails(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, Options{})
	c := NewCall("find-fail", phoneA, h.Owners[0], call.Incoming, call.Answered)
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		b.Fail(t, status)
		id, found, err := a.FindCall(ctx, c)
		require.Error(t, err, "status %d", status)
		assert.False(t, found)
		assert.Empty(t, id)
		assert.False(t, crm.IsPermanent(err), "%v", err)
	}
	b.Fail(t, 0)
	_, found, err := a.FindCall(ctx, c)
	require.NoError(t, err)
	assert.False(t, found)
}

// Faulter is what both sandboxes offer to steer faults.
type Faulter interface {
	Faults() sandbox.Faults
	SetFaults(sandbox.Faults) error
	Stats() sandbox.Stats
}

// SandboxFaults implements Backend's fault methods for a sandbox; backends embed it.
// It also seeds the harness's owners as users of the sandbox (AddUsers).
type SandboxFaults struct{ S Faulter }

// userAdder is a backend that can make ids users of its CRM.
type userAdder interface {
	AddUsers(t *testing.T, ids ...string)
}

// AddUsers makes ids users of the sandbox (a Kylas id must be a number). The
// sandboxes refuse a record whose owner is not a user, as the real services do, so
// the suite's owners must be users of the CRM the adapter writes to.
func (b SandboxFaults) AddUsers(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		switch sb := b.S.(type) {
		case *sandbox.Kylas:
			n, err := strconv.ParseInt(id, 10, 64)
			require.NoError(t, err, "a Kylas user id is a number: %q", id)
			sb.AddUser(sandbox.KylasUser{ID: n, FirstName: "Owner", LastName: id, Email: "owner" + id + "@example.com", Active: true})
		case *sandbox.Zoho:
			sb.AddUser(sandbox.ZohoUser{ID: id, FullName: "Owner " + id, Email: "owner" + id + "@example.com"})
		default:
			t.Fatalf("AddUsers: no users for a %T", b.S)
		}
	}
}

// withOwners makes every backend h sets up have h.Owners as users (when the
// backend can add users: SandboxFaults backends can).
func (h Harness) withOwners() Harness {
	setup := h.Setup
	h.Setup = func(t *testing.T, o Options) (crm.Adapter, Backend) {
		a, b := setup(t, o)
		if u, ok := b.(userAdder); ok {
			u.AddUsers(t, h.Owners[0], h.Owners[1])
		}
		return a, b
	}
	return h
}

func (b SandboxFaults) edit(t *testing.T, fn func(*sandbox.Faults)) {
	t.Helper()
	f := b.S.Faults()
	fn(&f)
	require.NoError(t, b.S.SetFaults(f))
}

// Fail implements Backend.
func (b SandboxFaults) Fail(t *testing.T, status int) {
	b.edit(t, func(f *sandbox.Faults) {
		f.ErrorRate, f.Status = 0, 0
		if status != 0 {
			f.ErrorRate, f.Status = 1, status
		}
	})
}

// LoseResponses implements Backend.
func (b SandboxFaults) LoseResponses(t *testing.T, rate float64) {
	b.edit(t, func(f *sandbox.Faults) { f.LostResponseRate = rate })
}

// SearchLag implements Backend.
func (b SandboxFaults) SearchLag(t *testing.T, d time.Duration) {
	b.edit(t, func(f *sandbox.Faults) { f.SearchLagMS = int(d / time.Millisecond) })
}

// Duplicates implements Backend.
func (b SandboxFaults) Duplicates(*testing.T) int { return b.S.Stats().Duplicates }

func leadPolicy(h Harness) Options {
	return Options{Leads: crm.LeadPolicy{Create: true, Source: h.LeadSource}}
}

// WithheldCallers are the caller ids MyOperator may send in place of a number, as
// call.Log.CallerRaw (the parsers' CallerNumber is then ""): withheld, none at all,
// too short, too long.
var WithheldCallers = []string{"anonymous", "", "+1234", "1234567890123456789"}

// NewWithheldCall is NewCall for a caller whose number MyOperator withheld: raw is
// what it sent instead (WithheldCallers).
func NewWithheldCall(callID, raw, owner string, dir call.Direction, status call.Status) crm.Call {
	c := NewCall(callID, "", owner, dir, status)
	c.Log.CallerRaw = raw
	return c
}

// testWithheldCaller: a call whose number MyOperator withheld (or sent garbled) is
// written like any other — once, owned by the call's owner, found again by FindCall —
// related to no lead or contact, and no lead is made for it, even with
// unknown_caller: create_lead (there is no number to make it with).
func testWithheldCaller(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, leadPolicy(h))
	b.AddContact(t, phoneA) // someone with a number: never taken for the withheld caller
	b.AddLead(t, phoneB)
	ids := map[string]crm.Call{}
	for i, raw := range WithheldCallers {
		dir, status := call.Incoming, []call.Status{call.Answered, call.Missed}[i%2]
		if i == len(WithheldCallers)-1 {
			dir = call.Outgoing
		}
		c := NewWithheldCall(fmt.Sprintf("withheld-%d", i), raw, h.Owners[i%2], dir, status)
		id, err := a.CreateCall(ctx, c)
		require.NoError(t, err, "caller %q", raw)
		require.NotContains(t, ids, id, "record id reused")
		ids[id] = c
	}
	recs := b.Records(t)
	require.Len(t, recs, len(WithheldCallers), "one record per call: %+v", recs)
	for _, r := range recs {
		c, ok := ids[r.ID]
		require.True(t, ok, "record %s was not returned by CreateCall", r.ID)
		assert.Equal(t, c.OwnerID, r.OwnerID, "owner of the call from %q", c.Log.CallerRaw)
		assert.Empty(t, r.RelatedID, "the call from %q is related to no one", c.Log.CallerRaw)
		if r.CallID != "" {
			assert.Equal(t, c.Log.CallID, r.CallID)
		}
	}
	assert.Len(t, b.Leads(t), 1, "no lead made for a withheld number")
	for id, c := range ids {
		got, found, err := a.FindCall(ctx, c)
		require.NoError(t, err)
		require.True(t, found, "the call from %q is found again", c.Log.CallerRaw)
		assert.Equal(t, id, got)
	}
}

func testUnknownCallerLead(t *testing.T, h Harness) {
	a, b := h.Setup(t, leadPolicy(h))
	b.AddContact(t, phoneB) // someone else
	_, err := a.CreateCall(t.Context(), NewCall("lead-1", phoneA, h.Owners[1], call.Incoming, call.Missed))
	require.NoError(t, err)
	leads := b.Leads(t)
	require.Len(t, leads, 1)
	l := leads[0]
	assert.Equal(t, "Inbound "+phoneA, strings.TrimSpace(l.FirstName+" "+l.LastName))
	assert.Equal(t, h.Owners[1], l.OwnerID, "owned by the call's owner")
	assert.Equal(t, h.LeadSource, l.Source)
	samePhone(t, phoneA, l.Phone)
	r := only(t, b)
	assert.Equal(t, l.ID, r.RelatedID)
	assert.Equal(t, "lead", r.RelatedType)
}

func testCallerNameNamesLead(t *testing.T, h Harness) {
	a, b := h.Setup(t, leadPolicy(h))
	c := NewCall("lead-name", phoneC, h.Owners[0], call.Incoming, call.Answered)
	c.Log.CallerName = "  Ravi   Kumar "
	_, err := a.CreateCall(t.Context(), c)
	require.NoError(t, err)
	leads := b.Leads(t)
	require.Len(t, leads, 1)
	assert.Equal(t, "Ravi", leads[0].FirstName)
	assert.Equal(t, "Kumar", leads[0].LastName)
}

func testNextCallFindsLead(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, leadPolicy(h))
	_, err := a.CreateCall(ctx, NewCall("next-1", phoneB, h.Owners[0], call.Incoming, call.Answered))
	require.NoError(t, err)
	_, err = a.CreateCall(ctx, NewCall("next-2", phoneB, h.Owners[1], call.Incoming, call.Answered))
	require.NoError(t, err)
	// Another replica without the first one's cache finds it by searching.
	other := h.Another(t, b, leadPolicy(h))
	_, err = other.CreateCall(ctx, NewCall("next-3", phoneB, h.Owners[0], call.Outgoing, call.Answered))
	require.NoError(t, err)
	leads := b.Leads(t)
	require.Len(t, leads, 1, "one lead for one number")
	recs := b.Records(t)
	require.Len(t, recs, 3)
	for _, r := range recs {
		assert.Equal(t, leads[0].ID, r.RelatedID, "record %s", r.ID)
	}
}

func testBurstMakesOneLead(t *testing.T, h Harness) {
	a, b := h.Setup(t, leadPolicy(h))
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = a.CreateCall(t.Context(), NewCall(fmt.Sprintf("burst-%d", i), phoneC, h.Owners[i%2], call.Incoming, call.Answered))
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "call %d", i)
	}
	leads := b.Leads(t)
	require.Len(t, leads, 1)
	for _, r := range b.Records(t) {
		assert.Equal(t, leads[0].ID, r.RelatedID)
	}
}

func testLeadLostResponse(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, leadPolicy(h))
	c := NewCall("lead-lost", phoneA, h.Owners[0], call.Incoming, call.Answered)
	b.LoseResponses(t, 1) // the lead is stored, its answer lost
	_, err := a.CreateCall(ctx, c)
	require.Error(t, err)
	assert.True(t, crm.OutcomeUnknown(err), "%v", err)
	require.Len(t, b.Leads(t), 1)
	b.LoseResponses(t, 0)
	_, err = a.CreateCall(ctx, c) // the retry
	require.NoError(t, err)
	leads := b.Leads(t)
	require.Len(t, leads, 1, "the retry found the lead instead of making another")
	assert.Equal(t, leads[0].ID, only(t, b).RelatedID)
}
