// Package mapping keeps, per tenant, which CRM user each MyOperator agent is, in Redis,
// indexed by MyOperator user id, email and phone number (inCall names agents by phone
// only), and resolves a call's agent to its owner.
package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/call"
)

// ErrNotFound means no mapping for that agent.
var ErrNotFound = errors.New("mapping: not found")

// ErrConflict means a mapping's email, phone number or uuid is already another
// agent's: the reverse indexes name one agent per value, so the change is refused
// rather than taking it (the other agent's calls would go to the wrong owner, and
// its number stop counting as an agent's). Only a value the change adds counts: one
// the agent's current mapping lists already stays where it is. A *ConflictError says
// which.
var ErrConflict = errors.New("mapping: conflict")

// ConflictError is an ErrConflict naming the value and the agent whose mapping holds it.
type ConflictError struct {
	Field  string // email, phone or uuid
	Value  string
	Holder string // the MyOperator user id whose mapping has it
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s %s is already mapped to MyOperator user %s", e.Field, e.Value, e.Holder)
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Store keeps mappings in Redis: one hash of mappings per tenant, plus email and phone
// index hashes pointing at the MyOperator user id. With a journal, every change is
// first recorded there (the compacted topic calltrack.mapping.v1), then applied to
// Redis, so Redis can always be rebuilt from the journal.
type Store struct {
	rdb      redis.UniversalClient
	prefix   string
	journal  Journal
	onChange ChangeFunc
	decoded  *decodedMappings // lookups' decoded mappings, by their JSON
}

// ChangeFunc is told about every change once it is in Redis (late binding of parked
// calls hooks in here). m is nil for a deletion.
type ChangeFunc func(tenant, userID string, m *call.Mapping)

// NewStore returns a store with keys under prefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, decoded: &decodedMappings{}}
}

// WithJournal makes every change go to j before Redis. Set it before use.
func (s *Store) WithJournal(j Journal) *Store {
	s.journal = j
	return s
}

// OnChange registers fn to be told about changes. Set it before use.
func (s *Store) OnChange(fn ChangeFunc) *Store {
	s.onChange = fn
	return s
}

func (s *Store) key(tenant, what string) string {
	// The hash tag keeps a tenant's keys in one cluster slot, so MULTI works on cluster.
	return s.prefix + ":map:{" + tenant + "}:" + what // two on every webhook: no fmt
}

// Get returns one mapping.
func (s *Store) Get(ctx context.Context, tenant, userID string) (*call.Mapping, error) {
	raw, err := s.rdb.HGet(ctx, s.key(tenant, "byid"), userID).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mapping: get: %w", err)
	}
	var m call.Mapping
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("mapping: decode %s: %w", userID, err)
	}
	return &m, nil
}

// List returns a tenant's mappings sorted by MyOperator user id.
func (s *Store) List(ctx context.Context, tenant string) ([]call.Mapping, error) {
	all, err := s.rdb.HGetAll(ctx, s.key(tenant, "byid")).Result()
	if err != nil {
		return nil, fmt.Errorf("mapping: list: %w", err)
	}
	out := make([]call.Mapping, 0, len(all))
	for _, raw := range all {
		var m call.Mapping
		if err := json.Unmarshal([]byte(raw), &m); err == nil {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MyOperatorUserID < out[j].MyOperatorUserID })
	return out, nil
}

// Put stores m, replacing the mapping of the same agent and its index entries.
// m.UpdatedBy names who made the change (it goes to the journal as the actor). An
// email, phone or uuid m adds to the agent's current mapping that another agent's
// mapping has is refused with a *ConflictError (ErrConflict).
func (s *Store) Put(ctx context.Context, tenant string, m call.Mapping) error {
	if err := m.Validate(); err != nil {
		return err
	}
	_, err := s.Update(ctx, tenant, m.MyOperatorUserID, m.UpdatedBy, func(*call.Mapping) (*call.Mapping, error) { return &m, nil })
	return err
}

// Delete removes an agent's mapping; ErrNotFound if there was none.
func (s *Store) Delete(ctx context.Context, tenant, userID string) error {
	return s.DeleteBy(ctx, tenant, userID, "")
}

// DeleteBy removes an agent's mapping on behalf of actor (recorded in the journal);
// ErrNotFound if there was none.
func (s *Store) DeleteBy(ctx context.Context, tenant, userID, actor string) error {
	_, err := s.Update(ctx, tenant, userID, actor, func(cur *call.Mapping) (*call.Mapping, error) {
		if cur == nil {
			return nil, ErrNotFound
		}
		return nil, nil
	})
	return err
}

// Update changes one agent's mapping under a per-agent lock: fn gets the current
// mapping (nil when none) and returns the next one — nil to delete, cur itself to leave
// it as it is. The change goes to the journal, then to Redis. It returns the mapping
// now stored (nil when none). An error from fn is returned as is, nothing changed; so
// is a *ConflictError (ErrConflict) when the next mapping adds an email, phone or uuid
// of another agent's mapping. One the current mapping lists already is not a conflict:
// it stays with the agent that has it (see writeScript).
func (s *Store) Update(ctx context.Context, tenant, userID, actor string, fn func(cur *call.Mapping) (*call.Mapping, error)) (*call.Mapping, error) {
	m, _, err := s.update(ctx, tenant, userID, actor, false, fn)
	return m, err
}

// UpdateLeaving is Update for user sync, which mirrors MyOperator rather than asks:
// an email, phone or uuid of the next mapping that another agent's mapping has does
// not refuse the change but is left to that agent — the mapping is stored, and lists
// it, but the index keeps naming the other agent (as Fill does). It returns the values
// so left, each a *ConflictError naming its holder. A refused change would leave the
// agent on its old owner or unmapped, and two agents swapping numbers refused forever.
func (s *Store) UpdateLeaving(ctx context.Context, tenant, userID, actor string, fn func(cur *call.Mapping) (*call.Mapping, error)) (*call.Mapping, []*ConflictError, error) {
	return s.update(ctx, tenant, userID, actor, true, fn)
}

// Claim points the index entries of an agent's mapping that no other agent's mapping
// holds now at the agent, without changing the mapping (nothing is journaled): the
// values UpdateLeaving left to another agent that has since let them go. It returns the
// values still left to others; none when the agent has no mapping.
func (s *Store) Claim(ctx context.Context, tenant, userID string) ([]*ConflictError, error) {
	unlock, err := s.lock(ctx, tenant, userID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := s.Get(ctx, tenant, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	left, taken, err := s.write(ctx, tenant, writeFill, userID, cur, cur)
	if err != nil {
		return nil, err
	}
	if taken > 0 { // the hook re-drives parked calls: not for a claim that changed nothing
		s.changed(tenant, userID, cur)
	}
	return left, nil
}

func (s *Store) update(ctx context.Context, tenant, userID, actor string, leave bool, fn func(cur *call.Mapping) (*call.Mapping, error)) (*call.Mapping, []*ConflictError, error) {
	unlock, err := s.lock(ctx, tenant, userID)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	cur, err := s.Get(ctx, tenant, userID)
	if errors.Is(err, ErrNotFound) {
		cur, err = nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	next, err := fn(cur)
	if err != nil {
		return nil, nil, err
	}
	if next == cur {
		return cur, nil, nil
	}
	if next == nil {
		if cur == nil {
			return nil, nil, nil
		}
		if err := s.record(ctx, Change{Tenant: tenant, UserID: userID, Actor: actor, Previous: cur}); err != nil {
			return nil, nil, err
		}
		if _, _, err := s.write(ctx, tenant, writeDelete, userID, cur, nil); err != nil {
			return nil, nil, err
		}
		s.changed(tenant, userID, nil)
		return nil, nil, nil
	}
	m := *next
	m.MyOperatorUserID = userID
	if m.UpdatedAt.IsZero() {
		m.UpdatedAt = time.Now().UTC()
	}
	if m.UpdatedBy == "" {
		m.UpdatedBy = actor
	}
	if err := m.Validate(); err != nil {
		return nil, nil, err
	}
	if leave {
		if err := s.record(ctx, Change{Tenant: tenant, UserID: userID, Actor: actor, Mapping: &m, Previous: cur}); err != nil {
			return nil, nil, err
		}
		left, _, err := s.write(ctx, tenant, writeFill, userID, cur, &m)
		if err != nil {
			return nil, nil, err
		}
		s.changed(tenant, userID, &m)
		return &m, left, nil
	}
	// Refused before the journal hears of it: a conflict is the common case of a
	// refusal, and the journal should not carry a change Redis never made. The script
	// runs twice (check, then put) on purpose; one run cannot keep the journal true:
	// putting first would put Redis ahead of the journal (a crash before the record, and
	// a rebuild loses the change), and journaling first without the check would record
	// every refused change and its correction, two journal writes per refusal.
	if _, _, err := s.write(ctx, tenant, writeCheck, userID, cur, &m); err != nil {
		return nil, nil, err
	}
	if err := s.record(ctx, Change{Tenant: tenant, UserID: userID, Actor: actor, Mapping: &m, Previous: cur}); err != nil {
		return nil, nil, err
	}
	if _, _, err := s.write(ctx, tenant, writePut, userID, cur, &m); err != nil {
		if errors.Is(err, ErrConflict) {
			// Another agent took the value between the check and the write (its own lock
			// is not ours): the journal gets this agent's mapping back as it was, so that
			// a rebuild does not restore the refused change.
			if jerr := s.record(ctx, Change{Tenant: tenant, UserID: userID, Actor: actor, Mapping: cur, Previous: &m}); jerr != nil {
				return nil, nil, fmt.Errorf("%w (and the journal could not be corrected: %w)", err, jerr)
			}
		}
		return nil, nil, err
	}
	s.changed(tenant, userID, &m)
	return &m, nil, nil
}

// Modes of write.
const (
	writeCheck  = "check"  // refuse a conflict, change nothing
	writePut    = "put"    // refuse a conflict, else replace old by m
	writeFill   = "fill"   // replace old by m, leaving index entries another agent holds to it (never refuses)
	writeDelete = "delete" // remove old
)

// Index fields as writeScript numbers its KEYS.
var indexFields = [...]string{2: "email", 3: "phone", 4: "uuid"}

// writeScript is every change of a tenant's mappings in Redis, so that checking the
// reverse indexes and changing them is one atomic step: the agent's old index entries
// removed — only those still pointing at the agent, never another's — and the new
// mapping and its entries written. An entry the new mapping adds that another agent
// with a mapping holds is a conflict: refused (put, check) or left to that agent
// (fill). An entry the old mapping lists too is never a conflict: it adds nothing, and
// one another agent holds (a fill, or data from before the rule, left it so) stays
// that agent's — refusing it would leave the agent's mapping unchangeable. An entry
// pointing at an agent without a mapping is stale and taken over.
// KEYS: byid, email, phone, uuid. ARGV: mode, id, JSON of the mapping ("" to delete),
// the number of old entries, then (key number, value) pairs: the old entries, then the new.
// Returns {1, 0, key number, value, holder} for a conflict (nothing written), else {0,
// the number of entries written that did not point at the agent before} followed by a
// (key number, value, holder) triple per entry left to another agent.
var writeScript = redis.NewScript(`
local mode, id, raw, nold = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local old, new, had = {}, {}, {}
local i = 5
while i < #ARGV do
  local e = {tonumber(ARGV[i]), ARGV[i+1]}
  if #old < nold then
    table.insert(old, e)
    had[e[1] .. ':' .. e[2]] = true
  else
    table.insert(new, e)
  end
  i = i + 2
end
local free, left = {}, {0, 0}
for _, e in ipairs(new) do
  local holder = redis.call('HGET', KEYS[e[1]], e[2])
  if holder and holder ~= id and redis.call('HEXISTS', KEYS[1], holder) == 1 then
    if mode ~= 'fill' and not had[e[1] .. ':' .. e[2]] then return {1, 0, e[1], e[2], holder} end
    table.insert(left, e[1])
    table.insert(left, e[2])
    table.insert(left, holder)
  else
    table.insert(free, e)
    if holder ~= id then left[2] = left[2] + 1 end
  end
end
if mode == 'check' then return left end
for _, e in ipairs(old) do
  if redis.call('HGET', KEYS[e[1]], e[2]) == id then redis.call('HDEL', KEYS[e[1]], e[2]) end
end
if raw == '' then
  redis.call('HDEL', KEYS[1], id)
  return left
end
redis.call('HSET', KEYS[1], id, raw)
for _, e in ipairs(free) do redis.call('HSET', KEYS[e[1]], e[2], id) end
return left`)

// write changes agent id's mapping in Redis from old to m (either may be nil), index
// entries included, in mode. A conflict is a *ConflictError; the entries of m left to
// another agent (fill, or kept from old) are returned as ConflictErrors, with how many
// entries now point at the agent that did not before (taken; counted in check mode too).
func (s *Store) write(ctx context.Context, tenant, mode, id string, old, m *call.Mapping) (left []*ConflictError, taken int, err error) {
	raw := []byte{}
	if m != nil && mode != writeCheck {
		if raw, err = json.Marshal(m); err != nil {
			return nil, 0, err
		}
	}
	olds, news := indexEntries(old), indexEntries(m)
	args := make([]any, 0, 4+len(olds)+len(news))
	args = append(args, mode, id, raw, len(olds)/2)
	args = append(args, olds...)
	args = append(args, news...)
	res, err := writeScript.Run(ctx, s.rdb, s.indexKeys(tenant), args...).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("mapping: %s: %w", mode, err)
	}
	reply, _ := res.([]any)
	if len(reply) < 2 {
		return nil, 0, fmt.Errorf("mapping: %s: unexpected reply %v", mode, res)
	}
	n, _ := reply[1].(int64)
	for i := 2; i+2 < len(reply); i += 3 {
		k, _ := reply[i].(int64)
		value, _ := reply[i+1].(string)
		holder, _ := reply[i+2].(string)
		field := ""
		if k >= 2 && int(k) < len(indexFields) {
			field = indexFields[k]
		}
		left = append(left, &ConflictError{Field: field, Value: value, Holder: holder})
	}
	if flag, _ := reply[0].(int64); flag == 1 && len(left) == 1 {
		return nil, 0, left[0]
	}
	return left, int(n), nil
}

// indexEntries are m's reverse index entries as writeScript takes them: (key number,
// value) pairs.
func indexEntries(m *call.Mapping) []any {
	if m == nil {
		return nil
	}
	var out []any
	if m.Email != "" {
		out = append(out, 2, m.Email)
	}
	for _, ph := range m.Phones {
		out = append(out, 3, ph)
	}
	if m.MyOperatorUUID != "" {
		out = append(out, 4, m.MyOperatorUUID)
	}
	return out
}

func (s *Store) record(ctx context.Context, c Change) error {
	if s.journal == nil {
		return nil
	}
	if err := s.journal.Record(ctx, c); err != nil {
		return fmt.Errorf("mapping: journal: %w", err)
	}
	return nil
}

func (s *Store) changed(tenant, userID string, m *call.Mapping) {
	if s.onChange != nil {
		s.onChange(tenant, userID, m)
	}
}

// Resolve finds the active mapping of an agent: by MyOperator user id (or uuid, which
// Webhook v2 gives instead), then email, then phone. ErrNotFound when none is active.
func (s *Store) Resolve(ctx context.Context, tenant string, a call.Agent) (*call.Mapping, error) {
	try := func(m *call.Mapping, err error) (*call.Mapping, error) {
		if err != nil {
			return nil, err
		}
		if m.Status != call.MappingActive {
			return nil, ErrNotFound
		}
		return m, nil
	}
	if a.ID != "" {
		m, err := try(s.Get(ctx, tenant, a.ID))
		if !errors.Is(err, ErrNotFound) {
			return m, err
		}
		if m, err = try(s.byIndex(ctx, tenant, "uuid", a.ID)); !errors.Is(err, ErrNotFound) {
			return m, err
		}
	}
	if a.Email != "" {
		m, err := try(s.byIndex(ctx, tenant, "email", a.Email))
		if !errors.Is(err, ErrNotFound) {
			return m, err
		}
	}
	if a.Phone != "" {
		return try(s.byIndex(ctx, tenant, "phone", a.Phone))
	}
	return nil, ErrNotFound
}

func (s *Store) byIndex(ctx context.Context, tenant, index, value string) (*call.Mapping, error) {
	id, err := s.rdb.HGet(ctx, s.key(tenant, index), value).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mapping: lookup by %s: %w", index, err)
	}
	return s.Get(ctx, tenant, id)
}

// IsAgentPhone reports whether a number belongs to one of the tenant's mapped agents
// (a call from it is internal, not a customer's).
func (s *Store) IsAgentPhone(ctx context.Context, tenant, phone string) (bool, error) {
	if phone == "" {
		return false, nil
	}
	ok, err := s.rdb.HExists(ctx, s.key(tenant, "phone"), phone).Result()
	if err != nil {
		return false, fmt.Errorf("mapping: %w", err)
	}
	return ok, nil
}

// Flush removes every mapping of a tenant (used by rebuild).
func (s *Store) Flush(ctx context.Context, tenant string) error {
	return s.rdb.Del(ctx, s.indexKeys(tenant)...).Err()
}

// indexKeys are every key of a tenant's mappings.
func (s *Store) indexKeys(tenant string) []string {
	return []string{s.key(tenant, "byid"), s.key(tenant, "email"), s.key(tenant, "phone"), s.key(tenant, "uuid")}
}

// Owner applies the attribution rule's last steps to a call's agent: its active
// mapping, else the tenant's fallback owner (when set), else nil — the call is
// unattributed.
func (s *Store) Owner(ctx context.Context, tenant, fallbackOwner string, a *call.Agent) (*call.Owner, error) {
	var m *call.Mapping
	err := ErrNotFound
	if a != nil {
		m, err = s.Resolve(ctx, tenant, *a)
	}
	return OwnerOf(m, err, fallbackOwner)
}

// Fill writes the mappings of ms that Redis does not hold (by MyOperator user id),
// without journaling, and returns how many it wrote. It restores an emptied Redis
// from the journal without undoing a change made meanwhile: a mapping an admin or a
// sync wrote since is newer than the journal read, and is kept, and so are its index
// entries (a journaled mapping sharing one is written without it). Among the journaled
// mappings, a value two share goes to the newer, as a rebuild gives it (Restore): they
// are written newest first, and each leaves to the ones before what they hold.
func (s *Store) Fill(ctx context.Context, tenant string, ms []call.Mapping) (int, error) {
	ms = slices.Clone(ms)
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].UpdatedAt.After(ms[j].UpdatedAt) })
	n := 0
	for i := range ms {
		m := &ms[i]
		unlock, err := s.lock(ctx, tenant, m.MyOperatorUserID)
		if err != nil {
			return n, err
		}
		ok, err := s.rdb.HExists(ctx, s.key(tenant, "byid"), m.MyOperatorUserID).Result()
		if err == nil && !ok {
			if _, _, err = s.write(ctx, tenant, writeFill, m.MyOperatorUserID, nil, m); err == nil {
				n++
			}
		}
		unlock()
		if err != nil {
			return n, fmt.Errorf("mapping: fill %s: %w", tenant, err)
		}
	}
	return n, nil
}
