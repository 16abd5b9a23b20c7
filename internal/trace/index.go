package trace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	// ParkedAgent is a parked call's agent by its ids (Trace.ParkedAgent); nil: none.
	ParkedAgent *ParkedAgent
	Direction   string
	Outcome     string
	StartedAt   time.Time
	Duration    int
}

// Waiting is the list filter for calls no writer has decided yet (received,
// published, or only live events so far).
const Waiting = "waiting"

// ListOptions filter and page the calls list.
type ListOptions struct {
	Statuses []string // any of these (Status* or Waiting); none: all
	Agent    string   // only this agent (Entry.Agent)
	Before   Cursor   // only calls listed after this place (the next page); zero: from the newest
	Limit    int      // default 50
}

// Cursor is a place in the calls list: that of call CallID, first seen At. The list is
// ordered by the millisecond first seen and, within one (calls ingested together share
// it), by call id descending, as Redis orders a sorted set's ties; a millisecond alone
// would skip the rest of a page's last millisecond.
type Cursor struct {
	At     time.Time
	CallID string // "": past every call of At's millisecond (a bare-millisecond cursor)
}

// Cursor is the place of e in the calls list: ListOptions.Before of the next page.
func (e Entry) Cursor() Cursor { return Cursor{At: e.FirstSeen, CallID: e.CallID} }

// IsZero reports whether c is the top of the list.
func (c Cursor) IsZero() bool { return c.At.IsZero() && c.CallID == "" }

// String is c as ParseCursor reads it: "<unix ms>:<call id>", "" for the top.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	ms := strconv.FormatInt(c.At.UnixMilli(), 10)
	if c.CallID == "" {
		return ms
	}
	return ms + ":" + c.CallID
}

// ParseCursor reads a Cursor's String; a bare "<unix ms>" (the console's links before
// call ids were added) is every call first seen before that millisecond.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	msText, id, _ := strings.Cut(s, ":") // a call id may hold colons; the ms does not
	ms, err := strconv.ParseInt(msText, 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("trace: cursor %q: %w", s, err)
	}
	return Cursor{At: time.UnixMilli(ms).UTC(), CallID: id}, nil
}

// past reports whether index entry z comes after c in the list.
func (c Cursor) past(z redis.Z) bool {
	if c.IsZero() {
		return true
	}
	ms := c.At.UnixMilli()
	return int64(z.Score) < ms || int64(z.Score) == ms && c.CallID != "" && z.Member.(string) < c.CallID
}

// maxScan bounds the calls one List reads to fill a filtered page.
const maxScan = 5000

// scanBatch is how many index entries List reads at a time.
const scanBatch = 200

var entryFields = []string{"status", "owner", "record_id", "agent", "agent_name", "direction", "outcome", "started_at", "duration", "log_id", fieldEarlyStatus,
	fieldAttributedAgent, fieldAttributedAgentName, fieldParkedUserID, fieldParkedUUID}

// List returns a tenant's recent calls, newest first, and whether more match further
// back (ask again with Before = the last entry's Cursor).
func (s *Store) List(ctx context.Context, tenant string, o ListOptions) ([]Entry, bool, error) {
	if o.Limit <= 0 {
		o.Limit = 50
	}
	var out []Entry
	cur, skip := o.Before, 0
	for scanned := 0; scanned < maxScan; {
		zs, err := s.scanIndex(ctx, tenant, cur, skip)
		if err != nil {
			return nil, false, fmt.Errorf("trace: list: %w", err)
		}
		if len(zs) == 0 {
			return out, false, nil
		}
		cmds := make([]*redis.SliceCmd, len(zs))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, z := range zs {
				if cur.past(z) {
					cmds[i] = p.HMGet(ctx, s.hashKey(tenant, z.Member.(string)), entryFields...)
				}
			}
			return nil
		})
		if err != nil {
			return nil, false, fmt.Errorf("trace: list: %w", err)
		}
		for i, z := range zs {
			if cmds[i] == nil {
				continue // at the cursor's millisecond, not past it: listed already
			}
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
		cur, skip = nextScan(cur, skip, zs)
	}
	return out, true, nil
}

// scanIndex reads the index entries from cursor c on, newest first: those of c's
// millisecond (when c names a call) less the first skip, then older ones. Those of
// c's millisecond that are not past it are the caller's to drop (Cursor.past); skip
// only saves reading them again.
func (s *Store) scanIndex(ctx context.Context, tenant string, c Cursor, skip int) ([]redis.Z, error) {
	by := &redis.ZRangeBy{Max: "+inf", Min: "-inf", Offset: int64(skip), Count: scanBatch}
	if !c.IsZero() {
		by.Max = strconv.FormatInt(c.At.UnixMilli(), 10)
		if c.CallID == "" {
			by.Max = "(" + by.Max
		}
	}
	return s.rdb.ZRevRangeByScoreWithScores(ctx, s.indexKey(tenant), by).Result()
}

// nextScan is the cursor and skip of the scan after batch zs, read from cur with skip:
// the batch's last entry, and how many entries of its millisecond were read (those
// open the next batch). A batch all of cur's millisecond adds to the skip, so more
// entries of one millisecond than a batch holds still move on; one not past cur
// (a page that starts deep in a millisecond) keeps cur.
func nextScan(cur Cursor, skip int, zs []redis.Z) (Cursor, int) {
	last := zs[len(zs)-1]
	if !cur.past(last) {
		return cur, skip + len(zs)
	}
	next := Cursor{At: time.UnixMilli(int64(last.Score)).UTC(), CallID: last.Member.(string)}
	if cur.CallID != "" && int64(last.Score) == cur.At.UnixMilli() {
		return next, skip + len(zs)
	}
	n := 0
	for _, z := range zs {
		if z.Score == last.Score {
			n++
		}
	}
	return next, n
}

func entryOf(z redis.Z, v []any) (Entry, bool) {
	if !slices.ContainsFunc(v, func(x any) bool { return x != nil }) {
		return Entry{}, false // the trace expired; only its index entry was left
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	e := Entry{CallID: z.Member.(string), FirstSeen: time.UnixMilli(int64(z.Score)).UTC(), Status: statusOf(str(0), str(10)), Owner: str(1), RecordID: str(2),
		Direction: str(5), Outcome: str(6), LogID: str(9)}
	e.Agent, e.AgentName = shownAgent(str(3), str(4), str(11), str(12))
	e.ParkedAgent = parkedAgentOf(str(13), str(14))
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
