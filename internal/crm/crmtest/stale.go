package crmtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
)

// Stale parties: the party cache says "this number is lead N" for PartyTTL, but a CRM
// user may delete, merge or convert N meanwhile (or the cache was filled from another
// CRM). The CRM then refuses a record related to N; the adapter must forget N, resolve
// the caller again and write once more, instead of failing every call of the caller
// until the entry expires (crm.RetryIfGone).

// creates counts the call-record writes (crm.RequestCreate) made under the returned
// context: a refused write and its retry count two.
func creates(ctx context.Context) (context.Context, func() float64) {
	ctx, count := crm.WithRequestCounts(ctx, crm.RequestCreate)
	return ctx, func() float64 {
		_, byOp := count()
		return byOp[crm.RequestCreate]
	}
}

func testGoneLeadMadeAgain(t *testing.T, h Harness) {
	a, b := h.Setup(t, leadPolicy(h))
	old := b.AddLead(t, phoneA)
	_, err := a.CreateCall(t.Context(), NewCall("gone-1", phoneA, h.Owners[0], call.Incoming, call.Answered))
	require.NoError(t, err)
	require.Equal(t, old, only(t, b).RelatedID, "the first call caches the lead")
	b.DeleteLead(t, old)

	ctx, n := creates(t.Context())
	id, err := a.CreateCall(ctx, NewCall("gone-2", phoneA, h.Owners[1], call.Incoming, call.Missed))
	require.NoError(t, err, "the stale lead is forgotten and the caller resolved again")
	assert.Equal(t, 2.0, n(), "one refused write, one written")
	leads := b.Leads(t)
	require.Len(t, leads, 1, "one new lead, no duplicate: %+v", leads)
	assert.NotEqual(t, old, leads[0].ID)
	assert.Equal(t, h.Owners[1], leads[0].OwnerID, "the new lead is owned by the call's owner")
	samePhone(t, phoneA, leads[0].Phone)
	recs := b.Records(t)
	require.Len(t, recs, 2, "the call is written once: %+v", recs)
	r := recs[1]
	assert.Equal(t, id, r.ID)
	assert.Equal(t, h.Owners[1], r.OwnerID)
	assert.Equal(t, leads[0].ID, r.RelatedID)
	assert.Equal(t, "lead", r.RelatedType)
	assert.Zero(t, b.Duplicates(t))

	// The new lead is cached: the next call costs no second refusal.
	ctx, n = creates(t.Context())
	_, err = a.CreateCall(ctx, NewCall("gone-3", phoneA, h.Owners[0], call.Incoming, call.Answered))
	require.NoError(t, err)
	assert.Equal(t, 1.0, n())
	assert.Equal(t, leads[0].ID, b.Records(t)[2].RelatedID)
	assert.Len(t, b.Leads(t), 1)
}

func testGoneLeadMerged(t *testing.T, h Harness) {
	a, b := h.Setup(t, leadPolicy(h))
	old := b.AddLead(t, phoneB)
	_, err := a.CreateCall(t.Context(), NewCall("merged-1", phoneB, h.Owners[0], call.Incoming, call.Answered))
	require.NoError(t, err)
	b.DeleteLead(t, old) // converted: the lead is gone, a contact has the number
	contact := b.AddContact(t, phoneB)

	_, err = a.CreateCall(t.Context(), NewCall("merged-2", phoneB, h.Owners[1], call.Outgoing, call.Answered))
	require.NoError(t, err)
	recs := b.Records(t)
	require.Len(t, recs, 2)
	assert.Equal(t, contact, recs[1].RelatedID)
	assert.Equal(t, "contact", recs[1].RelatedType)
	assert.Equal(t, h.Owners[1], recs[1].OwnerID)
	assert.Empty(t, b.Leads(t), "the contact is found: no lead made")
}

func testGoneContactUnrelated(t *testing.T, h Harness) {
	a, b := h.Setup(t, Options{}) // unknown_caller: none
	old := b.AddContact(t, phoneC)
	_, err := a.CreateCall(t.Context(), NewCall("gone-c-1", phoneC, h.Owners[0], call.Incoming, call.Answered))
	require.NoError(t, err)
	b.DeleteContact(t, old)

	_, err = a.CreateCall(t.Context(), NewCall("gone-c-2", phoneC, h.Owners[0], call.Incoming, call.Answered))
	require.NoError(t, err)
	recs := b.Records(t)
	require.Len(t, recs, 2)
	assert.Empty(t, recs[1].RelatedID, "no one has the number now")
	assert.Empty(t, b.Leads(t))
}

// testGoneUpdate: an update (a recording that came later) of a call whose lead was
// deleted since is written: Kylas's PUT sends relatedTo again, Zoho's update leaves
// the relation as it was.
func testGoneUpdate(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := h.Setup(t, leadPolicy(h))
	old := b.AddLead(t, phoneA)
	c := NewCall("gone-upd", phoneA, h.Owners[0], call.Incoming, call.Answered)
	id, err := a.CreateCall(ctx, c)
	require.NoError(t, err)
	b.DeleteLead(t, old)

	c.RecordingURL = "https://calltrack.example/recordings/conformance/gone-upd?sig=abc"
	c.Log.Recording = &call.Recording{FileName: "gone-upd.mp3"}
	require.NoError(t, a.UpdateCall(ctx, id, c))
	r := only(t, b)
	assert.Equal(t, id, r.ID)
	assert.Equal(t, c.RecordingURL, r.RecordingURL)
	assert.Equal(t, h.Owners[0], r.OwnerID)
	assert.LessOrEqual(t, len(b.Leads(t)), 1)
}

// testGoneBurst: the calls of a caller whose cached lead was deleted, on two replicas
// sharing the cache, all find the stale lead; each is refused, and together they make
// one new lead (a writer forgets only the party it was refused, never one another
// writer resolved since, and the lead is made under the number's claim).
func testGoneBurst(t *testing.T, h Harness) {
	cache := &crm.MemoryPartyCache{}
	o := leadPolicy(h)
	o.Parties = cache
	a, b := h.Setup(t, o)
	replicas := []crm.Adapter{a, h.Another(t, b, o)}
	old := b.AddLead(t, phoneC)
	_, err := a.CreateCall(t.Context(), NewCall("gone-burst-0", phoneC, h.Owners[0], call.Incoming, call.Answered))
	require.NoError(t, err)
	b.DeleteLead(t, old)

	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = replicas[i%2].CreateCall(t.Context(),
				NewCall(fmt.Sprintf("gone-burst-%d", i+1), phoneC, h.Owners[i%2], call.Incoming, call.Answered))
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "call %d", i+1)
	}
	leads := b.Leads(t)
	require.Len(t, leads, 1, "one new lead: %+v", leads)
	recs := b.Records(t)
	require.Len(t, recs, 1+len(errs))
	for _, r := range recs[1:] {
		assert.Equal(t, leads[0].ID, r.RelatedID, "record %s", r.ID)
	}
	assert.Zero(t, b.Duplicates(t))
}

// stuckCache answers every number with one party and cannot forget it: every write
// names a lead the CRM does not have, however often it is resolved again.
type stuckCache struct {
	party   crm.Party
	forgets atomic.Int32
}

func (c *stuckCache) Get(context.Context, string) (crm.Party, bool, error)        { return c.party, true, nil }
func (c *stuckCache) Put(context.Context, string, crm.Party, time.Duration) error { return nil }
func (c *stuckCache) Release(context.Context, string, string) error               { return nil }
func (c *stuckCache) Claim(context.Context, string, string, time.Duration) (bool, error) {
	return true, nil
}

func (c *stuckCache) Forget(_ context.Context, _ string, p crm.Party) error {
	if p == (crm.Party{Entity: c.party.Entity, ID: c.party.ID}) {
		c.forgets.Add(1)
	}
	return nil
}

func testGoneTwice(t *testing.T, h Harness) {
	cache := &stuckCache{}
	o := leadPolicy(h)
	o.Parties = cache
	a, b := h.Setup(t, o)
	gone := b.AddLead(t, phoneA)
	b.DeleteLead(t, gone)
	cache.party = crm.Party{Entity: crm.EntityLead, ID: gone}

	ctx, n := creates(t.Context())
	_, err := a.CreateCall(ctx, NewCall("gone-twice", phoneA, h.Owners[0], call.Incoming, call.Answered))
	require.Error(t, err)
	assert.ErrorIs(t, err, crm.ErrPartyGone)
	assert.True(t, crm.IsPermanent(err), "dead-lettered as any CRM rejection: %v", err)
	assert.Equal(t, 2.0, n(), "written twice, not more")
	assert.Equal(t, int32(2), cache.forgets.Load(), "forgotten on each refusal")
	assert.Empty(t, b.Records(t))
	assert.Empty(t, b.Leads(t))
}

func testOtherRefusalNotRetried(t *testing.T, h Harness) {
	a, b := h.Setup(t, Options{})
	b.AddContact(t, phoneA)
	ctx, n := creates(t.Context())
	_, err := a.CreateCall(ctx, NewCall("no-owner", phoneA, "987654321", call.Incoming, call.Answered))
	require.Error(t, err)
	assert.True(t, crm.IsPermanent(err), "%v", err)
	assert.NotErrorIs(t, err, crm.ErrPartyGone)
	assert.Equal(t, 1.0, n(), "refused once, not written again")
	assert.Empty(t, b.Records(t))
}
