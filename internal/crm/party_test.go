package crm

import (
	"context"
	"errors"
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
