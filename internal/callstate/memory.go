package callstate

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calltrack/calltrack/internal/callwriter"
)

// Memory is the store in memory, with the same rules as Redis: for tests and fakes.
// States are copied in and out (through JSON, as Redis stores them).
type Memory struct {
	Now func() time.Time // default time.Now

	mu     sync.Mutex
	calls  map[string]*memCall
	epoch  time.Time
	tokens atomic.Int64
	// Fail, when set, is returned by every operation (a store that is down).
	Fail error
}

type memCall struct {
	token  string
	expiry time.Time
	state  []byte // JSON of callwriter.State; nil: new
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{calls: map[string]*memCall{}} }

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// SetEpoch sets when the store's data began (as if Redis had lost its data then).
func (m *Memory) SetEpoch(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.epoch = t
}

// Claim implements callwriter.Store.
func (m *Memory) Claim(_ context.Context, tenant, callID string, ttl time.Duration) (callwriter.Lease, callwriter.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := callwriter.Lease{Tenant: tenant, CallID: callID, Token: strconv.FormatInt(m.tokens.Add(1), 10)}
	if m.Fail != nil {
		return l, callwriter.State{}, m.Fail
	}
	k := tenant + "\x00" + callID
	c := m.calls[k]
	if c == nil {
		c = &memCall{}
		m.calls[k] = c
	}
	now := m.now()
	if c.token != "" && c.expiry.After(now) {
		return l, callwriter.State{}, callwriter.ErrBusy
	}
	c.token, c.expiry = l.Token, now.Add(ttl)
	var st callwriter.State
	if c.state != nil {
		_ = json.Unmarshal(c.state, &st)
	}
	if st.Status == callwriter.StatusCreating {
		st.Status = callwriter.StatusUnknown
		c.state, _ = json.Marshal(st)
	}
	st.Epoch = m.epoch
	return l, st, nil
}

// held returns the call the lease holds; the caller has m.mu.
func (m *Memory) held(l callwriter.Lease) (*memCall, error) {
	if m.Fail != nil {
		return nil, m.Fail
	}
	c := m.calls[l.Tenant+"\x00"+l.CallID]
	if c == nil || c.token != l.Token {
		return nil, callwriter.ErrLeaseLost
	}
	return c, nil
}

// Save implements callwriter.Store.
func (m *Memory) Save(_ context.Context, l callwriter.Lease, st callwriter.State, release bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.held(l)
	if err != nil {
		return err
	}
	st.Epoch = time.Time{}
	c.state, _ = json.Marshal(st)
	if release {
		c.token = ""
	}
	return nil
}

// Release implements callwriter.Store.
func (m *Memory) Release(_ context.Context, l callwriter.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.held(l)
	if err != nil {
		return err
	}
	c.token = ""
	return nil
}

// State returns a call's stored state (for assertions).
func (m *Memory) State(tenant, callID string) callwriter.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st callwriter.State
	if c := m.calls[tenant+"\x00"+callID]; c != nil && c.state != nil {
		_ = json.Unmarshal(c.state, &st)
	}
	return st
}

// Forget drops every state, as Redis losing its data does; the epoch starts at now.
func (m *Memory) Forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = map[string]*memCall{}
	m.epoch = m.now()
}
