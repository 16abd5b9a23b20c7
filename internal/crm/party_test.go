package crm

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
)

// leadCRM is a CRM whose search lags its writes: a lead it stored is found only once
// visible is set; its creates can lose their answer.
type leadCRM struct {
	mu       sync.Mutex
	leads    []string
	visible  bool
	loseNext bool
	lookups  int
	lag      int // lookups that miss a stored lead before visible is set by itself
}

func (c *leadCRM) lookup(context.Context) (*Party, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookups++
	if len(c.leads) > 0 && c.lag > 0 {
		c.lag--
		c.visible = c.lag == 0 // seen from the next lookup on
		return nil, nil
	}
	if len(c.leads) > 0 && c.visible {
		return &Party{Entity: EntityLead, ID: c.leads[0]}, nil
	}
	return nil, nil
}

func (c *leadCRM) create(context.Context) (Party, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := "lead-" + string(rune('1'+len(c.leads)))
	c.leads = append(c.leads, id)
	if c.loseNext {
		c.loseNext = false
		return Party{}, &Error{Op: "create lead", Err: errors.New("connection closed"), Unknown: true}
	}
	return Party{Entity: EntityLead, ID: id}, nil
}

// A writer whose lookup ran before another writer's create lost its answer must not
// create the lead again once it gets the claim: the pending marker it finds then
// makes it look the lead up (settled) first.
func TestPartiesLostLeadAnswerCreatesOneLead(t *testing.T) {
	const number = "+919711636496"
	ctx := context.Background()
	c := &leadCRM{loseNext: true}
	p := &Parties{Cache: &MemoryPartyCache{}, Policy: LeadPolicy{Create: true}, Settle: 20 * time.Millisecond}

	// Writer B looked the number up before writer A created its lead: nothing found.
	found, err := c.lookup(ctx)
	require.NoError(t, err)
	require.Nil(t, found)
	// Writer A creates the lead; the answer is lost (the lead is stored).
	_, err = p.Resolve(ctx, number, c.lookup, c.create)
	require.True(t, OutcomeUnknown(err), "A's create: %v", err)
	c.mu.Lock()
	c.visible = true // the CRM's search catches up
	c.mu.Unlock()
	// Writer B goes on from its empty lookup to the claim.
	got, err := p.createLead(ctx, number, false, c.lookup, c.create)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "lead-1", got.ID)
	assert.Len(t, c.leads, 1, "one lead in the CRM")
}

// A writer killed between the CRM storing its lead and the answer reaching it leaves
// the pending marker it wrote before the create: the next writer looks the lead up
// (settled) and creates none, though its first lookup was behind the search's lag.
func TestPartiesWriterKilledMidCreateCreatesOneLead(t *testing.T) {
	const number = "+919711636496"
	ctx := context.Background()
	c := &leadCRM{}
	p := &Parties{Cache: &MemoryPartyCache{}, Policy: LeadPolicy{Create: true}, Settle: 20 * time.Millisecond}

	// Writer A: the CRM stores the lead, then A's goroutine ends before the answer
	// is handled (runtime.Goexit runs A's defers, as the claim's expiry would).
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = p.Resolve(ctx, number, c.lookup, func(ctx context.Context) (Party, error) {
			_, _ = c.create(ctx)
			runtime.Goexit()
			return Party{}, nil
		})
	}()
	<-done
	require.Len(t, c.leads, 1)

	// Writer B's first lookup misses the lead (the search lags); the next finds it.
	c.mu.Lock()
	c.lag = 1
	c.mu.Unlock()
	got, err := p.Resolve(ctx, number, c.lookup, c.create)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "lead-1", got.ID)
	assert.Len(t, c.leads, 1, "one lead in the CRM")
}

// An unknown caller's lead is named from MyOperator's "_cm" only when it is a name:
// a "_cm" that is the caller's number (or any bare number) gives "Inbound <number>".
func TestLeadForName(t *testing.T) {
	t.Parallel()
	const number = "+919844400003"
	for _, tc := range []struct {
		name, cm, caller string
		dir              call.Direction
		first, last      string
	}{
		{name: "no _cm", last: "Inbound " + number},
		{name: "no _cm, outgoing", dir: call.Outgoing, last: "Outbound " + number},
		{name: "a name", cm: "  Ravi   Kumar ", first: "Ravi", last: "Kumar"},
		{name: "one word", cm: "Ravi", last: "Ravi"},
		{name: "a name with a number in it", cm: "Ravi 2", first: "Ravi", last: "2"},
		{name: "the caller's national number", cm: "9844400003", last: "Inbound " + number},
		{name: "the caller's number, outgoing", cm: "9844400003", dir: call.Outgoing, last: "Outbound " + number},
		{name: "E.164", cm: "+919844400003", last: "Inbound " + number},
		{name: "with the country code, no plus", cm: "919844400003", last: "Inbound " + number},
		{name: "a trunk 0", cm: "09844400003", last: "Inbound " + number},
		{name: "spaces", cm: "+91 98444 00003", last: "Inbound " + number},
		{name: "dashes", cm: "98444-00003", last: "Inbound " + number},
		{name: "parentheses and dots", cm: "(984) 440.0003", last: "Inbound " + number},
		{name: "another number", cm: "+91 97116 36496", last: "Inbound " + number},
		{name: "a short number", cm: "1800", last: "Inbound " + number},
		{name: "the caller's number as the call gave it", cm: "0091 98444 00003", caller: "09844400003", last: "Inbound " + number},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := tc.dir
			if dir == "" {
				dir = call.Incoming
			}
			caller := tc.caller
			if caller == "" {
				caller = number
			}
			got := LeadFor(call.Log{Direction: dir, CallerNumber: caller, CallerName: tc.cm}, number, "7")
			assert.Equal(t, NewLead{Number: number, FirstName: tc.first, LastName: tc.last, OwnerID: "7"}, got)
		})
	}
}

// failingForget is a cache whose Forget fails (Redis down).
type failingForget struct{ MemoryPartyCache }

func (*failingForget) Forget(context.Context, string, Party) error {
	return errors.New("redis: connection refused")
}

// RetryIfGone writes once more only after a refusal of the related record, forgets
// that party each time, and never writes a third time.
func TestRetryIfGone(t *testing.T) {
	t.Parallel()
	const number = "+919711636496"
	stale := Party{Entity: EntityLead, ID: "101", Name: "Ravi"}
	gone := &Error{Op: "create", Status: 400, Message: "relatedTo[0].id: no lead with id 101", Permanent: true, PartyGone: true}
	other := &Error{Op: "create", Status: 400, Message: "ownerId: no user with id 9", Permanent: true}
	for _, tc := range []struct {
		name      string
		answers   []error // the CRM's answer to each write
		used      bool    // the write related the record to stale
		cache     PartyCache
		writes    int
		wantErr   error // errors.Is; nil: success
		permanent bool
		cached    bool // stale still cached afterwards
	}{
		{name: "written", answers: []error{nil}, used: true, writes: 1, cached: true},
		{name: "gone, then written", answers: []error{gone, nil}, used: true, writes: 2},
		{name: "gone twice: rejected, no third write", answers: []error{gone, gone, nil}, used: true, writes: 2,
			wantErr: ErrPartyGone, permanent: true},
		{name: "another refusal is not retried", answers: []error{other, nil}, used: true, writes: 1,
			wantErr: other, permanent: true, cached: true},
		{name: "gone without a party used (nothing to forget)", answers: []error{gone, nil}, writes: 1,
			wantErr: ErrPartyGone, permanent: true, cached: true},
		{name: "the forget fails: transient, not written again", answers: []error{gone, nil}, used: true, writes: 1,
			cache: &failingForget{}, wantErr: ErrPartyGone, cached: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			cache := tc.cache
			if cache == nil {
				cache = &MemoryPartyCache{}
			}
			require.NoError(t, cache.Put(ctx, number, stale, PartyTTL))
			p := &Parties{Cache: cache}
			writes := 0
			id, err := RetryIfGone(ctx, p, func(context.Context) (string, *Used, error) {
				err := tc.answers[writes]
				writes++
				var used *Used
				if tc.used {
					used = &Used{Number: number, Party: Party{Entity: stale.Entity, ID: stale.ID}}
				}
				if err != nil {
					return "", used, err
				}
				return fmt.Sprint("rec-", writes), used, nil
			})
			assert.Equal(t, tc.writes, writes)
			if tc.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprint("rec-", writes), id)
			} else {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Equal(t, tc.permanent, IsPermanent(err), "%v", err)
			}
			_, ok, _ := cache.Get(ctx, number)
			assert.Equal(t, tc.cached, ok, "stale party still cached")
		})
	}
}

// A writer forgets only the party it was refused: one another writer resolved since
// stays, so the late writer does not look the number up again (behind a lagging
// search) and make a second lead.
func TestForgetKeepsAPartyResolvedSince(t *testing.T) {
	t.Parallel()
	const number = "+919711636496"
	ctx := t.Context()
	c := &leadCRM{}
	cache := &MemoryPartyCache{}
	p := &Parties{Cache: cache, Policy: LeadPolicy{Create: true}, Settle: 20 * time.Millisecond}
	stale := Party{Entity: EntityLead, ID: "lead-0"}

	// Writer A was refused lead-0: it forgets it and resolves the number again,
	// making lead-1 (which the CRM's search does not show yet).
	require.NoError(t, cache.Put(ctx, number, stale, PartyTTL))
	require.NoError(t, cache.Forget(ctx, number, stale))
	got, err := p.Resolve(ctx, number, c.lookup, c.create)
	require.NoError(t, err)
	require.Equal(t, "lead-1", got.ID)

	// Writer B, which read lead-0 before A forgot it, is refused too: its forget
	// leaves lead-1, and its resolve finds it without a search.
	require.NoError(t, cache.Forget(ctx, number, Party{Entity: EntityLead, ID: "lead-0", Name: "another name"}))
	lookups := c.lookups
	got, err = p.Resolve(ctx, number, c.lookup, c.create)
	require.NoError(t, err)
	assert.Equal(t, "lead-1", got.ID)
	assert.Equal(t, lookups, c.lookups, "no search")
	assert.Len(t, c.leads, 1, "one lead in the CRM")

	// A forget of another entity with the same id, or of a pending marker, drops nothing.
	require.NoError(t, cache.Forget(ctx, number, Party{Entity: EntityContact, ID: "lead-1"}))
	_, ok, _ := cache.Get(ctx, number)
	assert.True(t, ok)
	require.NoError(t, cache.Put(ctx, number, Party{Entity: entityPending}, pendingTTL))
	require.NoError(t, cache.Forget(ctx, number, stale))
	_, ok, _ = cache.Get(ctx, number)
	assert.True(t, ok, "the pending marker stays")
}
