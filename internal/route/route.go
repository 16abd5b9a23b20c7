// Package route is the Kafka side of the CRM writer: the handlers of its consumer
// groups, as a chain around the call-writing service (internal/callwriter). A message
// is decoded, skipped past an open circuit breaker, tried a bounded number of times in
// place, and then routed: done, to the retry topic with its next due time, or to the
// dead-letter topic with a reason — counted in the writer's metrics either way. Only a
// failure of calltrack's own dependencies is returned to the consumer, which retries
// the message and never commits past it.
package route

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callwriter"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/trace"
)

// Service is what the handlers call (callwriter.Service).
type Service interface {
	WriteLog(ctx context.Context, l *call.Log) (callwriter.Outcome, error)
	Amend(ctx context.Context, ev *call.RecordingEvent) (callwriter.Outcome, error)
}

// Publisher is what routing needs of Kafka.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// Outcomes of routing (the `outcome` label beside callwriter's outcomes).
const (
	OutcomeRetry        = "retry"
	OutcomeDeferred     = "deferred"
	OutcomeDeadLettered = "dead_lettered"
)

// Handlers are the writer's consumer-group handlers. Build once; safe for concurrent use.
type Handlers struct {
	Service   Service
	Publisher Publisher
	Topics    kafkabus.Topics
	Policy    Policy
	// Pause holds a tenant's CRM credential for every replica (a 429's Retry-After); may be nil.
	Pause   func(ctx context.Context, tenant string, d time.Duration)
	Trace   callwriter.Tracer // may be nil
	Metrics *metrics.Metrics
	Log     zerolog.Logger

	breakers breakers
}

// Sentinels of the chain.
var (
	errUndecodable  = errors.New("undecodable event")
	errUnknownTopic = errors.New("no writer for the topic")
	errCircuitOpen  = errors.New("CRM failing: circuit open")
)

// delivery is one message on its way through the chain.
type delivery struct {
	m         kafka.Message
	kind      string // the topic the event was first published to (log or recording)
	tenant    string
	callID    string
	attempts  int // attempts made before this one
	fromRetry bool
	call      func(context.Context) (callwriter.Outcome, error)
}

type step func(context.Context, *delivery) (callwriter.Outcome, error)

// Main handles the call-log and recording topics.
func (h *Handlers) Main() kafkabus.Handler { return h.handler(false) }

// Retry handles the retry topic. The consumer holds each message until it is due
// (DueAt); one attempt is made per due time.
func (h *Handlers) Retry() kafkabus.Handler { return h.handler(true) }

// Each handler runs in a consumer span continuing the trace of the message's headers
// (telemetry.Consume): the CRM requests are its children, and what is routed on to the
// retry or dead-letter topic carries the same trace (the producer injects it).
func (h *Handlers) handler(fromRetry bool) kafkabus.Handler {
	chain := h.inPlace(h.breaker(h.invoke))
	return telemetry.Consume(func(ctx context.Context, m kafka.Message) error {
		d, err := h.decode(m, fromRetry)
		var o callwriter.Outcome
		if err == nil {
			o, err = chain(ctx, d)
		}
		return h.route(ctx, d, o, err)
	})
}

// DueAt is when a retry-topic message is due.
func DueAt(m kafka.Message) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, kafkabus.Header(m, kafkabus.HeaderDueAt))
	return t
}

// decode reads the event; the returned delivery is usable for routing even on error.
func (h *Handlers) decode(m kafka.Message, fromRetry bool) (*delivery, error) {
	d := &delivery{m: m, kind: m.Topic, fromRetry: fromRetry,
		tenant: kafkabus.Header(m, kafkabus.HeaderTenant), callID: kafkabus.Header(m, kafkabus.HeaderCallID)}
	if fromRetry {
		d.kind = kafkabus.Header(m, kafkabus.HeaderOrigTopic)
		d.attempts, _ = strconv.Atoi(kafkabus.Header(m, kafkabus.HeaderAttempts))
		d.attempts = max(d.attempts, 0)
	}
	switch d.kind {
	case h.Topics.Log:
		var l call.Log
		if err := json.Unmarshal(m.Value, &l); err != nil {
			return d, fmt.Errorf("%w: call log: %w", errUndecodable, err)
		}
		if err := l.Validate(); err != nil {
			return d, fmt.Errorf("%w: %w", errUndecodable, err)
		}
		d.tenant, d.callID = l.Tenant, l.CallID
		d.call = func(ctx context.Context) (callwriter.Outcome, error) {
			l := l // each attempt starts from the event as published
			return h.Service.WriteLog(ctx, &l)
		}
	case h.Topics.Recording:
		var r call.RecordingEvent
		if err := json.Unmarshal(m.Value, &r); err != nil {
			return d, fmt.Errorf("%w: recording event: %w", errUndecodable, err)
		}
		if r.Tenant == "" || r.CallID == "" {
			return d, fmt.Errorf("%w: recording event: tenant and call_id are required", errUndecodable)
		}
		d.tenant, d.callID = r.Tenant, r.CallID
		d.call = func(ctx context.Context) (callwriter.Outcome, error) { return h.Service.Amend(ctx, &r) }
	default:
		return d, fmt.Errorf("%w %q", errUnknownTopic, d.kind)
	}
	return d, nil
}

func (h *Handlers) invoke(ctx context.Context, d *delivery) (callwriter.Outcome, error) {
	return d.call(ctx)
}

// breaker skips the tenant's CRM while it keeps failing (main topics only), and counts
// its failures.
func (h *Handlers) breaker(next step) step {
	return func(ctx context.Context, d *delivery) (callwriter.Outcome, error) {
		br := h.breakers.of(d.tenant)
		if !d.fromRetry && br.open() {
			return "", errCircuitOpen
		}
		o, err := next(ctx, d)
		switch {
		case err == nil:
			br.success()
		case crmFailed(err):
			br.failure()
		}
		return o, err
	}
}

// crmFailed: the CRM itself failed (not a busy call, not calltrack's own dependency).
func crmFailed(err error) bool {
	_, ok := errors.AsType[*crm.Error](err)
	return ok && !crm.IsPermanent(err) && !errors.Is(err, callwriter.ErrInfra) && !ownWait(err)
}

// ownWait: a wait of calltrack's own making (another writer is creating the caller's
// lead), not the CRM's: it neither pauses the tenant's credential nor counts against
// its circuit.
func ownWait(err error) bool { return errors.Is(err, crm.ErrLeadBeingCreated) }

// inPlace retries a transient failure a few times without leaving the partition's
// stream (a message from the retry topic gets one attempt per due time). A 429 holds
// the credential for every replica.
func (h *Handlers) inPlace(next step) step {
	return func(ctx context.Context, d *delivery) (callwriter.Outcome, error) {
		tries := max(1, h.Policy.InPlace)
		if d.fromRetry {
			tries = 1
		}
		var o callwriter.Outcome
		bo := backoff.NewExponentialBackOff()
		bo.InitialInterval = h.Policy.InPlaceWait
		_, err := backoff.Retry(ctx, func() (struct{}, error) {
			var err error
			o, err = next(ctx, d)
			switch {
			case err == nil:
				return struct{}{}, nil
			case errors.Is(err, callwriter.ErrInfra):
				return struct{}{}, backoff.Permanent(err) // the consumer retries it as it is
			case final(err), errors.Is(err, callwriter.ErrOutcomeUnknown), errors.Is(err, errCircuitOpen):
				// Retrying at once cannot help: an unknown outcome waits for the CRM to settle.
				return struct{}{}, backoff.Permanent(err)
			}
			if ra := crm.RetryAfter(err); (ra > 0 || crm.HTTPStatus(err) == http.StatusTooManyRequests) && !ownWait(err) {
				if h.Pause != nil {
					h.Pause(ctx, d.tenant, max(ra, time.Second))
				}
				if ra > 2*time.Second {
					return struct{}{}, backoff.Permanent(err) // a long wait: schedule instead
				}
			}
			return struct{}{}, err
		}, backoff.WithBackOff(bo), backoff.WithMaxTries(uint(tries)), backoff.WithMaxElapsedTime(30*time.Second))
		if perr, ok := errors.AsType[*backoff.PermanentError](err); ok {
			err = perr.Err
		}
		return o, err
	}
}

// final: no retry can succeed.
func final(err error) bool {
	if errors.Is(err, callwriter.ErrOutcomeUnknown) {
		return false // the CRM may answer a lookup later
	}
	return crm.IsPermanent(err) || errors.Is(err, callwriter.ErrUnknownTenant) ||
		errors.Is(err, errUndecodable) || errors.Is(err, errUnknownTopic)
}

// route decides where the message goes after the chain.
func (h *Handlers) route(ctx context.Context, d *delivery, o callwriter.Outcome, err error) error {
	switch {
	case err == nil:
		h.count(d, string(o))
		return nil
	case errors.Is(err, callwriter.ErrInfra):
		// Redis or Kafka is down: not the write's fault. Do not route, do not commit.
		return err
	case errors.Is(err, errUndecodable):
		return h.deadLetter(ctx, d, d.attempts, kafkabus.ReasonUndecodable, err)
	case errors.Is(err, errUnknownTopic):
		return h.deadLetter(ctx, d, d.attempts, kafkabus.ReasonUnknownTopic, err)
	case errors.Is(err, callwriter.ErrUnknownTenant):
		return h.deadLetter(ctx, d, d.attempts, kafkabus.ReasonUnknownTenant, err)
	case errors.Is(err, errCircuitOpen), errors.Is(err, callwriter.ErrSettling):
		// Not an attempt: the CRM was not tried. A settling call is due when its wait
		// ends, not at every retry step before it (one warning, not one a second).
		if se, ok := errors.AsType[*callwriter.SettlingError](err); ok {
			return h.scheduleAt(ctx, d, d.attempts, err, max(se.Left, h.Policy.Delay(1)))
		}
		return h.schedule(ctx, d, d.attempts, err)
	case errors.Is(err, callwriter.ErrBusy):
		// Not an attempt either, and no back-off: a lease nobody works under (its
		// worker died) lapses, and the call must be written soon after, not minutes
		// later or dead-lettered for having waited.
		return h.scheduleAt(ctx, d, d.attempts, err, h.Policy.busyDelay())
	case errors.Is(err, callwriter.ErrOutcomeUnknown):
		if d.attempts+1 >= h.Policy.MaxAttempts {
			return h.deadLetter(ctx, d, d.attempts+1, kafkabus.ReasonOutcomeUnknown, err)
		}
		return h.schedule(ctx, d, d.attempts+1, err)
	case crm.IsPermanent(err):
		return h.deadLetter(ctx, d, d.attempts+1, kafkabus.ReasonCRMRejected, err)
	case d.attempts+1 >= h.Policy.MaxAttempts:
		return h.deadLetter(ctx, d, d.attempts+1, kafkabus.ReasonRetriesExhausted, err)
	default:
		return h.schedule(ctx, d, d.attempts+1, err)
	}
}

// Defer is the overflow handler: a tenant whose lanes are full (its CRM is slow or
// rate-limited) has further messages moved to the retry topic rather than stalling
// every other tenant. It costs no attempt, but each deferral of a message waits longer
// (the retry policy's delays), so a tenant that stays saturated is not a hot loop.
// The deferral is a consumer span of the message's trace, which the deferred copy keeps.
func (h *Handlers) Defer(ctx context.Context, m kafka.Message) error {
	return telemetry.Consume(h.deferMessage)(ctx, m)
}

func (h *Handlers) deferMessage(ctx context.Context, m kafka.Message) error {
	d := &delivery{m: m, kind: m.Topic, tenant: kafkabus.Header(m, kafkabus.HeaderTenant), callID: kafkabus.Header(m, kafkabus.HeaderCallID)}
	if m.Topic == h.Topics.Retry {
		d.kind, d.fromRetry = kafkabus.Header(m, kafkabus.HeaderOrigTopic), true
	}
	d.attempts, _ = strconv.Atoi(kafkabus.Header(m, kafkabus.HeaderAttempts))
	n, _ := strconv.Atoi(kafkabus.Header(m, kafkabus.HeaderDeferrals))
	n = max(n, 0) + 1
	due := time.Now().Add(h.Policy.Delay(n)).UTC()
	out := h.routed(d, h.Topics.Retry, max(d.attempts, 0), errors.New("deferred: tenant's writer lanes are full"),
		kafka.Header{Key: kafkabus.HeaderDueAt, Value: []byte(due.Format(time.RFC3339Nano))},
		kafka.Header{Key: kafkabus.HeaderDeferrals, Value: []byte(strconv.Itoa(n))})
	if err := h.Publisher.Publish(ctx, out); err != nil {
		return fmt.Errorf("%w: %w", callwriter.ErrInfra, err)
	}
	h.count(d, OutcomeDeferred)
	return nil
}

// schedule hands the message to the retry topic with its next due time.
func (h *Handlers) schedule(ctx context.Context, d *delivery, attempts int, cause error) error {
	return h.scheduleAt(ctx, d, attempts, cause, h.Policy.Delay(max(attempts, 1)))
}

func (h *Handlers) scheduleAt(ctx context.Context, d *delivery, attempts int, cause error, wait time.Duration) error {
	due := time.Now().Add(wait).UTC()
	out := h.routed(d, h.Topics.Retry, attempts, cause, kafka.Header{Key: kafkabus.HeaderDueAt, Value: []byte(due.Format(time.RFC3339Nano))})
	if err := h.Publisher.Publish(ctx, out); err != nil {
		return fmt.Errorf("%w: %w", callwriter.ErrInfra, err)
	}
	h.count(d, OutcomeRetry)
	if d.kind == h.Topics.Log {
		h.trace(ctx, d, trace.Update{Stage: trace.Stage{Stage: trace.StatusRetrying, Kind: trace.KindLog,
			Detail: fmt.Sprintf("attempt %d failed: %v; next at %s", attempts, cause, due.Format(time.RFC3339))}, Status: trace.StatusRetrying})
	}
	h.log(ctx).Warn().Err(cause).Str("tenant", d.tenant).Str("call_id", d.callID).Int("attempts", attempts).Time("due", due).Msg("write failed; retry scheduled")
	return nil
}

// deadLetter hands the message to the DLQ with the reason.
func (h *Handlers) deadLetter(ctx context.Context, d *delivery, attempts int, reason string, cause error) error {
	out := h.routed(d, h.Topics.DLQ, attempts, cause, kafka.Header{Key: kafkabus.HeaderReason, Value: []byte(reason)})
	if err := h.Publisher.Publish(ctx, out); err != nil {
		return fmt.Errorf("%w: %w", callwriter.ErrInfra, err)
	}
	h.count(d, OutcomeDeadLettered)
	if d.kind == h.Topics.Log {
		h.trace(ctx, d, trace.Update{Stage: trace.Stage{Stage: trace.StatusDeadLettered, Kind: trace.KindLog, Detail: reason + ": " + cause.Error()},
			Status: trace.StatusDeadLettered})
	}
	h.log(ctx).Error().Err(cause).Str("tenant", d.tenant).Str("call_id", d.callID).Str("reason", reason).Int("attempts", attempts).Msg("write dead-lettered")
	return nil
}

// routed builds the message for the retry or dead-letter topic. The first routing
// records where the message came from; later ones keep that.
func (h *Handlers) routed(d *delivery, topic string, attempts int, cause error, extra ...kafka.Header) kafka.Message {
	m := d.m
	origPart, origOff := strconv.Itoa(m.Partition), strconv.FormatInt(m.Offset, 10)
	if m.Topic == h.Topics.Retry || m.Topic == h.Topics.DLQ {
		origPart, origOff = kafkabus.Header(m, kafkabus.HeaderOrigPart), kafkabus.Header(m, kafkabus.HeaderOrigOff)
	}
	set := append([]kafka.Header{
		{Key: kafkabus.HeaderOrigTopic, Value: []byte(d.kind)},
		{Key: kafkabus.HeaderOrigPart, Value: []byte(origPart)},
		{Key: kafkabus.HeaderOrigOff, Value: []byte(origOff)},
		{Key: kafkabus.HeaderAttempts, Value: []byte(strconv.Itoa(attempts))},
		{Key: kafkabus.HeaderError, Value: []byte(cause.Error())},
		{Key: kafkabus.HeaderStatus, Value: []byte(strconv.Itoa(crm.HTTPStatus(cause)))},
	}, extra...)
	hs := kafkabus.WithHeaders(m, set...)
	if topic == h.Topics.DLQ {
		hs = without(hs, kafkabus.HeaderDueAt)
	}
	return kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: hs}
}

// log is the handlers' logger with the trace id of ctx's span.
func (h *Handlers) log(ctx context.Context) *zerolog.Logger {
	l := telemetry.Log(ctx, h.Log.With()).Logger()
	return &l
}

func (h *Handlers) count(d *delivery, outcome string) {
	if h.Metrics == nil {
		return
	}
	kind := trace.KindLog
	if d.kind == h.Topics.Recording {
		kind = trace.KindRecording
	}
	h.Metrics.WriterOutcomes.WithLabelValues(d.tenant, kind, outcome).Inc()
}

func (h *Handlers) trace(ctx context.Context, d *delivery, u trace.Update) {
	if h.Trace != nil && d.tenant != "" && d.callID != "" {
		_ = h.Trace.Record(context.WithoutCancel(ctx), d.tenant, d.callID, u)
	}
}

func without(hs []kafka.Header, key string) []kafka.Header {
	out := hs[:0:0]
	for _, h := range hs {
		if h.Key != key {
			out = append(out, h)
		}
	}
	return out
}
