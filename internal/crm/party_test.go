package crm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leadCRM is a CRM whose search lags its writes: a lead it stored is found only once
// visible is set; its creates can lose their answer.
type leadCRM struct {
	mu       sync.Mutex
	leads    []string
	visible  bool
	loseNext bool
	lookups  int
}

func (c *leadCRM) lookup(context.Context) (*Party, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookups++
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
