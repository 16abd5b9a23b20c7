// Package trace keeps, per tenant and call, the stages a call passed through, so an
// on-call engineer (or the admin API) can see where a call is and why.
package trace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/jsonwire"
)

// ErrNotFound means calltrack has no trace of that call.
var ErrNotFound = errors.New("trace: call not found")

// Statuses of a call (that of its call-log write).
const (
	StatusReceived     = "received"
	StatusPublished    = "published"
	StatusWritten      = "written"
	StatusUnattributed = "unattributed"
	StatusRetrying     = "retrying"
	StatusDeadLettered = "dead_lettered"
)

// Stages the CRM writer records (beside the statuses above, which are stages too).
const (
	StageAlreadyWritten    = "already_written"    // a redelivery, replay or later version of a written call
	StageAmended           = "amended"            // a later version added data to the record
	StageRecordingAttached = "recording_attached" // a recording was added to the record
	StageDispositionAdded  = "disposition_added"  // a disposition was added to the record
	StageAmendmentKept     = "amendment_kept"     // an amendment waits for its call's record
	StageOutcomeUnknown    = "outcome_unknown"    // a create got no usable answer; the CRM is asked before any new create
	StageAdopted           = "adopted"            // the CRM had the record of an unknown outcome: it is the call's record
	StageReattributed      = "reattributed"       // a parked call was re-published: a mapping for its agent appeared
)

// Kinds of event a stage is about.
const (
	KindLog       = "log"
	KindRecording = "recording"
	KindLive      = "live"
)

// PastPublished reports whether a trace's status says its call log left ingest:
// published to Kafka, or further along (written, unattributed, retrying, dead-lettered).
func PastPublished(status string) bool {
	switch status {
	case StatusPublished, StatusWritten, StatusUnattributed, StatusRetrying, StatusDeadLettered:
		return true
	}
	return false
}

// TTL of a trace.
const TTL = 7 * 24 * time.Hour

// Stage is one step of a call.
type Stage struct {
	Stage  string    `json:"stage"`
	At     time.Time `json:"at"`
	Kind   string    `json:"kind,omitempty"` // log, live, recording
	Detail string    `json:"detail,omitempty"`
}

// appendJSON appends s as encoding/json encodes it, without its reflection: ingest
// records two stages a webhook (issue 14).
func (s *Stage) appendJSON(b []byte) ([]byte, error) {
	if !jsonwire.StrictTime(s.At) {
		return jsonwire.AppendMarshal(b, s) // its error
	}
	b = append(b, `{"stage":`...)
	b = jsonwire.AppendString(b, s.Stage)
	b = append(b, `,"at":`...)
	b = jsonwire.AppendTime(b, s.At)
	b = jsonwire.AppendOmitEmpty(b, `,"kind":`, s.Kind)
	b = jsonwire.AppendOmitEmpty(b, `,"detail":`, s.Detail)
	return append(b, '}'), nil
}

// Trace is what the admin API shows.
type Trace struct {
	Tenant string `json:"tenant"`
	CallID string `json:"call_id"`
	LogID  string `json:"log_id,omitempty"`
	Status string `json:"status"`
	Owner  *struct {
		CRMUserID string `json:"crm_user_id"`
	} `json:"owner"`
	CRM *struct {
		RecordID string `json:"record_id"`
	} `json:"crm"`
	Agent string `json:"agent,omitempty"`
	// ParkedAgent is the agent of a call the writer parked (kept unattributed), by each
	// id its versions named it by (Update.ParkedUserID, ParkedUUID); nil when none.
	ParkedAgent *ParkedAgent `json:"parked_agent,omitempty"`
	Stages      []Stage      `json:"stages"`
}

// ParkedAgent names a parked call's agent by the ids MyOperator gives an agent: an
// afterCall's user id (what mappings are keyed by) and a Webhook v2 summary's uuid (a
// mapping's myoperator_uuid).
type ParkedAgent struct {
	MyOperatorUserID string `json:"myoperator_user_id,omitempty"`
	MyOperatorUUID   string `json:"myoperator_uuid,omitempty"`
}

// parkedAgentOf is the ParkedAgent of the two ids; nil when both are empty.
func parkedAgentOf(userID, uuid string) *ParkedAgent {
	if userID == "" && uuid == "" {
		return nil
	}
	return &ParkedAgent{MyOperatorUserID: userID, MyOperatorUUID: uuid}
}

// Update is one change to a call's trace.
type Update struct {
	Stage
	Status   string // new status, if the stage changes it
	OwnerID  string
	RecordID string
	LogID    string
	Agent    string    // the agent an event reports (ingest's): the latest one's shows, until Attributed
	Call     *CallInfo // facts of the call for the calls list (index.go), from the stage that knows them
	// Attributed is the agent the writer attributed the call to (its first write, from
	// the call's first log): shown over what later events report (Agent,
	// CallInfo.AgentName), as the CRM owner stays that of the first write. nil: none.
	Attributed *call.Agent
	// ParkedUserID or ParkedUUID is the id of the agent a version of the call names when
	// the writer parks it, by the kind its source names agents by: an afterCall's
	// MyOperator user id, a Webhook v2 summary's uuid. Each kind has a field of its own,
	// so a call parked as both keeps both (Trace.ParkedAgent): the console offers to map
	// the agent by its user id with its uuid, which attributes its calls of either webhook.
	ParkedUserID, ParkedUUID string
}

// Hash fields of the attributed agent (Update.Attributed). Ingest's agent fields
// ("agent", "agent_name") take each event's, in the one HSET a webhook's trace
// costs (no read, no script on that path: a set-if-absent would be a second
// command); the writer, which knows the call's attribution, writes these apart, so
// that no later event (a v2 summary, an afterCall amendment) replaces them.
const (
	fieldAttributedAgent     = "attributed_agent"
	fieldAttributedAgentName = "attributed_agent_name"
)

// Hash fields of a parked call's agent ids (Update.ParkedUserID, ParkedUUID).
const (
	fieldParkedUserID = "parked_agent_user_id"
	fieldParkedUUID   = "parked_agent_uuid"
)

// parkedFields appends the parked agent's id fields that are set.
func parkedFields(fields []any, userID, uuid string) []any {
	if userID != "" {
		fields = append(fields, fieldParkedUserID, userID)
	}
	if uuid != "" {
		fields = append(fields, fieldParkedUUID, uuid)
	}
	return fields
}

// attributedFields appends the attributed agent's fields of u, when it has one.
func attributedFields(fields []any, a *call.Agent) []any {
	if a == nil || a.Empty() {
		return fields
	}
	return append(fields, fieldAttributedAgent, a.Label(), fieldAttributedAgentName, a.Name)
}

// shownAgent is the agent a trace hash shows, and its name: the attributed one when the
// writer named it, else the latest event's.
func shownAgent(agent, name, attributed, attributedName string) (string, string) {
	if attributed != "" {
		return attributed, attributedName
	}
	return agent, name
}

// Store keeps traces in Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	clock  func() time.Time // for tests; time.Now when nil
	trims  sync.Map         // tenant → *atomic.Int64: when this process last trimmed its index (unix ns)
}

func (s *Store) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// New returns a store with keys under prefix.
func New(rdb redis.UniversalClient, prefix string) *Store { return &Store{rdb: rdb, prefix: prefix} }

func (s *Store) hashKey(tenant, callID string) string {
	return s.prefix + ":trace:" + tenant + ":" + callID
}
func (s *Store) stagesKey(tenant, callID string) string { return s.hashKey(tenant, callID) + ":stages" }
func (s *Store) aliasKey(tenant, logID string) string {
	return s.prefix + ":trace-alias:" + tenant + ":" + logID
}

// setStatus writes a writer's (later) status: a call written stays written, whatever a
// later redelivery or version of it goes through. Early statuses do not come here
// (fieldEarlyStatus).
var setStatus = redis.NewScript(`
local set = {'tenant', ARGV[2]}
if redis.call('HGET', KEYS[1], 'status') ~= 'written' then
  set[#set+1] = 'status'; set[#set+1] = ARGV[1]
end
for i = 3, #ARGV, 2 do
  if ARGV[i+1] ~= '' then set[#set+1] = ARGV[i]; set[#set+1] = ARGV[i+1] end
end
redis.call('HSET', KEYS[1], unpack(set)) -- one command, however many fields
redis.call('PEXPIRE', KEYS[1], 604800000)
return 1
`)

// Record appends a stage and applies the update.
func (s *Store) Record(ctx context.Context, tenant, callID string, u Update) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { return s.queue(ctx, p, tenant, callID, u) })
	if err != nil {
		return fmt.Errorf("trace: record %s %s: %w", u.Stage.Stage, callID, err)
	}
	return nil
}

// queue adds the commands of one update to a pipeline.
func (s *Store) queue(ctx context.Context, p redis.Pipeliner, tenant, callID string, u Update) error {
	return s.queueIndexed(ctx, p, tenant, callID, u, nil)
}

// queueIndexed is queue; with batch, the call's index entry is collected there
// (RecordAll writes them per tenant) instead of queued at once.
func (s *Store) queueIndexed(ctx context.Context, p redis.Pipeliner, tenant, callID string, u Update, batch *IndexBatch) error {
	if u.At.IsZero() {
		u.At = time.Now().UTC()
	}
	stage, err := u.Stage.appendJSON(nil)
	if err != nil {
		return err
	}
	s.queueWrites(ctx, p, tenant, callID, u, batch, nil, stage)
	return nil
}

// queueWrites queues the writes of u, an update whose stages are encoded already: the
// hash (with compact, stages kept as hash fields: compactField), the stages list, the
// log id's alias, and the calls-list entry (index.go) — in batch when given, for its
// ZADD with other calls'.
func (s *Store) queueWrites(ctx context.Context, p redis.Pipeliner, tenant, callID string, u Update, batch *IndexBatch, compact []any, stages ...any) {
	s.writeHash(ctx, p, tenant, callID, u, compact)
	if len(stages) > 0 {
		sk := s.stagesKey(tenant, callID)
		p.RPush(ctx, sk, stages...)
		p.Expire(ctx, sk, TTL)
	}
	if u.LogID != "" && u.LogID != callID {
		p.Set(ctx, s.aliasKey(tenant, u.LogID), callID, TTL)
	}
	if batch != nil {
		batch.add(tenant, callID, u.At)
		return
	}
	s.index(ctx, p, tenant, callID, u)
}

// fieldEarlyStatus holds an early status (received, published: ingest's), beside the
// status field a writer's later statuses go to: readers take status first (statusOf),
// so an early one never replaces a later one, and writing it needs no script — the
// status script cost Redis ~18 µs a call, the dearest command of a webhook.
const fieldEarlyStatus = "early_status"

// statusOf is a trace hash's status: a writer's, else ingest's early one. An early
// status in the status field was written before fieldEarlyStatus existed (an older
// replica, or a trace from before an upgrade): a newer early one replaces it.
func statusOf(status, early string) string {
	if status == "" || (earlyStatus(status) && early != "") {
		return early
	}
	return status
}

// writeHash queues the trace hash's write of an update: its status (an early one in
// its own field, a later one by the setStatus rules), ids and the call's facts
// (Update.Call, for the calls list), in one command. Empty values change nothing.
func (s *Store) writeHash(ctx context.Context, p redis.Pipeliner, tenant, callID string, u Update, compact []any) {
	hk := s.hashKey(tenant, callID)
	if u.Status == "" || earlyStatus(u.Status) {
		fields := appendCallFields(append(make([]any, 0, 32+len(compact)), "tenant", tenant, fieldEarlyStatus, u.Status,
			"owner", u.OwnerID, "record_id", u.RecordID, "log_id", u.LogID, "agent", u.Agent), u.Call)
		fields = parkedFields(attributedFields(fields, u.Attributed), u.ParkedUserID, u.ParkedUUID)
		p.HSet(ctx, hk, withoutEmpty(append(fields, compact...))...)
		p.PExpire(ctx, hk, TTL)
		return
	}
	args := appendCallFields([]any{u.Status, tenant, "owner", u.OwnerID, "record_id", u.RecordID, "log_id", u.LogID, "agent", u.Agent}, u.Call)
	args = parkedFields(attributedFields(args, u.Attributed), u.ParkedUserID, u.ParkedUUID)
	setStatus.Eval(ctx, p, []string{hk}, append(args, compact...)...)
}

// withoutEmpty drops, in place, the field/value pairs of kv whose value is empty (as
// the status script skips them).
func withoutEmpty(kv []any) []any {
	out := kv[:0]
	for i := 0; i+1 < len(kv); i += 2 {
		if v, _ := kv[i+1].(string); v != "" {
			out = append(out, kv[i], kv[i+1])
		}
	}
	return out
}

// CallUpdate is one call's update, for RecordAll.
type CallUpdate struct {
	Tenant, CallID string
	Update
}

// RecordAll applies many calls' updates in one pipeline (one round trip on a single
// Redis; one per node on a cluster): tools that touch thousands of calls, like replay.
// Each tenant's calls index gets one ZADD and one expiry for the lot.
func (s *Store) RecordAll(ctx context.Context, entries []CallUpdate) error {
	if len(entries) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		var idx IndexBatch
		for _, e := range entries {
			if err := s.queueIndexed(ctx, p, e.Tenant, e.CallID, e.Update, &idx); err != nil {
				return err
			}
		}
		s.FlushIndex(ctx, p, &idx)
		return nil
	})
	if err != nil {
		return fmt.Errorf("trace: record %d calls: %w", len(entries), err)
	}
	return nil
}

// Get returns the trace of a call; id may be the call UID or the afterCall log id.
func (s *Store) Get(ctx context.Context, tenant, id string) (*Trace, error) {
	callID := id
	h, err := s.rdb.HGetAll(ctx, s.hashKey(tenant, callID)).Result()
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if len(h) == 0 {
		alias, err := s.rdb.Get(ctx, s.aliasKey(tenant, id)).Result()
		if errors.Is(err, redis.Nil) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		callID = alias
		if h, err = s.rdb.HGetAll(ctx, s.hashKey(tenant, callID)).Result(); err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		if len(h) == 0 {
			return nil, ErrNotFound
		}
	}
	raw, err := s.rdb.LRange(ctx, s.stagesKey(tenant, callID), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	agent, _ := shownAgent(h["agent"], h["agent_name"], h[fieldAttributedAgent], h[fieldAttributedAgentName])
	t := &Trace{Tenant: tenant, CallID: callID, LogID: h["log_id"], Status: statusOf(h["status"], h[fieldEarlyStatus]), Agent: agent,
		ParkedAgent: parkedAgentOf(h[fieldParkedUserID], h[fieldParkedUUID]), Stages: []Stage{}}
	if t.Status == "" {
		t.Status = StatusReceived
	}
	if h["owner"] != "" {
		t.Owner = &struct {
			CRMUserID string `json:"crm_user_id"`
		}{h["owner"]}
	}
	if h["record_id"] != "" {
		t.CRM = &struct {
			RecordID string `json:"record_id"`
		}{h["record_id"]}
	}
	for _, r := range raw {
		var st Stage
		if json.Unmarshal([]byte(r), &st) == nil {
			t.Stages = append(t.Stages, st)
		}
	}
	t.Stages = mergeStages(t.Stages, compactStages(h))
	return t, nil
}
