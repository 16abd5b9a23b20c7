package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/call"
)

// lookupScript resolves an agent in one round trip, as Resolve does in several: the
// active mapping by MyOperator user id, then uuid, then email, then phone (a pending
// or suspended one is passed over, as Resolve does), and whether the caller's number
// is one of the tenant's agents'. Every key is in the tenant's slot.
// KEYS: byid, uuid, email, phone. ARGV: id, email, phone, caller.
// Returns {mapping JSON or false, 1|0}.
var lookupScript = redis.NewScript(`
local function active(raw)
  return raw and string.find(raw, '"status":"active"', 1, true) ~= nil
end
local function via(index, value)
  if value == '' then return false end
  local id = redis.call('HGET', index, value)
  if not id then return false end
  return redis.call('HGET', KEYS[1], id)
end
local found = false
if ARGV[1] ~= '' then
  local raw = redis.call('HGET', KEYS[1], ARGV[1])
  if active(raw) then found = raw end
  if not found then
    raw = via(KEYS[2], ARGV[1])
    if active(raw) then found = raw end
  end
end
if not found then
  local raw = via(KEYS[3], ARGV[2])
  if active(raw) then found = raw end
end
if not found then
  local raw = via(KEYS[4], ARGV[3])
  if active(raw) then found = raw end
end
local agentPhone = 0
if ARGV[4] ~= '' then agentPhone = redis.call('HEXISTS', KEYS[4], ARGV[4]) end
return {found, agentPhone}
`)

// Lookup is the answer of a pipelined lookup, read once the pipeline ran.
type Lookup func() (m *call.Mapping, callerIsAgent bool, err error)

// LookupPipe queues on p the resolution of a call's agent (the active mapping, by id,
// uuid, email, then phone) and whether caller is one of the tenant's agents — what
// Owner and IsAgentPhone answer. An agent with a MyOperator user id — an afterCall's —
// is looked up by it with a plain HGET, and the caller with HEXISTS: two of Redis's
// cheapest commands where the script costs it ~15 µs (issue 14). Only when that id
// has no active mapping does the answer take the script, in one more round trip.
// Without an id (inCall names agents by phone), or with byUUID (Webhook v2 names them
// by uuid, which the id's HGET would always miss), the script goes in p.
func (s *Store) LookupPipe(ctx context.Context, p redis.Pipeliner, tenant string, a *call.Agent, caller string, byUUID bool) Lookup {
	var ag call.Agent
	if a != nil {
		ag = *a
	}
	byIDKey, phoneKey := s.key(tenant, "byid"), s.key(tenant, "phone")
	script := func(r redis.Scripter, eval func(context.Context, redis.Scripter, []string, ...any) *redis.Cmd) *redis.Cmd {
		return eval(ctx, r, []string{byIDKey, s.key(tenant, "uuid"), s.key(tenant, "email"), phoneKey}, ag.ID, ag.Email, ag.Phone, caller)
	}
	if ag.ID == "" || byUUID {
		cmd := script(p, lookupScript.Eval)
		return func() (*call.Mapping, bool, error) { return s.scriptAnswer(cmd) }
	}
	byID := p.HGet(ctx, byIDKey, ag.ID)
	var isAgent *redis.BoolCmd
	if caller != "" {
		isAgent = p.HExists(ctx, phoneKey, caller)
	}
	return func() (*call.Mapping, bool, error) {
		raw, err := byID.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, false, fmt.Errorf("mapping: lookup: %w", err)
		}
		callerIsAgent := false
		if isAgent != nil {
			if callerIsAgent, err = isAgent.Result(); err != nil {
				return nil, false, fmt.Errorf("mapping: lookup: %w", err)
			}
		}
		if raw != "" {
			m, err := s.decoded.get(raw)
			if err != nil {
				return nil, false, fmt.Errorf("mapping: lookup: decode: %w", err)
			}
			if m.Status == call.MappingActive {
				return m, callerIsAgent, nil
			}
		}
		return s.scriptAnswer(script(s.rdb, lookupScript.Run)) // by uuid, email, phone
	}
}

// scriptAnswer reads the lookup script's answer.
func (s *Store) scriptAnswer(cmd *redis.Cmd) (*call.Mapping, bool, error) {
	res, err := cmd.Slice()
	if err != nil {
		return nil, false, fmt.Errorf("mapping: lookup: %w", err)
	}
	if len(res) != 2 {
		return nil, false, fmt.Errorf("mapping: lookup: %d values", len(res))
	}
	isAgent, _ := res[1].(int64)
	raw, ok := res[0].(string)
	if !ok {
		return nil, isAgent == 1, ErrNotFound
	}
	m, err := s.decoded.get(raw)
	if err != nil {
		return nil, false, fmt.Errorf("mapping: lookup: decode: %w", err)
	}
	return m, isAgent == 1, nil
}

// decodedCap bounds the decoded mappings kept: more than a tenant's busy agents.
const decodedCap = 4096

// decodedMappings keeps mappings decoded by their JSON: a busy agent's mapping is read
// on every call, and a JSON text decodes to one mapping forever (a change is new
// text), so nothing kept here can be stale. Each get hands out a copy; its Phones
// are shared and read-only.
type decodedMappings struct {
	mu sync.Mutex
	m  map[string]call.Mapping
}

func (d *decodedMappings) get(raw string) (*call.Mapping, error) {
	d.mu.Lock()
	m, ok := d.m[raw]
	d.mu.Unlock()
	if ok {
		return &m, nil
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.m == nil || len(d.m) >= decodedCap {
		d.m = make(map[string]call.Mapping) // start again rather than track ages
	}
	d.m[raw] = m
	d.mu.Unlock()
	return &m, nil
}

// OwnerOf applies the attribution rule's last steps to a lookup's answer: the
// mapping's owner, else the tenant's fallback owner (when set), else nil.
func OwnerOf(m *call.Mapping, err error, fallbackOwner string) (*call.Owner, error) {
	switch {
	case err == nil:
		return m.Owner(), nil
	case !errors.Is(err, ErrNotFound):
		return nil, err
	case fallbackOwner != "":
		return &call.Owner{CRMUserID: fallbackOwner, Source: "fallback"}, nil
	}
	return nil, nil
}
