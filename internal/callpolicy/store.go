package callpolicy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/redislock"
)

// TaskStateTTL is how long a call's task state is kept: as long as the writer keeps a
// call's record state (a replay within it is recognised without asking the CRM).
const TaskStateTTL = 30 * 24 * time.Hour

// RedisTaskStore keeps task states in Redis: per call, the state as JSON
// (<prefix>:task:{<tenant>:<call>}) and a lease (<prefix>:task-lease:{...}); the hash
// tag keeps both in one cluster slot for the scripts.
type RedisTaskStore struct {
	Redis  redis.UniversalClient
	Prefix string
}

func (s RedisTaskStore) keys(tenant, callID string) (state, lease string) {
	tag := "{" + tenant + ":" + callID + "}"
	return s.Prefix + ":task:" + tag, s.Prefix + ":task-lease:" + tag
}

var (
	saveScript = redis.NewScript(`if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0`)
)

// Claim leases the call's task.
func (s RedisTaskStore) Claim(ctx context.Context, tenant, callID string, ttl time.Duration) (string, TaskState, error) {
	state, lease := s.keys(tenant, callID)
	token := redislock.NewToken()
	ok, err := redislock.Claim(ctx, s.Redis, lease, token, ttl)
	if err != nil {
		return "", TaskState{}, fmt.Errorf("callpolicy: claim task of %s: %w", callID, err)
	}
	if !ok {
		return "", TaskState{}, fmt.Errorf("call %s: %w", callID, ErrBusy)
	}
	var st TaskState
	b, err := s.Redis.Get(ctx, state).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		_ = s.Release(ctx, tenant, callID, token)
		return "", TaskState{}, fmt.Errorf("callpolicy: read task of %s: %w", callID, err)
	default:
		if err := json.Unmarshal(b, &st); err != nil {
			_ = s.Release(ctx, tenant, callID, token)
			return "", TaskState{}, fmt.Errorf("callpolicy: task state of %s: %w", callID, err)
		}
	}
	return token, st, nil
}

// Save stores st while the lease is held.
func (s RedisTaskStore) Save(ctx context.Context, tenant, callID, token string, st TaskState) error {
	state, lease := s.keys(tenant, callID)
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	n, err := saveScript.Run(ctx, s.Redis, []string{state, lease}, token, b, TaskStateTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("callpolicy: save task of %s: %w", callID, err)
	}
	if n == 0 {
		return fmt.Errorf("call %s: lease lapsed: %w", callID, ErrBusy)
	}
	return nil
}

// Release ends the lease.
func (s RedisTaskStore) Release(ctx context.Context, tenant, callID, token string) error {
	_, lease := s.keys(tenant, callID)
	return redislock.ReleaseToken(ctx, s.Redis, lease, token)
}

// MemoryTaskStore is the TaskStore in memory, for tests.
type MemoryTaskStore struct {
	mu     sync.Mutex
	states map[string]TaskState
	leases map[string]string
	Fail   error // when set, every call fails with it
}

// Claim leases the call's task (leases never lapse in memory).
func (m *MemoryTaskStore) Claim(_ context.Context, tenant, callID string, _ time.Duration) (string, TaskState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return "", TaskState{}, m.Fail
	}
	k := tenant + ":" + callID
	if m.leases == nil {
		m.leases, m.states = map[string]string{}, map[string]TaskState{}
	}
	if m.leases[k] != "" {
		return "", TaskState{}, ErrBusy
	}
	tok := redislock.NewToken()
	m.leases[k] = tok
	return tok, m.states[k], nil
}

// Save stores st.
func (m *MemoryTaskStore) Save(_ context.Context, tenant, callID, token string, st TaskState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	k := tenant + ":" + callID
	if m.leases[k] != token {
		return ErrBusy
	}
	m.states[k] = st
	return nil
}

// Release ends the lease.
func (m *MemoryTaskStore) Release(_ context.Context, tenant, callID, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := tenant + ":" + callID; m.leases[k] == token {
		delete(m.leases, k)
	}
	return nil
}

// State returns the stored state of a call's task.
func (m *MemoryTaskStore) State(tenant, callID string) TaskState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.states[tenant+":"+callID]
}
