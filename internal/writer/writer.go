// Package writer consumes call events from Kafka and writes them to each tenant's CRM,
// attributed to the mapped owner, once as seen from the CRM: at-least-once delivery
// plus Redis idempotency keys. Failures are retried a bounded time in place, then
// routed to the retry topic (transient) or the dead-letter topic (permanent), and only
// then committed.
package writer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callpolicy"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/idempotency"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/ratelimit"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
)

// Publisher is what the writer needs of Kafka (retry and dead-letter routing).
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// AdapterFactory returns the CRM adapter of a tenant.
type AdapterFactory func(t *tenant.Tenant) (crm.Adapter, error)

// RecordingLinker turns a recording into the link written to the CRM.
type RecordingLinker func(tenant, callID string, rec call.Recording) string

// RawRecordingURL is the default linker: MyOperator's own URL.
func RawRecordingURL(_, _ string, rec call.Recording) string { return rec.URL }

// RetryPolicy bounds how hard a write is tried.
type RetryPolicy struct {
	InPlace     int           // attempts before leaving the partition's stream (>= 1)
	InPlaceWait time.Duration // first wait between in-place attempts
	MaxAttempts int           // attempts through the retry topic before the DLQ
	Base        time.Duration // first retry-topic delay
	Cap         time.Duration // largest retry-topic delay
}

// DefaultRetryPolicy carries a call through 30% transient failures: 3 quick attempts,
// then up to 10 scheduled ones (1 s doubling, capped at 2 min, ±50% jitter).
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{InPlace: 3, InPlaceWait: 100 * time.Millisecond, MaxAttempts: 10, Base: time.Second, Cap: 2 * time.Minute}
}

// Delay is the wait before retry-topic attempt n (1-based), with jitter.
func (p RetryPolicy) Delay(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Cap; i++ {
		d *= 2
	}
	d = min(d, p.Cap)
	return d/2 + time.Duration(rand.Int64N(int64(d)+1)) // 0.5d .. 1.5d
}

// Writer handles call-log, recording and retry messages.
type Writer struct {
	Tenants   *tenant.Registry
	Adapters  AdapterFactory
	Mappings  *mapping.Store
	Idem      *idempotency.Store
	Trace     *trace.Store
	Redis     redis.UniversalClient
	Prefix    string
	Publisher Publisher
	Topics    kafkabus.Topics
	Retry     RetryPolicy
	Link      RecordingLinker
	// Limiter returns the tenant's shared CRM rate limiter (to pause it on a 429); may be nil.
	Limiter func(*tenant.Tenant) *ratelimit.Limiter
	// FollowUps creates the follow-up tasks of call policies (log_and_task); nil: none.
	FollowUps *callpolicy.FollowUps
	Metrics   *metrics.Metrics
	Log       zerolog.Logger

	mu       sync.Mutex
	adapters map[string]crm.Adapter
	breakers map[string]*breaker
}

// outcome of one write attempt.
type outcome int

const (
	done outcome = iota
	parked
	duplicate
	skipped
)

// Handle is the kafkabus.Handler for the call-log and recording topics.
func (w *Writer) Handle(ctx context.Context, m kafka.Message) error {
	return w.handle(ctx, m, m.Topic, 0)
}

// HandleRetry is the kafkabus.Handler for the retry topic. The consumer holds each
// message until its due time (kafkabus.ConcurrentConfig.DueAt); one attempt is made.
func (w *Writer) HandleRetry(ctx context.Context, m kafka.Message) error {
	attempts, _ := strconv.Atoi(kafkabus.Header(m, kafkabus.HeaderAttempts))
	return w.handle(ctx, m, kafkabus.Header(m, kafkabus.HeaderOrigTopic), max(attempts, 0))
}

// DueAt is when a retry-topic message is due.
func DueAt(m kafka.Message) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, kafkabus.Header(m, kafkabus.HeaderDueAt))
	return t
}

// Defer is the overflow handler: a tenant whose lanes are full (its CRM is slow or
// rate-limited) has further messages moved to the retry topic, due shortly, rather than
// stalling every other tenant. It costs no attempt.
func (w *Writer) Defer(ctx context.Context, m kafka.Message) error {
	kind := m.Topic
	if m.Topic == w.Topics.Retry {
		kind = kafkabus.Header(m, kafkabus.HeaderOrigTopic)
	}
	attempts, _ := strconv.Atoi(kafkabus.Header(m, kafkabus.HeaderAttempts))
	due := time.Now().Add(w.Retry.Delay(1)).UTC()
	out := kafka.Message{Topic: w.Topics.Retry, Key: m.Key, Value: m.Value, Headers: kafkabus.WithHeaders(m,
		w.routingHeaders(m, kind, attempts, errors.New("deferred: tenant's writer lanes are full"),
			kafka.Header{Key: kafkabus.HeaderDueAt, Value: []byte(due.Format(time.RFC3339Nano))})...)}
	if err := w.Publisher.Publish(ctx, out); err != nil {
		return infraError{err}
	}
	w.Metrics.WriterOutcomes.WithLabelValues(kafkabus.Header(m, kafkabus.HeaderTenant), kindLabel(w.Topics, kind), "deferred").Inc()
	return nil
}

func (w *Writer) handle(ctx context.Context, m kafka.Message, kind string, attempts int) error {
	tenantID, callID := kafkabus.Header(m, kafkabus.HeaderTenant), kafkabus.Header(m, kafkabus.HeaderCallID)
	log := w.Log.With().Str("tenant", tenantID).Str("call_id", callID).Str("kafka_msg", kafkabus.Describe(m)).Logger()
	var write func(context.Context) (outcome, error)
	label := "log"
	switch kind {
	case w.Topics.Log:
		var l call.Log
		if err := json.Unmarshal(m.Value, &l); err != nil || l.Validate() != nil {
			return w.deadLetter(ctx, m, kind, attempts, "undecodable", fmt.Errorf("call log: %w", errors.Join(err, validate(&l))), log)
		}
		tenantID, callID = l.Tenant, l.CallID
		write = func(ctx context.Context) (outcome, error) { return w.writeLog(ctx, &l, log) }
	case w.Topics.Recording:
		label = "recording"
		var r call.RecordingEvent
		if err := json.Unmarshal(m.Value, &r); err != nil || r.Tenant == "" || r.CallID == "" {
			return w.deadLetter(ctx, m, kind, attempts, "undecodable", fmt.Errorf("recording event: %w", errors.Join(err, errors.New("tenant and call_id are required"))), log)
		}
		tenantID, callID = r.Tenant, r.CallID
		write = func(ctx context.Context) (outcome, error) { return done, w.writeRecording(ctx, &r, log) }
	default:
		return w.deadLetter(ctx, m, kind, attempts, "unknown_topic", fmt.Errorf("no writer for topic %q", kind), log)
	}
	if _, ok := w.Tenants.Get(tenantID); !ok {
		return w.deadLetter(ctx, m, kind, attempts, "unknown_tenant", fmt.Errorf("tenant %q is not configured", tenantID), log)
	}

	t, _ := w.Tenants.Get(tenantID)
	fromRetry := m.Topic == w.Topics.Retry
	br := w.breaker(tenantID)
	if !fromRetry && br.open() {
		// The tenant's CRM keeps failing: do not spend the lane on it, schedule it.
		return w.scheduleRetry(ctx, m, kind, attempts, errors.New("CRM failing: circuit open"), log)
	}
	// A bounded in-place retry absorbs blips without leaving the partition's order; a
	// message from the retry topic gets one attempt per due time.
	tries := max(1, w.Retry.InPlace)
	if fromRetry {
		tries = 1
	}
	var res outcome
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = w.Retry.InPlaceWait
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		var err error
		res, err = write(ctx)
		if err == nil || isInfra(err) {
			return struct{}{}, err
		}
		if crm.IsPermanent(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		if _, ok := errors.AsType[*crm.Error](err); ok {
			br.failure() // the CRM failed (not, say, a record still being created)
		}
		if ra := crm.RetryAfter(err); ra > 0 || crm.HTTPStatus(err) == http.StatusTooManyRequests {
			// Every replica holds off this credential, not just this lane.
			w.pause(ctx, t, max(ra, time.Second))
			if ra > 2*time.Second {
				return struct{}{}, backoff.Permanent(err) // long wait: schedule instead
			}
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bo), backoff.WithMaxTries(uint(tries)), backoff.WithMaxElapsedTime(30*time.Second))
	var perr *backoff.PermanentError
	if errors.As(err, &perr) {
		err = perr.Err
	}
	if err == nil {
		br.success()
	}
	switch {
	case err == nil:
		o := map[outcome]string{done: "written", parked: "unattributed", duplicate: "duplicate", skipped: "skipped"}[res]
		w.Metrics.WriterOutcomes.WithLabelValues(tenantID, label, o).Inc()
		return nil
	case isInfra(err):
		// Redis or the like is down: not the write's fault. Do not route, do not commit.
		return err
	case crm.IsPermanent(err):
		return w.deadLetter(ctx, m, kind, attempts+1, "crm_rejected", err, log)
	case attempts+1 >= w.Retry.MaxAttempts:
		return w.deadLetter(ctx, m, kind, attempts+1, "retries_exhausted", err, log)
	default:
		return w.scheduleRetry(ctx, m, kind, attempts+1, err, log)
	}
}

// pause holds the tenant's CRM credential for every replica (a 429's Retry-After).
func (w *Writer) pause(ctx context.Context, t *tenant.Tenant, d time.Duration) {
	if w.Limiter == nil || t == nil {
		return
	}
	if l := w.Limiter(t); l != nil {
		if err := l.Pause(ctx, d); err != nil {
			w.Log.Warn().Err(err).Str("tenant", t.ID).Msg("rate-limit pause not shared")
		}
	}
}

func validate(l *call.Log) error { return l.Validate() }

// infraError marks failures of calltrack's own dependencies.
type infraError struct{ err error }

func (e infraError) Error() string { return e.err.Error() }
func (e infraError) Unwrap() error { return e.err }

func isInfra(err error) bool {
	var ie infraError
	return errors.As(err, &ie)
}

func (w *Writer) adapter(t *tenant.Tenant) (crm.Adapter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if a, ok := w.adapters[t.ID]; ok {
		return a, nil
	}
	a, err := w.Adapters(t)
	if err != nil {
		return nil, &crm.Error{Op: "crm adapter for " + t.ID, Permanent: true, Err: err}
	}
	if w.adapters == nil {
		w.adapters = map[string]crm.Adapter{}
	}
	w.adapters[t.ID] = a
	return a, nil
}

func logKey(tenant, callID string) string { return "crm:" + tenant + ":" + callID + ":log" }

// writeLog creates the call's CRM record once, or parks the call when nobody owns it yet.
func (w *Writer) writeLog(ctx context.Context, l *call.Log, log zerolog.Logger) (outcome, error) {
	t, _ := w.Tenants.Get(l.Tenant)
	if l.Owner == nil {
		// The mapping may have appeared since ingest.
		owner, err := w.Mappings.Owner(ctx, t.ID, "", l.Agent)
		if err != nil {
			return done, infraError{err}
		}
		if owner == nil {
			owner = t.FallbackOwnerOf(l) // the department's owner, else the tenant's fallback_owner
		}
		l.Owner = owner
	}
	if d := callpolicy.Decide(t.Calls, l); d.Skip() {
		// The tenant's policy writes nothing for such calls; not parked either.
		_ = w.unpark(ctx, l.Tenant, l.CallID)
		_ = w.Trace.Record(ctx, l.Tenant, l.CallID, trace.Update{Stage: trace.Stage{Stage: callpolicy.StageSkipped, Kind: "log",
			Detail: d.Reason}, Status: callpolicy.StatusSkipped})
		log.Info().Str("reason", d.Reason).Msg("call skipped by the tenant's policy")
		return skipped, nil
	}
	if l.Owner == nil {
		if err := w.park(ctx, l); err != nil {
			return done, infraError{err}
		}
		_ = w.Trace.Record(ctx, l.Tenant, l.CallID, trace.Update{Stage: trace.Stage{Stage: trace.StatusUnattributed, Kind: "log",
			Detail: "no mapping for the agent and no fallback owner"}, Status: trace.StatusUnattributed})
		log.Info().Msg("call kept unattributed")
		return parked, nil
	}
	a, err := w.adapter(t)
	if err != nil {
		return done, err
	}
	recordID, ran, err := w.Idem.Exec(ctx, logKey(l.Tenant, l.CallID), func(ctx context.Context) (string, error) {
		if pending, err := w.pending(ctx, l.Tenant, l.CallID); err == nil && pending != nil {
			amend(l, pending)
		}
		return a.CreateCall(ctx, w.crmCall(l))
	})
	if errors.Is(err, idempotency.ErrInProgress) {
		return done, fmt.Errorf("call log %s is being written by another worker: %w", l.CallID, err)
	}
	if err != nil {
		var ce *crm.Error
		if !errors.As(err, &ce) {
			return done, infraError{err}
		}
		log.Warn().Err(err).Msg("CRM write failed")
		return done, err
	}
	if !ran {
		// The written state may be missing if the process that wrote the record could not
		// keep it (Redis failed just then): this version of the call restores it.
		if prev, err := w.loadWritten(ctx, l.Tenant, l.CallID); err != nil {
			return done, infraError{err}
		} else if prev == nil {
			if err := w.saveWritten(ctx, l); err != nil {
				return done, infraError{err}
			}
		}
		// A later version of the call (e.g. a disposition webhook, or v2's summary after
		// v1's afterCall) may carry what the record lacks: amend, never create again.
		am := &call.RecordingEvent{Tenant: l.Tenant, CallID: l.CallID, Disposition: l.Disposition}
		if !l.Recording.Empty() {
			am.Recording = *l.Recording
		}
		if err := w.writeRecording(ctx, am, log); err != nil {
			return done, err
		}
		_ = w.Trace.Record(ctx, l.Tenant, l.CallID, trace.Update{Stage: trace.Stage{Stage: "already_written", Kind: "log",
			Detail: "redelivered or replayed; record " + recordID + " kept"}})
		log.Info().Str("record_id", recordID).Msg("call log already written; redelivery ignored")
		// Its follow-up task may be what an earlier delivery could not finish.
		written := l
		if prev, err := w.loadWritten(ctx, l.Tenant, l.CallID); err == nil && prev != nil {
			written = prev
		}
		if err := w.followUp(ctx, t, written); err != nil {
			return done, err
		}
		return duplicate, nil
	}
	if err := w.saveWritten(ctx, l); err != nil {
		// Not committed: the redelivery finds the record done and keeps its state then.
		return done, infraError{fmt.Errorf("record %s written but its state not kept: %w", recordID, err)}
	}
	// An amendment that was kept just as the record was being created is applied now.
	if pending, err := w.pending(ctx, l.Tenant, l.CallID); err == nil && pending != nil {
		if err := w.writeRecording(ctx, pending, log); err != nil {
			return done, err
		}
		_ = w.Redis.Del(ctx, w.key("pending-amendment", l.Tenant, l.CallID)).Err()
	}
	_ = w.unpark(ctx, l.Tenant, l.CallID)
	detail := "record " + recordID
	if note := l.FallbackNote(); note != "" {
		detail += "; owned by " + note + " (owner source " + l.Owner.Source + ")"
	}
	_ = w.Trace.Record(ctx, l.Tenant, l.CallID, trace.Update{Stage: trace.Stage{Stage: trace.StatusWritten, Kind: "log", Detail: detail},
		Status: trace.StatusWritten, OwnerID: l.Owner.CRMUserID, RecordID: recordID})
	log.Info().Str("record_id", recordID).Str("owner", l.Owner.CRMUserID).Str("owner_source", l.Owner.Source).Msg("call log written")
	return done, w.followUp(ctx, t, l)
}

// followUp creates the written call's follow-up task once, when its tenant's policy
// says log_and_task (callpolicy.FollowUps). A failure fails the delivery, whose
// redelivery finds the record written and tries the task again.
func (w *Writer) followUp(ctx context.Context, t *tenant.Tenant, l *call.Log) error {
	if w.FollowUps == nil || !callpolicy.Wanted(t, l) {
		return nil
	}
	_, err := w.FollowUps.Ensure(ctx, t, l)
	if err != nil && !errors.As(err, new(*crm.Error)) && !errors.Is(err, callpolicy.ErrTaskOutcomeUnknown) && !errors.Is(err, callpolicy.ErrBusy) {
		return infraError{err} // the task state store (Redis) failed
	}
	return err
}

func (w *Writer) crmCall(l *call.Log) crm.Call {
	c := crm.Call{Log: *l, OwnerID: l.Owner.CRMUserID}
	if !l.Recording.Empty() {
		link := w.Link
		if link == nil {
			link = RawRecordingURL
		}
		c.RecordingURL = link(l.Tenant, l.CallID, *l.Recording)
	}
	return c
}

// writeRecording amends the call's record with a recording and/or disposition, or keeps
// the amendment for the record's creation when the call log is not written yet.
func (w *Writer) writeRecording(ctx context.Context, r *call.RecordingEvent, log zerolog.Logger) error {
	if r.Recording.Empty() && r.Disposition == "" {
		return nil
	}
	recordID, written, err := w.Idem.Done(ctx, logKey(r.Tenant, r.CallID))
	if errors.Is(err, idempotency.ErrInProgress) {
		// The record is being created right now: try again once it exists, rather than
		// keep an amendment its creation may already have passed by.
		return fmt.Errorf("call log %s is being written: %w", r.CallID, err)
	}
	if err != nil {
		return infraError{err}
	}
	if !written {
		if err := w.keepPending(ctx, r); err != nil {
			return infraError{err}
		}
		log.Info().Msg("amendment kept until the call log is written")
		return nil
	}
	l, err := w.loadWritten(ctx, r.Tenant, r.CallID)
	if err != nil {
		return infraError{err}
	}
	if l == nil || l.Owner == nil {
		// Written, but its state is not (yet) kept: retried, and dead-lettered in the end
		// rather than dropped.
		return fmt.Errorf("call log %s written as record %s but its state is missing: amendment not applied yet", r.CallID, recordID)
	}
	if !amend(l, r) {
		return nil // the record has it already
	}
	t, _ := w.Tenants.Get(r.Tenant)
	a, err := w.adapter(t)
	if err != nil {
		return err
	}
	if err := a.UpdateCall(ctx, recordID, w.crmCall(l)); err != nil {
		return err
	}
	if err := w.saveWritten(ctx, l); err != nil {
		return infraError{err}
	}
	stage := "recording_attached"
	if r.Recording.Empty() {
		stage = "disposition_added"
	}
	_ = w.Trace.Record(ctx, r.Tenant, r.CallID, trace.Update{Stage: trace.Stage{Stage: stage, Kind: "recording", Detail: "record " + recordID}})
	log.Info().Str("record_id", recordID).Str("stage", stage).Msg("call record amended")
	return nil
}

// amend applies r to l and reports whether anything changed.
func amend(l *call.Log, r *call.RecordingEvent) bool {
	changed := false
	if !r.Recording.Empty() && (l.Recording.Empty() || *l.Recording != r.Recording) {
		rec := r.Recording
		l.Recording, changed = &rec, true
	}
	if r.Disposition != "" && l.Disposition != r.Disposition {
		l.Disposition, changed = r.Disposition, true
	}
	return changed
}

// scheduleRetry hands the message to the retry topic with its next due time.
func (w *Writer) scheduleRetry(ctx context.Context, m kafka.Message, kind string, attempts int, cause error, log zerolog.Logger) error {
	due := time.Now().Add(w.Retry.Delay(attempts)).UTC()
	out := kafka.Message{Topic: w.Topics.Retry, Key: m.Key, Value: m.Value, Headers: kafkabus.WithHeaders(m, w.routingHeaders(m, kind, attempts, cause,
		kafka.Header{Key: kafkabus.HeaderDueAt, Value: []byte(due.Format(time.RFC3339Nano))})...)}
	if err := w.Publisher.Publish(ctx, out); err != nil {
		return infraError{err}
	}
	w.Metrics.WriterOutcomes.WithLabelValues(kafkabus.Header(m, kafkabus.HeaderTenant), kindLabel(w.Topics, kind), "retry").Inc()
	if kind == w.Topics.Log {
		_ = w.Trace.Record(ctx, kafkabus.Header(m, kafkabus.HeaderTenant), kafkabus.Header(m, kafkabus.HeaderCallID), trace.Update{
			Stage: trace.Stage{Stage: trace.StatusRetrying, Kind: "log", Detail: fmt.Sprintf("attempt %d failed: %v; next at %s", attempts, cause, due.Format(time.RFC3339))}, Status: trace.StatusRetrying})
	}
	log.Warn().Err(cause).Int("attempts", attempts).Time("due", due).Msg("write failed; retry scheduled")
	return nil
}

// deadLetter hands the message to the DLQ with the reason.
func (w *Writer) deadLetter(ctx context.Context, m kafka.Message, kind string, attempts int, reason string, cause error, log zerolog.Logger) error {
	out := kafka.Message{Topic: w.Topics.DLQ, Key: m.Key, Value: m.Value, Headers: withoutHeader(kafkabus.WithHeaders(m, w.routingHeaders(m, kind, attempts, cause,
		kafka.Header{Key: kafkabus.HeaderReason, Value: []byte(reason)})...), kafkabus.HeaderDueAt)}
	if err := w.Publisher.Publish(ctx, out); err != nil {
		return infraError{err}
	}
	tenantID := kafkabus.Header(m, kafkabus.HeaderTenant)
	w.Metrics.WriterOutcomes.WithLabelValues(tenantID, kindLabel(w.Topics, kind), "dead_lettered").Inc()
	if kind == w.Topics.Log {
		_ = w.Trace.Record(ctx, tenantID, kafkabus.Header(m, kafkabus.HeaderCallID), trace.Update{
			Stage: trace.Stage{Stage: trace.StatusDeadLettered, Kind: "log", Detail: reason + ": " + cause.Error()}, Status: trace.StatusDeadLettered})
	}
	log.Error().Err(cause).Str("reason", reason).Int("attempts", attempts).Msg("write dead-lettered")
	return nil
}

func (w *Writer) routingHeaders(m kafka.Message, kind string, attempts int, cause error, extra ...kafka.Header) []kafka.Header {
	// The first routing keeps where the message came from; later ones keep that.
	origTopic, origPart, origOff := kind, strconv.Itoa(m.Partition), strconv.FormatInt(m.Offset, 10)
	if m.Topic == w.Topics.Retry || m.Topic == w.Topics.DLQ {
		origPart, origOff = kafkabus.Header(m, kafkabus.HeaderOrigPart), kafkabus.Header(m, kafkabus.HeaderOrigOff)
	}
	h := []kafka.Header{
		{Key: kafkabus.HeaderOrigTopic, Value: []byte(origTopic)},
		{Key: kafkabus.HeaderOrigPart, Value: []byte(origPart)},
		{Key: kafkabus.HeaderOrigOff, Value: []byte(origOff)},
		{Key: kafkabus.HeaderAttempts, Value: []byte(strconv.Itoa(attempts))},
		{Key: kafkabus.HeaderError, Value: []byte(cause.Error())},
		{Key: kafkabus.HeaderStatus, Value: []byte(strconv.Itoa(crm.HTTPStatus(cause)))},
	}
	return append(h, extra...)
}

func kindLabel(t kafkabus.Topics, topic string) string {
	if topic == t.Recording {
		return "recording"
	}
	return "log"
}

func withoutHeader(hs []kafka.Header, key string) []kafka.Header {
	out := hs[:0:0]
	for _, h := range hs {
		if h.Key != key {
			out = append(out, h)
		}
	}
	return out
}
