// Package provisional holds MyOperator Webhook v2 `call.end` events while their call
// waits for its `call.summary` (the event calltrack attributes from). When no call log
// of the call — v2 summary or v1 afterCall — reached Kafka within the wait, the call
// log built from `call.end` (its agent known by phone only) is published in its place,
// so a call is never lost because the summary never came.
//
// Held calls live on Kafka, not in Redis: ingest publishes the call.end's call log to
// calltrack.call.held.v1 (or its spool) before answering, and the Releaser — a
// consumer-group handler every `work` replica runs — holds each message until its wait
// is over (kafkabus.ConcurrentConfig.DueAt, as the retry topic is held), then publishes
// it to the call-log topic unless the call's trace shows a call log on its way. Its
// offset is committed only after that, so a replica that dies mid-wait leaves the call
// to the next; the writer's exactly-once absorbs a second copy.
package provisional

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/trace"
)

// DefaultWait is how long a call.end waits for its call.summary (CALLTRACK_V2_SUMMARY_WAIT).
const DefaultWait = 5 * time.Minute

// ReasonSummaryMissing is the reason header of a call log written from call.end.
const ReasonSummaryMissing = "v2_summary_missing"

// Trace stages of a held call (kind "log"; they leave the call's status alone).
const (
	StageHeld    = "provisional_held"    // call.end kept, waiting for a call log
	StageDropped = "provisional_dropped" // a call log came: call.end not used
)

// stageSpooled is ingest's stage of an event kept in its local spool (ingest.StageSpooled):
// durable, on its way to Kafka.
const stageSpooled = "spooled"

// LogSeen reports whether a trace shows a call log of the call on its way to the CRM:
// published to Kafka (or kept in ingest's spool), or further. A log that was only
// received — its publish may have failed and been answered 503 — does not count.
func LogSeen(t *trace.Trace) bool {
	if t == nil {
		return false
	}
	// The status says so too (as backfill.Seen reads it): a trace whose stages a reader
	// does not show — one of another version's layout — still counts.
	if trace.PastPublished(t.Status) {
		return true
	}
	for _, st := range t.Stages {
		if st.Kind != "log" {
			continue
		}
		switch st.Stage {
		case stageSpooled, trace.StatusPublished, trace.StatusWritten,
			trace.StatusUnattributed, trace.StatusRetrying, trace.StatusDeadLettered:
			return true
		}
	}
	return false
}

// Publisher is what the releaser needs of Kafka.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// Traces is what the releaser needs of the call traces.
type Traces interface {
	Get(ctx context.Context, tenant, id string) (*trace.Trace, error)
	Record(ctx context.Context, tenant, callID string, u trace.Update) error
}

// Releaser handles calltrack.call.held.v1: each message is a call log built from a
// call.end, due Wait after ingest received it.
type Releaser struct {
	Wait      time.Duration // from receiving call.end; DefaultWait when zero
	Publisher Publisher
	Topic     string // the call-log topic
	Trace     Traces
	Log       zerolog.Logger
}

func (r *Releaser) wait() time.Duration {
	if r.Wait > 0 {
		return r.Wait
	}
	return DefaultWait
}

// DueAt is when a held message is released: its event time (ingest's receipt of the
// call.end) plus the wait. A message without a readable time is due at once.
func (r *Releaser) DueAt(m kafka.Message) time.Time {
	at, err := time.Parse(time.RFC3339Nano, kafkabus.Header(m, kafkabus.HeaderTime))
	if err != nil {
		return time.Time{}
	}
	return at.Add(r.wait())
}

// Handle releases one due message: it publishes the call log unless a call log of the
// call is on its way. An error (Redis or Kafka unreachable) leaves the message to be
// tried again; it is never committed past.
func (r *Releaser) Handle(ctx context.Context, m kafka.Message) error {
	tenant, callID := kafkabus.Header(m, kafkabus.HeaderTenant), kafkabus.Header(m, kafkabus.HeaderCallID)
	log := r.Log.With().Str("tenant", tenant).Str("call_id", callID).Logger()
	if tenant == "" || callID == "" {
		log.Warn().Int64("offset", m.Offset).Msg("held call.end without tenant or call id: dropped")
		return nil
	}
	tr, err := r.Trace.Get(ctx, tenant, callID)
	if err != nil && !errors.Is(err, trace.ErrNotFound) {
		return fmt.Errorf("provisional: trace of %s: %w", callID, err)
	}
	if LogSeen(tr) {
		_ = r.Trace.Record(ctx, tenant, callID, trace.Update{Stage: trace.Stage{Stage: StageDropped, Kind: "log",
			Detail: "a call log came: the call.end is not used"}})
		log.Info().Msg("call log came after call.end: provisional call.end dropped")
		return nil
	}
	out := kafkabus.Event(r.Topic, string(m.Key), "calltrack/provisional", tenant, callID, m.Value,
		kafka.Header{Key: kafkabus.HeaderReason, Value: []byte(ReasonSummaryMissing)})
	if err := r.Publisher.Publish(ctx, out); err != nil {
		return fmt.Errorf("provisional: publish %s: %w", callID, err)
	}
	detail := fmt.Sprintf("no call.summary within %s: call log written from call.end", r.wait())
	u := trace.Update{Stage: trace.Stage{Stage: trace.StatusPublished, Kind: "log", Detail: detail}, Status: trace.StatusPublished}
	var cl call.Log
	if json.Unmarshal(m.Value, &cl) == nil {
		u.Call = trace.InfoOf(&cl) // the calls list shows its direction, outcome and agent
	}
	if err := r.Trace.Record(ctx, tenant, callID, u); err != nil {
		log.Warn().Err(err).Msg("trace not recorded")
	}
	log.Info().Dur("wait", r.wait()).Msg("no call.summary came: call log published from call.end")
	return nil
}
