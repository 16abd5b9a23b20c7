package trace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/call"
)

// The calls index lists, per tenant, the calls traced recently, newest first (the
// console's Calls page): a sorted set of call ids scored by the time calltrack first
// heard of the call. The trace hash holds the rest; a few facts of the call itself
// (direction, outcome, start, duration, agent's name) are added to it from the stage
// that knows them (Update.Call). Record keeps the index in the same pipeline, so it
// costs no extra round trip.

// IndexCap is how many calls the index keeps per tenant (the newest); older ones also
// leave it with their traces, after TTL.
const IndexCap = 50_000

// CallInfo is what the calls list shows of a call beyond its trace.
type CallInfo struct {
	Direction string // incoming, outgoing
	Outcome   string // answered, missed, voicemail
	StartedAt time.Time
	Duration  int    // seconds
	AgentName string // the attributed agent's name, as MyOperator gave it
}

// InfoOf is the CallInfo of a call log.
func InfoOf(l *call.Log) *CallInfo {
	ci := &CallInfo{Direction: string(l.Direction), Outcome: string(l.Status), StartedAt: l.StartedAt, Duration: l.Duration}
	if l.Agent != nil {
		ci.AgentName = l.Agent.Name
	}
	return ci
}

func (s *Store) indexKey(tenant string) string {
	return s.prefix + ":trace-index:{" + tenant + "}" // on every webhook: no fmt
}

// IndexTrimEvery is how often a process trims a tenant's index (entries past TTL, and
// past IndexCap): trimming is for size, not correctness, so it is not worth two
// commands on every recorded stage. Between trims the index holds at most one
// interval's calls beyond the cap.
const IndexTrimEvery = time.Second

// index adds a recorded stage's call to its tenant's index, within Record's pipeline.
// The call's facts (Update.Call) go with the trace hash's own write (appendCallFields). The
// index's expiry is renewed with its trim, once an interval: it only has to outlive
// the week its entries are kept, and a command on every stage is one in thirteen of
// a webhook's (issue 14). An index Redis lost and a ZADD made anew between two trims
// has no expiry until this process's next trim.
func (s *Store) index(ctx context.Context, p redis.Pipeliner, tenant, callID string, u Update) {
	key := s.indexKey(tenant)
	p.ZAddNX(ctx, key, redis.Z{Score: float64(u.At.UnixMilli()), Member: callID})
	if s.trimDue(tenant) {
		p.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(u.At.Add(-TTL).UnixMilli(), 10))
		p.ZRemRangeByRank(ctx, key, 0, -IndexCap-1)
		p.Expire(ctx, key, TTL)
	}
}

// trimDue reports whether this process should trim tenant's index now, claiming the
// trim when so (one caller per interval).
func (s *Store) trimDue(tenant string) bool {
	now := s.now().UnixNano()
	v, _ := s.trims.LoadOrStore(tenant, new(atomic.Int64))
	last := v.(*atomic.Int64)
	prev := last.Load()
	if prev != 0 && now-prev < int64(IndexTrimEvery) {
		return false
	}
	return last.CompareAndSwap(prev, now)
}

// IndexBatch collects many calls' index entries, so that each tenant's are added in one
// ZADD, not one by one: RecordAll's, and ingest's background batch's (RecordPipe,
// FlushIndex). Not safe for concurrent use.
type IndexBatch struct {
	members map[string][]redis.Z // tenant → its calls
	latest  map[string]time.Time // tenant → its newest update
}

func (b *IndexBatch) add(tenant, callID string, at time.Time) {
	if b.members == nil {
		b.members, b.latest = map[string][]redis.Z{}, map[string]time.Time{}
	}
	b.members[tenant] = append(b.members[tenant], redis.Z{Score: float64(at.UnixMilli()), Member: callID})
	if at.After(b.latest[tenant]) {
		b.latest[tenant] = at
	}
}

// FlushIndex queues a batch's index entries, tenant by tenant — a ZADD and an EXPIRE
// each (an index made anew by the ZADD never goes without expiry), the trim once an
// interval as index does — and empties the batch.
func (s *Store) FlushIndex(ctx context.Context, p redis.Pipeliner, b *IndexBatch) {
	defer func() { clear(b.members); clear(b.latest) }() // emptied even if a command panics: not sent again
	for tenant, zs := range b.members {
		key := s.indexKey(tenant)
		p.ZAddNX(ctx, key, zs...)
		if s.trimDue(tenant) {
			p.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(b.latest[tenant].Add(-TTL).UnixMilli(), 10))
			p.ZRemRangeByRank(ctx, key, 0, -IndexCap-1)
		}
		p.Expire(ctx, key, TTL)
	}
}

// appendCallFields appends the trace hash fields of a call's facts, for the calls list.
func appendCallFields(fields []any, ci *CallInfo) []any {
	if ci == nil {
		return fields
	}
	fields = append(fields, "direction", ci.Direction, "outcome", ci.Outcome, "duration", strconv.Itoa(ci.Duration))
	if !ci.StartedAt.IsZero() {
		fields = append(fields, "started_at", ci.StartedAt.UTC().Format(time.RFC3339))
	}
	if ci.AgentName != "" {
		fields = append(fields, "agent_name", ci.AgentName)
	}
	return fields
}

// Entry is one call of the calls list.
type Entry struct {
	CallID    string
	LogID     string
	FirstSeen time.Time // when calltrack first heard of the call
	Status    string    // that of its call-log write; "" when only live events came
	Owner     string    // CRM user id
	RecordID  string    // CRM record id
	Agent     string    // MyOperator user id (or email, or masked phone)
	AgentName string
	Direction string
	Outcome   string
	StartedAt time.Time
	Duration  int
}

// Waiting is the list filter for calls no writer has decided yet (received,
// published, or only live events so far).
const Waiting = "waiting"

// ListOptions filter and page the calls list.
type ListOptions struct {
	Statuses []string  // any of these (Status* or Waiting); none: all
	Agent    string    // only this agent (Entry.Agent)
	Before   time.Time // only calls first seen before (the next page); zero: from the newest
	Limit    int       // default 50
}

// maxScan bounds the calls one List reads to fill a filtered page.
const maxScan = 5000

var entryFields = []string{"status", "owner", "record_id", "agent", "agent_name", "direction", "outcome", "started_at", "duration", "log_id", fieldEarlyStatus}

// List returns a tenant's recent calls, newest first, and whether more match further
// back (ask again with Before = the last entry's FirstSeen).
func (s *Store) List(ctx context.Context, tenant string, o ListOptions) ([]Entry, bool, error) {
	if o.Limit <= 0 {
		o.Limit = 50
	}
	max := "+inf"
	if !o.Before.IsZero() {
		max = "(" + strconv.FormatInt(o.Before.UnixMilli(), 10)
	}
	var out []Entry
	for scanned := 0; scanned < maxScan; {
		ids, err := s.rdb.ZRevRangeByScoreWithScores(ctx, s.indexKey(tenant), &redis.ZRangeBy{Max: max, Min: "-inf", Count: 200}).Result()
		if err != nil {
			return nil, false, fmt.Errorf("trace: list: %w", err)
		}
		if len(ids) == 0 {
			return out, false, nil
		}
		cmds := make([]*redis.SliceCmd, len(ids))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, z := range ids {
				cmds[i] = p.HMGet(ctx, s.hashKey(tenant, z.Member.(string)), entryFields...)
			}
			return nil
		})
		if err != nil {
			return nil, false, fmt.Errorf("trace: list: %w", err)
		}
		for i, z := range ids {
			scanned++
			e, ok := entryOf(z, cmds[i].Val())
			if !ok || !o.match(e) {
				continue
			}
			if len(out) == o.Limit {
				return out, true, nil
			}
			out = append(out, e)
		}
		max = "(" + strconv.FormatInt(int64(ids[len(ids)-1].Score), 10)
	}
	return out, true, nil
}

func entryOf(z redis.Z, v []any) (Entry, bool) {
	if !slices.ContainsFunc(v, func(x any) bool { return x != nil }) {
		return Entry{}, false // the trace expired; only its index entry was left
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	e := Entry{CallID: z.Member.(string), FirstSeen: time.UnixMilli(int64(z.Score)).UTC(), Status: statusOf(str(0), str(10)), Owner: str(1), RecordID: str(2),
		Agent: str(3), AgentName: str(4), Direction: str(5), Outcome: str(6), LogID: str(9)}
	e.StartedAt, _ = time.Parse(time.RFC3339, str(7))
	e.Duration, _ = strconv.Atoi(str(8))
	return e, true
}

func (o ListOptions) match(e Entry) bool {
	if o.Agent != "" && e.Agent != o.Agent {
		return false
	}
	if len(o.Statuses) == 0 {
		return true
	}
	st := e.Status
	if st == "" || st == StatusReceived || st == StatusPublished {
		st = Waiting
	}
	return slices.Contains(o.Statuses, st)
}

// Info is one call's calls-list entry (its direction, start, duration, outcome and
// agent's name, which its trace does not carry); callID is the call UID (Trace.CallID).
// ErrNotFound when the call has no trace.
func (s *Store) Info(ctx context.Context, tenant, callID string) (Entry, error) {
	var fields *redis.SliceCmd
	var score *redis.FloatCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fields = p.HMGet(ctx, s.hashKey(tenant, callID), entryFields...)
		score = p.ZScore(ctx, s.indexKey(tenant), callID)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Entry{}, fmt.Errorf("trace: info: %w", err)
	}
	e, ok := entryOf(redis.Z{Score: score.Val(), Member: callID}, fields.Val())
	if !ok {
		return Entry{}, ErrNotFound
	}
	if score.Err() != nil { // left the index (capped), but the trace is still kept
		e.FirstSeen = time.Time{}
	}
	return e, nil
}
