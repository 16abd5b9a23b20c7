package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
type Lookup func() (m *Mapping, callerIsAgent bool, err error)

// LookupPipe queues on p the resolution of a call's agent (the active mapping, by id,
// uuid, email, then phone) and whether caller is one of the tenant's agents — what
// Owner and IsAgentPhone answer, in one script. The pipeline must use EVAL-capable
// connections; the script is sent whole (no NOSCRIPT round trip).
func (s *Store) LookupPipe(ctx context.Context, p redis.Pipeliner, tenant string, a *call.Agent, caller string) Lookup {
	var ag call.Agent
	if a != nil {
		ag = *a
	}
	cmd := lookupScript.Eval(ctx, p, []string{s.key(tenant, "byid"), s.key(tenant, "uuid"), s.key(tenant, "email"), s.key(tenant, "phone")},
		ag.ID, ag.Email, ag.Phone, caller)
	return func() (*Mapping, bool, error) {
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
		var m Mapping
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return nil, false, fmt.Errorf("mapping: lookup: decode: %w", err)
		}
		return &m, isAgent == 1, nil
	}
}

// OwnerOf applies the attribution rule's last steps to a lookup's answer: the
// mapping's owner, else the tenant's fallback owner (when set), else nil.
func OwnerOf(m *Mapping, err error, fallbackOwner string) (*call.Owner, error) {
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
