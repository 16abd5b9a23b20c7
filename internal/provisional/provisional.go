// Package provisional holds MyOperator Webhook v2 `call.end` events while their
// call waits for its `call.summary` (the event calltrack attributes from). When no
// call log of the call — v2 summary or v1 afterCall — was received within the wait,
// the call log built from `call.end` (its agent known by phone only) is published in
// its place, so a call is never lost because the summary never came.
//
// Held calls live in Redis — a sorted set scored by the time calltrack received the
// call.end, and a hash of the call logs — so any replica can release them, and
// several replicas can run the loop at once: a call is claimed with a lease before it
// is published, and is published again only if its claimer died mid-way (then the
// writer's idempotency keeps the CRM at one record).
package provisional

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/trace"
)

// DefaultWait is how long a call.end waits for its call.summary (CALLTRACK_V2_SUMMARY_WAIT).
const DefaultWait = 5 * time.Minute

// Trace stages of a held call (kind "log"; they leave the call's status alone).
const (
	StageHeld    = "provisional_held"    // call.end kept, waiting for a call log
	StageDropped = "provisional_dropped" // a call log came: call.end not used
)

// Store keeps the held calls.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// New returns a store with keys under prefix.
func New(rdb redis.UniversalClient, prefix string) *Store { return &Store{rdb: rdb, prefix: prefix} }

// Both keys share a hash tag so the claim script and MULTI work on a cluster.
func (s *Store) dueKey() string  { return s.prefix + ":{provisional}:due" }
func (s *Store) logsKey() string { return s.prefix + ":{provisional}:logs" }

// member is "tenant:call id" (tenant ids have no colon).
func member(tenant, callID string) string { return tenant + ":" + callID }

// Hold keeps l (a call log built from call.end) until it is released or cancelled.
// The wait runs from l.ReceivedAt; holding a call again keeps the first time.
func (s *Store) Hold(ctx context.Context, l *call.Log) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("provisional: hold %s: %w", l.CallID, err)
	}
	m := member(l.Tenant, l.CallID)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.logsKey(), m, b)
		p.ZAddNX(ctx, s.dueKey(), redis.Z{Score: float64(l.ReceivedAt.UnixMilli()), Member: m})
		return nil
	})
	if err != nil {
		return fmt.Errorf("provisional: hold %s: %w", l.CallID, err)
	}
	return nil
}

// Cancel forgets a held call (its call log came); holding none is not an error.
func (s *Store) Cancel(ctx context.Context, tenant, callID string) error {
	m := member(tenant, callID)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.dueKey(), m)
		p.HDel(ctx, s.logsKey(), m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("provisional: cancel %s: %w", callID, err)
	}
	return nil
}

// Held returns the held call log of a call, or nil.
func (s *Store) Held(ctx context.Context, tenant, callID string) (*call.Log, error) {
	b, err := s.rdb.HGet(ctx, s.logsKey(), member(tenant, callID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("provisional: %w", err)
	}
	var l call.Log
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("provisional: decode %s: %w", callID, err)
	}
	return &l, nil
}

// Count is how many calls are held.
func (s *Store) Count(ctx context.Context) (int64, error) {
	return s.rdb.ZCard(ctx, s.dueKey()).Result()
}

// claimScript takes up to ARGV[3] members received at or before ARGV[1] (ms) and
// pushes their score to ARGV[2]: the claimer has until then to publish them before
// another replica may take them again.
var claimScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
return due
`)

func (s *Store) claim(ctx context.Context, receivedBy, until time.Time, limit int) ([]string, error) {
	res, err := claimScript.Run(ctx, s.rdb, []string{s.dueKey()},
		receivedBy.UnixMilli(), until.UnixMilli(), limit).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("provisional: claim: %w", err)
	}
	return res, nil
}

// LogSeen reports whether a trace shows a call log of the call reached calltrack
// (received, published, or further): then a held call.end is not needed.
func LogSeen(t *trace.Trace) bool {
	if t == nil {
		return false
	}
	for _, st := range t.Stages {
		if st.Kind != "log" {
			continue
		}
		switch st.Stage {
		case trace.StatusReceived, trace.StatusPublished, trace.StatusWritten,
			trace.StatusUnattributed, trace.StatusRetrying, trace.StatusDeadLettered:
			return true
		}
	}
	return false
}

// Publisher is what the loop needs of Kafka.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// Traces is what the loop needs of the call traces.
type Traces interface {
	Get(ctx context.Context, tenant, id string) (*trace.Trace, error)
	Record(ctx context.Context, tenant, callID string, u trace.Update) error
}

// Loop releases held calls whose wait is over: publishes their call log to Topic
// unless a call log of the call arrived meanwhile.
type Loop struct {
	Store     *Store
	Wait      time.Duration // from receiving call.end; DefaultWait when zero
	Publisher Publisher
	Topic     string // the call-log topic
	Trace     Traces
	Log       zerolog.Logger
	Now       func() time.Time
	Lease     time.Duration // how long a claim lasts; 30 s when zero
	Batch     int           // calls claimed per round; 100 when zero
}

func (l *Loop) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Loop) wait() time.Duration {
	if l.Wait > 0 {
		return l.Wait
	}
	return DefaultWait
}

// Interval is how often the loop looks: a quarter of the wait (so a call is written
// at most wait + wait/4 after its call.end), at most every 5 s, at least every 10 ms.
func (l *Loop) Interval() time.Duration {
	return min(max(l.wait()/4, 10*time.Millisecond), 5*time.Second)
}

// Run releases due calls every Interval until ctx ends. Redis or Kafka failures are
// logged and retried on the next round.
func (l *Loop) Run(ctx context.Context) error {
	t := time.NewTicker(l.Interval())
	defer t.Stop()
	for {
		if _, err := l.Tick(ctx); err != nil && ctx.Err() == nil {
			l.Log.Warn().Err(err).Msg("provisional call.end release failed; retrying")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick releases the calls due now and returns how many it published.
func (l *Loop) Tick(ctx context.Context) (int, error) {
	lease, batch := l.Lease, l.Batch
	if lease <= 0 {
		lease = 30 * time.Second
	}
	if batch <= 0 {
		batch = 100
	}
	now := l.now()
	published := 0
	for {
		// Claimed members come due again after the lease: now - wait + lease.
		members, err := l.Store.claim(ctx, now.Add(-l.wait()), now.Add(-l.wait()+lease), batch)
		if err != nil {
			return published, err
		}
		var errs []error
		for _, m := range members {
			ok, err := l.release(ctx, m)
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				published++
			}
		}
		if len(errs) > 0 || len(members) < batch || ctx.Err() != nil {
			return published, errors.Join(errs...)
		}
	}
}

// release publishes one claimed call's log unless its call log came; it reports
// whether it published.
func (l *Loop) release(ctx context.Context, m string) (bool, error) {
	tenant, callID, ok := strings.Cut(m, ":")
	if !ok {
		return false, l.drop(ctx, m)
	}
	log := l.Log.With().Str("tenant", tenant).Str("call_id", callID).Logger()
	cl, err := l.Store.Held(ctx, tenant, callID)
	if err != nil {
		return false, err
	}
	if cl == nil {
		return false, l.drop(ctx, m)
	}
	tr, err := l.Trace.Get(ctx, tenant, callID)
	if err != nil && !errors.Is(err, trace.ErrNotFound) {
		return false, fmt.Errorf("provisional: trace of %s: %w", callID, err)
	}
	if LogSeen(tr) {
		_ = l.Trace.Record(ctx, tenant, callID, trace.Update{Stage: trace.Stage{Stage: StageDropped, Kind: "log",
			Detail: "a call log came: the call.end is not used"}})
		log.Info().Msg("call log came after call.end: provisional call.end dropped")
		return false, l.drop(ctx, m)
	}
	val, err := json.Marshal(cl)
	if err != nil {
		_ = l.drop(ctx, m)
		return false, fmt.Errorf("provisional: encode %s: %w", callID, err)
	}
	msg := kafkabus.Event(l.Topic, call.Key(tenant, callID), "calltrack/provisional", tenant, callID, val,
		kafka.Header{Key: kafkabus.HeaderReason, Value: []byte("v2_summary_missing")})
	if err := l.Publisher.Publish(ctx, msg); err != nil {
		return false, fmt.Errorf("provisional: publish %s: %w", callID, err) // claimed: retried after the lease
	}
	detail := fmt.Sprintf("no call.summary within %s: call log written from call.end", l.wait())
	if err := l.Trace.Record(ctx, tenant, callID, trace.Update{Stage: trace.Stage{Stage: trace.StatusPublished, Kind: "log", Detail: detail},
		Status: trace.StatusPublished, Call: trace.InfoOf(cl)}); err != nil {
		log.Warn().Err(err).Msg("trace not recorded")
	}
	log.Info().Dur("wait", l.wait()).Msg("no call.summary came: call log published from call.end")
	return true, l.drop(ctx, m)
}

func (l *Loop) drop(ctx context.Context, m string) error {
	tenant, callID, _ := strings.Cut(m, ":")
	return l.Store.Cancel(ctx, tenant, callID)
}
