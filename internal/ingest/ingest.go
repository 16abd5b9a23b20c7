// Package ingest receives MyOperator webhooks: it authenticates the tenant, parses and
// normalises the payload, resolves the owner from the mapping cache, and publishes the
// call's events to Kafka — answering 2xx only once Kafka acknowledged them, or once
// they are fsync'd in the local spool when Kafka cannot take them in time. It never
// calls a CRM, and it does not need Redis to accept a call: without it the call goes
// out with its owner unresolved (the writer resolves it), undeduplicated and untraced.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/idempotency"
	"github.com/calltrack/calltrack/internal/jsonwire"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/internal/redisbatch"
	"github.com/calltrack/calltrack/internal/redisscript"
	"github.com/calltrack/calltrack/internal/spool"
	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

// Publisher is what ingest needs of Kafka: the events acknowledged by Kafka, or kept
// in the local spool (spooled) until Kafka takes them (spool.Publisher).
type Publisher interface {
	Deliver(ctx context.Context, msgs ...kafka.Message) (spooled bool, err error)
}

// DedupeTTL is how long a delivered webhook is recognised when it comes again
// (MyOperator v1 retries within minutes; v2 for up to 24 h).
const DedupeTTL = 48 * time.Hour

// Handler serves the webhook endpoints.
type Handler struct {
	Tenants   *tenant.Registry
	Redis     redis.UniversalClient // for the pipelined round trips of the stores below
	Mappings  *mapping.Store
	Publisher Publisher
	Topics    kafkabus.Topics
	Dedupe    *idempotency.Store
	Trace     *trace.Store
	Metrics   *metrics.Metrics
	Log       zerolog.Logger
	Now       func() time.Time
	// RedisBudget bounds the Redis work of one webhook (owner lookup, dedupe, trace), so
	// a dead or hanging Redis does not stall answers; DefaultRedisBudget when zero.
	RedisBudget time.Duration
	// MappingsReady, when set and false, means the mappings are being restored (Redis
	// lost them): calls go out with the owner unresolved rather than unattributed.
	MappingsReady func() bool
	// After, when set, writes an accepted webhook's dedupe finish and trace stages in
	// the background, many webhooks' in one pipeline: the answer waits for one Redis
	// round trip instead of two. Nil: they are written before the answer.
	After *redisbatch.Batcher
	// AfterIndex, when set, collects the trace index entries of the writes queued in
	// After, for After's Finish to add in one command (trace.IndexBatch): only After's
	// goroutine touches it.
	AfterIndex *trace.IndexBatch
	// Before, when set, sends a webhook's first round trip (claim and lookups) with
	// the other webhooks' waiting at that moment, in one pipeline. Nil: each its own.
	Before *redisbatch.Batcher

	redis redisGate
}

// Register mounts the webhook routes.
func (h *Handler) Register(e *echo.Echo) {
	for _, kind := range []string{"incall", "aftercall"} {
		kind := kind
		fn := h.serve(kind, h.Authenticate, func(c echo.Context, r *request) error { return h.webhook(c, r, kind) })
		e.POST(web.MyOperatorWebhooks+":tenant/"+kind, fn)
		e.GET(web.MyOperatorWebhooks+":tenant/"+kind, fn) // legacy GET delivery
	}
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

// Authenticate finds the tenant of a webhook request from its secret: ?token=,
// X-Calltrack-Token, or the HTTP Basic password.
func (h *Handler) Authenticate(c echo.Context) (*tenant.Tenant, error) {
	secret := c.QueryParam("token")
	if secret == "" {
		secret = c.Request().Header.Get("X-Calltrack-Token")
	}
	if secret == "" {
		if _, pw, ok := c.Request().BasicAuth(); ok {
			secret = pw
		}
	}
	t, err := h.Tenants.Authenticate(c.Param("tenant"), secret)
	if err != nil {
		return nil, web.Errorf(http.StatusUnauthorized, "unauthorized", "unknown tenant or wrong webhook token")
	}
	return t, nil
}

// request is one webhook delivery on its way through ingest.
type request struct {
	t       *tenant.Tenant
	body    []byte
	log     zerolog.Logger
	start   time.Time
	outcome string // the metric outcome, set as the delivery is decided
}

// serve wraps a webhook handler with what every webhook kind shares: tenant
// authentication, the body (1 MiB at most), metrics and a request-scoped logger.
func (h *Handler) serve(kind string, auth func(echo.Context) (*tenant.Tenant, error), fn func(echo.Context, *request) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := &request{start: time.Now(), outcome: "error"}
		defer func() {
			h.Metrics.Webhooks.WithLabelValues(tenantLabel(h.Tenants, c.Param("tenant")), kind, r.outcome).Inc()
			h.Metrics.WebhookLatency.WithLabelValues(kind).Observe(time.Since(r.start).Seconds())
		}()
		t, err := auth(c)
		if err != nil {
			r.outcome = "unauthorized"
			return err
		}
		r.t = t
		// With tracing on, the webhook's lines carry its trace and span ids.
		r.log = telemetry.Log(c.Request().Context(), h.Log.With().Str("tenant", t.ID).Str("kind", kind).
			Str("request_id", c.Response().Header().Get(echo.HeaderXRequestID))).Logger()
		if r.body, err = readBody(c); err != nil {
			r.outcome = bodyOutcome(err)
			if errors.Is(err, errTooLarge) {
				// Refused, and kept as every refused payload is: its head.
				msg := fmt.Sprintf("request body is larger than 1 MiB; the rejected topic keeps its first %d bytes", len(r.body))
				if kerr := h.keepRejected(c.Request().Context(), c, r, t.ID, kind, r.body, reasonTooLarge, msg); kerr != nil {
					return kerr
				}
				r.log.Info().Int64("content_length", c.Request().ContentLength).Msg("webhook over 1 MiB refused; its head kept")
			}
			return err
		}
		return fn(c, r)
	}
}

func (h *Handler) webhook(c echo.Context, r *request, kind string) error {
	t, body, log := r.t, r.body, r.log
	ctx := c.Request().Context()

	raw, err := myoperator.ExtractJSON(c.Request().Header.Get(echo.HeaderContentType), body, c.QueryParams())
	var d delivery
	var logID, hash string
	if err == nil {
		// Parsed before the company check (parsing has no effect), so the payload is
		// decoded once: the company id comes from the parse.
		receivedAt := h.now()
		var l *call.Log
		var lv *call.Live
		company := ""
		if kind == "aftercall" {
			if l, err = myoperator.ParseAfterCall(t.ID, raw, receivedAt); err == nil {
				company = l.CompanyID
			}
		} else if lv, err = myoperator.ParseInCall(t.ID, raw, receivedAt); err == nil {
			company = lv.CompanyID
		}
		if t.CompanyID != "" && company == "" {
			company = myoperator.CompanyID(raw) // unparseable, or the other kind's key
		}
		if !t.AcceptsCompany(company) {
			return h.refuseCompany(ctx, c, r, t, kind, body, company)
		}
		switch {
		case l != nil:
			logID, hash = l.LogID, logHash(l)
			d = h.afterCall(t, l, r)
			d.trace.LogID = l.LogID
		case lv != nil:
			d = h.inCall(t, lv)
			d.trace.Stage.Detail = string(lv.State)
		}
		if errors.Is(err, myoperator.ErrIgnored) {
			// Well formed, but nothing to act on (an inCall state of no known meaning):
			// no event, no pop-up; answered 200 so MyOperator does not retry it.
			r.outcome = "ignored"
			msg := strings.TrimPrefix(err.Error(), myoperator.ErrIgnored.Error()+": ")
			log.Info().Str("reason", msg).Msg("webhook ignored")
			return c.JSON(http.StatusOK, map[string]any{"status": "ignored", "tenant": t.ID, "reason": msg})
		}
	}
	if err != nil {
		r.outcome = "rejected"
		return h.reject(ctx, c, r, t.ID, kind, body, err, log)
	}
	// In place: With would copy the request's logger into a new 500-byte buffer, a
	// webhook's second (heap profile).
	r.log.UpdateContext(func(c zerolog.Context) zerolog.Context {
		c = c.Str("call_id", d.callID)
		if logID != "" {
			c = c.Str("log_id", logID)
		}
		return c
	})

	// A redelivery of the same payload (in whatever encoding) yields no second event.
	if hash == "" {
		hash = payloadHash(raw)
	}
	d.dedupeKey = "webhook:" + t.ID + ":" + kind + ":" + hash
	d.answer = answer{Status: "accepted", Tenant: t.ID, CallID: d.callID}
	return h.deliver(c, r, d)
}

// delivery is one webhook's work once parsed: the agents to look up, the events built
// from the answers, and how it is traced.
type delivery struct {
	dedupeKey string
	callID    string
	lookups   []*lookup
	// build makes the events once the lookups are answered.
	build       func() ([]kafka.Message, error)
	trace       *trace.Update // the stages' template (kind, detail, agent); nil: not traced
	traceKind   string        // for the duplicate stage; "" for none
	detail      string        // for the duplicate stage
	statusStage bool          // the stages set the call's status (call logs)
	// stages, when set, replaces the received + published/spooled stages.
	stages func(spooled bool) []trace.Update
	// more are stages recorded after those once the events were taken (a click-to-call's reference).
	more   []trace.Update
	answer answer
}

// answer is the 200 body of a delivered webhook (a struct: Echo encoding a map, keys
// sorted by reflection, cost 2 % of serve's CPU).
type answer struct {
	Status      string `json:"status"` // accepted, duplicate; kept (a v2 event of no known type)
	Tenant      string `json:"tenant"`
	CallID      string `json:"call_id"`
	EventType   string `json:"event_type,omitempty"`  // Webhook v2
	Provisional *bool  `json:"provisional,omitempty"` // a v2 call.end: held until its call.summary (true), or not needed (false)
	Spooled     bool   `json:"spooled,omitempty"`     // Kafka did not answer: the call waits in the local spool
}

// appendJSON appends a as Echo's c.JSON writes it (encoding/json, then a newline),
// without its reflection: every webhook is answered so (issue 14).
func (a *answer) appendJSON(b []byte) []byte {
	b = append(b, `{"status":`...)
	b = jsonwire.AppendString(b, a.Status)
	b = append(b, `,"tenant":`...)
	b = jsonwire.AppendString(b, a.Tenant)
	b = append(b, `,"call_id":`...)
	b = jsonwire.AppendString(b, a.CallID)
	b = jsonwire.AppendOmitEmpty(b, `,"event_type":`, a.EventType)
	if a.Provisional != nil {
		b = append(b, `,"provisional":`...)
		b = strconv.AppendBool(b, *a.Provisional)
	}
	if a.Spooled {
		b = append(b, `,"spooled":true`...)
	}
	return append(b, "}\n"...)
}

// lookup is one agent to resolve from the mappings (and whether the caller is an agent).
type lookup struct {
	agent  *call.Agent
	caller string
	byUUID bool // the agent's id is its uuid (Webhook v2)

	m             *call.Mapping
	callerIsAgent bool
	err           error // mapping.ErrNotFound, errRedisSkipped, errMappingsRestoring, or Redis's
}

// deliver dedupes, looks up, publishes and traces a webhook in two Redis round trips —
// claim + lookups before the publish, finish + trace stages after; one more when the
// agent's id has no active mapping (mapping.LookupPipe) — and
// answers: 200 once the events are on Kafka or in the spool, "duplicate" for a
// redelivery, 503 when neither Kafka nor the spool can take them. Redis is used only
// within the webhook's Redis budget; without it the delivery goes ahead
// undeduplicated, its owner unresolved.
func (h *Handler) deliver(c echo.Context, r *request, d delivery) error {
	ctx := c.Request().Context()
	log := r.log
	claimed, answered, err := h.before(c, r, &d)
	if answered {
		return err
	}
	msgs, err := d.build()
	if err != nil {
		r.outcome = "unavailable"
		log.Error().Err(err).Msg("events not built")
		return errUnavailable
	}
	var spooled bool
	if len(msgs) > 0 {
		spooled, err = h.Publisher.Deliver(ctx, msgs...)
	}
	if err != nil {
		r.outcome = "unavailable"
		for _, m := range msgs {
			h.Metrics.PublishErrors.WithLabelValues(m.Topic).Inc()
		}
		log.Error().Err(err).Msg("neither kafka nor the spool took the call")
		h.after(ctx, r, &d, claimed, false, err)
		if errors.Is(err, spool.ErrFull) {
			r.outcome = "spool_full"
			return errSpoolFull
		}
		return errUnavailable
	}
	h.after(ctx, r, &d, claimed, spooled, nil)
	if spooled {
		d.answer.Spooled = true
	}
	if r.outcome == "error" {
		r.outcome = "accepted"
		if spooled {
			r.outcome = "spooled"
		}
	}
	log.Info().Bool("spooled", spooled).Dur("took", time.Since(r.start)).Msg("webhook accepted")
	return c.JSONBlob(http.StatusOK, d.answer.appendJSON(make([]byte, 0, 128)))
}

// before is the first Redis round trip: the dedupe claim and the lookups, pipelined.
// It reports claimed=true when this delivery holds the claim; answered=true when it
// has answered already: 200 "duplicate" when an earlier delivery was published, 503
// "in_progress" while one is still being published — never "done" for work that could
// yet fail, so MyOperator keeps retrying until a delivery goes through.
func (h *Handler) before(c echo.Context, r *request, d *delivery) (claimed, answered bool, err error) {
	if !h.redis.usable() {
		for _, l := range d.lookups {
			l.err = errRedisSkipped
		}
		return false, false, nil
	}
	rctx, cancel := h.redisContext(c.Request().Context())
	defer cancel()
	restoring := h.MappingsReady != nil && !h.MappingsReady()
	if restoring {
		for _, l := range d.lookups {
			l.err = errMappingsRestoring
		}
	}
	// queue may run after a round trip given up on (the budget spent): it writes
	// only what is read once the round trip came back.
	var claim func() (int, error)
	answers := make([]mapping.Lookup, len(d.lookups))
	queue := func(p redis.Pipeliner) {
		claim = h.Dedupe.ClaimPipe(rctx, p, d.dedupeKey, PendingTTL)
		if restoring {
			return
		}
		for i, l := range d.lookups {
			answers[i] = h.Mappings.LookupPipe(rctx, p, r.t.ID, l.agent, l.caller, l.byUUID)
		}
	}
	if err := h.roundTrip(rctx, queue); err != nil || claim == nil {
		if err == nil {
			err = errNotQueued
		}
		h.redis.failed(err)
		for _, l := range d.lookups {
			if l.err == nil {
				l.err = err // the owner is left to the writer, as with Redis down
			}
		}
		r.log.Warn().Err(err).Msg("redis unavailable: webhook not deduplicated")
		return false, false, nil
	}
	for i, l := range d.lookups {
		if answers[i] != nil {
			l.m, l.callerIsAgent, l.err = answers[i]()
			if !errors.Is(l.err, mapping.ErrNotFound) {
				h.redis.failed(l.err)
			}
		}
	}
	state, err := claim()
	switch {
	case err != nil:
		h.redis.failed(err)
		r.log.Warn().Err(err).Msg("redis unavailable: webhook not deduplicated")
		return false, false, nil
	case state == idempotency.Pending && h.After != nil && h.redelivered(rctx, d):
		return h.duplicate(rctx, c, r, d)
	case state == idempotency.Pending:
		r.outcome = "in_progress"
		r.log.Info().Msg("redelivery while the first delivery is being published")
		return false, true, web.Errorf(http.StatusServiceUnavailable, "in_progress", "an earlier delivery of this payload is being processed; retry")
	case state == idempotency.Finished:
		return h.duplicate(rctx, c, r, d)
	}
	return true, false, nil
}

// roundTrip sends queue's commands and waits for their answers: in h.Before's next
// pipeline, with other webhooks' (one Redis read and write for many, on both sides:
// BENCHMARKS.md section 1, ninth round), else in a pipeline of their own.
func (h *Handler) roundTrip(ctx context.Context, queue func(redis.Pipeliner)) error {
	if h.Before != nil {
		if err := h.Before.Do(ctx, queue); !errors.Is(err, redisbatch.ErrNotQueued) {
			return err
		}
	}
	p := h.Redis.Pipeline()
	queue(p)
	// The claim and the lookups do not depend on each other: the lookup script may go
	// by SHA1 (redisscript).
	_, _ = p.Exec(redisscript.Independent(ctx)) // each command's answer is read by the caller
	return nil
}

// duplicate answers a redelivery of a webhook whose events were published.
func (h *Handler) duplicate(rctx context.Context, c echo.Context, r *request, d *delivery) (claimed, answered bool, err error) {
	r.outcome = "duplicate"
	r.log.Info().Msg("redelivered webhook ignored")
	if d.traceKind != "" {
		_ = h.Trace.Record(rctx, r.t.ID, d.callID, trace.Update{Stage: trace.Stage{Stage: "duplicate_ignored", Kind: d.traceKind, Detail: d.detail}})
	}
	d.answer.Status = "duplicate"
	return false, true, c.JSONBlob(http.StatusOK, d.answer.appendJSON(make([]byte, 0, 128)))
}

// redelivered reports whether a delivery found pending was in fact published by this
// process, its finish still queued in h.After: once the queue is written, the key is
// read again (nothing written) — a redelivery hard on the heels of its first is a
// duplicate, as when the finish was written before the answer. On another replica
// it is answered 503 in_progress for that millisecond, and MyOperator retries.
func (h *Handler) redelivered(rctx context.Context, d *delivery) bool {
	if h.After.Flush(rctx) != nil {
		return false // the queue is slower than the webhook's Redis budget: not Redis's failure
	}
	_, done, err := h.Dedupe.Done(rctx, d.dedupeKey)
	if err != nil && !errors.Is(err, idempotency.ErrInProgress) && rctx.Err() == nil {
		h.redis.failed(err)
	}
	return err == nil && done
}

// after is the second Redis round trip: the claim finished (or released when the
// events were not taken, so MyOperator's retry goes through) and the trace stages.
func (h *Handler) after(ctx context.Context, r *request, d *delivery, claimed, spooled bool, failed error) {
	if !h.redis.usable() {
		return
	}
	var stages []trace.Update
	switch {
	case d.stages != nil && failed == nil:
		stages = d.stages(spooled)
	case d.trace != nil:
		u := *d.trace
		u.Stage.Stage, u.Stage.At = trace.StatusReceived, r.start.UTC()
		if d.statusStage {
			u.Status = trace.StatusReceived
		}
		stages = append(stages, u)
		if failed == nil {
			u.Stage.At, u.Stage.Stage = time.Now().UTC(), trace.StatusPublished
			if d.statusStage {
				u.Status = trace.StatusPublished
			}
			if spooled {
				// Not on Kafka yet: the status stays "received" until the writer moves it on.
				u.Stage.Stage, u.Status = StageSpooled, ""
			}
			stages = append(stages, u)
			stages = append(stages, d.more...)
		}
	}
	queue := func(ctx context.Context, p redis.Pipeliner, idx *trace.IndexBatch) {
		if claimed && failed == nil {
			h.Dedupe.FinishPipe(ctx, p, d.dedupeKey, DedupeTTL)
		} else if claimed {
			p.Del(ctx, h.Dedupe.Key(d.dedupeKey))
		}
		if len(stages) > 0 {
			_ = h.Trace.RecordPipe(ctx, p, idx, r.t.ID, d.callID, stages...)
		}
	}
	// Published: in the background (the batch's pipeline bounds the write). Not taken:
	// the claim is released before the 503, so MyOperator's retry goes through.
	if failed == nil && h.After != nil && h.After.Add(func(p redis.Pipeliner) { queue(context.Background(), p, h.AfterIndex) }) {
		return
	}
	rctx, cancel := h.redisContext(ctx)
	defer cancel()
	p := h.Redis.Pipeline()
	queue(rctx, p, nil)
	// The finish and the trace's commands touch different keys and fields: the status
	// script may go by SHA1 (redisscript).
	if _, err := p.Exec(redisscript.Independent(rctx)); err != nil {
		// Published all the same: a redelivery after the claim lapses publishes again,
		// which the writer's idempotency absorbs; a trace is best effort.
		h.redis.failed(err)
		r.log.Warn().Err(err).Msg("dedupe or trace not recorded")
	}
}

// StageClickToCall is the trace stage naming the click-to-call request (its c2c-
// reference) a call came from.
const StageClickToCall = "click_to_call"

// StageAgentFieldMalformed is the trace stage of a call whose agent fields MyOperator
// sent malformed (call.Log.Malformed): read without them, so the call may have no
// agent and go to the fallback owner.
const StageAgentFieldMalformed = "agent_field_malformed"

// malformedDetail is StageAgentFieldMalformed's detail: the fields, and the agent the
// call has all the same (never a phone number: Label masks it).
func malformedDetail(l *call.Log) string {
	agent := "no agent: the fallback owner's, if the tenant has one"
	if l.Agent != nil {
		agent = "agent " + l.Agent.Label()
	}
	return "MyOperator sent " + strings.Join(l.Malformed, ", ") + " malformed (not the documented objects): read without it; the call has " + agent
}

// StageSpooled is the trace stage of a call event kept in the local spool because
// Kafka could not take it in time; the drainer forwards it to Kafka.
const StageSpooled = "spooled"

var errUnavailable = web.Errorf(http.StatusServiceUnavailable, "unavailable", "calltrack cannot take the call right now; retry")

var errSpoolFull = web.Errorf(http.StatusServiceUnavailable, "spool_full",
	"Kafka is not answering and calltrack's local spool is full: the call was not taken; retry later")

// PendingTTL bounds how long a delivery's claim holds off its redeliveries: past a
// slow publish, but short of MyOperator's 30 s retry spacing, so the claim of a
// process that died mid-way lets the next retry through.
const PendingTTL = 25 * time.Second

// afterCall looks up the call's owner and builds the call-log (and recording) events.
func (h *Handler) afterCall(t *tenant.Tenant, l *call.Log, r *request) delivery {
	lk := &lookup{agent: l.Agent, caller: l.CallerNumber, byUUID: l.Source == myoperator.SourceV2}
	tu := &trace.Update{Stage: trace.Stage{Kind: "log"}, Call: trace.InfoOf(l)}
	if l.Agent != nil {
		tu.Agent = agentLabel(*l.Agent)
	}
	var more []trace.Update
	if l.ClickRef != "" {
		// Support follows a click (the API's 202 answer, calltrack's logs) to its call.
		more = append(more, trace.Update{Stage: trace.Stage{Stage: StageClickToCall, Kind: "log",
			Detail: "placed by calltrack's click-to-call, reference " + l.ClickRef}})
	}
	if len(l.Malformed) > 0 {
		// Read without them rather than lose the call; said, so that on-call sees why the
		// call has no agent (or not the one expected) and went to the fallback owner.
		more = append(more, trace.Update{Stage: trace.Stage{Stage: StageAgentFieldMalformed, Kind: "log",
			Detail: malformedDetail(l)}})
	}
	return delivery{callID: l.CallID, lookups: []*lookup{lk}, trace: tu, traceKind: "log", statusStage: true, more: more,
		build: func() ([]kafka.Message, error) {
			owner, err := mapping.OwnerOf(lk.m, lk.err, "")
			if err == nil && owner == nil {
				owner = t.FallbackOwnerOf(l) // the department's owner, else the tenant's fallback_owner
			}
			switch {
			case err != nil:
				r.log.Warn().Err(err).Msg("mappings unavailable: the call goes out with its owner unresolved (the writer resolves it)")
				l.Owner, l.Internal, l.OwnerUnresolved = nil, false, true
			default:
				// A number that belongs to one of the tenant's own agents is an internal call.
				l.Owner, l.Internal = owner, lk.callerIsAgent
				if owner == nil {
					r.log.Info().Str("agent", agentLabel(ptrOr(l.Agent))).Msg("agent not mapped: the call will be kept unattributed")
				}
			}
			if len(l.Malformed) > 0 {
				ev := r.log.Warn().Strs("fields", l.Malformed).Str("agent", agentLabel(ptrOr(l.Agent)))
				if l.Owner != nil {
					ev = ev.Str("owner", l.Owner.CRMUserID)
				}
				ev.Msg("afterCall agent fields malformed: read without them (the call goes to the agent named elsewhere, else the fallback owner)")
			}
			val, err := encodeExact(l.AppendJSON)
			if err != nil {
				return nil, err
			}
			key := call.Key(t.ID, l.CallID)
			msgs := []kafka.Message{kafkabus.Event(h.Topics.Log, key, "calltrack/ingest", t.ID, l.CallID, val)}
			if !l.Recording.Empty() {
				re := call.RecordingEvent{Tenant: t.ID, CallID: l.CallID, Recording: *l.Recording, ReceivedAt: l.ReceivedAt}
				rec, err := encodeExact(re.AppendJSON)
				if err != nil {
					return nil, err
				}
				msgs = append(msgs, kafkabus.Event(h.Topics.Recording, key, "calltrack/ingest", t.ID, l.CallID, rec))
			}
			return msgs, nil
		}}
}

// inCall looks up the rung agents' owners (by phone: inCall has nothing else) for
// pop-ups; without Redis the live event goes out with no owners (no pop-up).
func (h *Handler) inCall(t *tenant.Tenant, lv *call.Live) delivery {
	lks := make([]*lookup, len(lv.AgentPhones))
	for i, p := range lv.AgentPhones {
		lks[i] = &lookup{agent: &call.Agent{Phone: p}}
	}
	return delivery{callID: lv.CallID, lookups: lks, trace: &trace.Update{Stage: trace.Stage{Kind: "live"}}, traceKind: "live",
		build: func() ([]kafka.Message, error) {
			for i, lk := range lks {
				if lk.err != nil {
					continue // not mapped, or the mappings not at hand: no pop-up for that agent
				}
				lv.Agents = append(lv.Agents, call.Agent{ID: lk.m.MyOperatorUserID, Email: lk.m.Email, Name: lk.m.Name, Phone: lv.AgentPhones[i]})
				lv.Owners = append(lv.Owners, *lk.m.Owner())
			}
			val, err := json.Marshal(lv)
			if err != nil {
				return nil, err
			}
			return []kafka.Message{kafkabus.Event(h.Topics.Live, call.Key(t.ID, lv.CallID), "calltrack/ingest", t.ID, lv.CallID, val)}, nil
		}}
}

// Reasons a payload is kept on the rejected topic (header kafkabus.HeaderReason).
const (
	reasonMalformed    = "malformed_payload"
	reasonTooLarge     = "payload_too_large"
	reasonWrongCompany = "wrong_company"
	reasonUnknownEvent = "unknown_event_type"
)

// reject answers 400 and keeps the raw payload on the rejected topic with the reason.
// When neither Kafka nor the spool keeps it, it answers 503 instead (spool_full /
// unavailable, as for a call): MyOperator does not retry a 4xx, so a 400 would leave
// the payload nowhere.
func (h *Handler) reject(ctx context.Context, c echo.Context, r *request, tenantID, kind string, body []byte, cause error, log zerolog.Logger) error {
	msg := strings.TrimPrefix(cause.Error(), myoperator.ErrMalformed.Error()+": ")
	if err := h.keepRejected(ctx, c, r, tenantID, kind, body, reasonMalformed, msg); err != nil {
		return err
	}
	log.Info().Str("reason", msg).Msg("malformed webhook rejected")
	return web.Errorf(http.StatusBadRequest, reasonMalformed, msg)
}

// refuseCompany answers 403 to a payload of a company other than the tenant's (its
// token was right: a tenant's company_id set wrong would otherwise lose every call
// behind a "wrong token"), and keeps it on the rejected topic, as reject does.
func (h *Handler) refuseCompany(ctx context.Context, c echo.Context, r *request, t *tenant.Tenant, kind string, body []byte, company string) error {
	msg := fmt.Sprintf("the payload is company %s's; tenant %s takes only company %s's (company_id in the tenants file)",
		strconv.Quote(company), t.ID, strconv.Quote(t.CompanyID))
	if err := h.keepRejected(ctx, c, r, t.ID, kind, body, reasonWrongCompany, msg); err != nil {
		return err
	}
	r.outcome = "rejected"
	r.log.Warn().Str("company", company).Str("tenant_company", t.CompanyID).Msg("payload of another company refused")
	return web.Errorf(http.StatusForbidden, reasonWrongCompany, msg)
}

// keepRejected puts a refused payload on the rejected topic with its reason and message;
// when neither Kafka nor the spool takes it, the answer is a 503 (the error returned).
func (h *Handler) keepRejected(ctx context.Context, c echo.Context, r *request, tenantID, kind string, body []byte, reason, msg string) error {
	log := r.log
	if len(body) == 0 {
		// A legacy GET delivery carries its payload in the query: keep that (less the token).
		q := c.QueryParams()
		q.Del("token")
		q.Del("api_key") // v2's other place for the token
		body = []byte(q.Encode())
	}
	m := kafkabus.Event(h.Topics.Rejected, tenantID, "calltrack/ingest", tenantID, "", body,
		kafka.Header{Key: kafkabus.HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: kafkabus.HeaderError, Value: []byte(msg)},
		kafka.Header{Key: "kind", Value: []byte(kind)},
		kafka.Header{Key: "content_type", Value: []byte(c.Request().Header.Get(echo.HeaderContentType))})
	if _, err := h.Publisher.Deliver(ctx, m); err != nil {
		h.Metrics.PublishErrors.WithLabelValues(h.Topics.Rejected).Inc()
		log.Error().Err(err).Str("reason", msg).Msg("refused webhook not kept: neither kafka nor the spool took it; answered 503 so MyOperator retries")
		if errors.Is(err, spool.ErrFull) {
			r.outcome = "spool_full"
			return errSpoolFull
		}
		r.outcome = "unavailable"
		return errUnavailable
	}
	return nil
}

func agentLabel(a call.Agent) string { return a.Label() }

func ptrOr(a *call.Agent) call.Agent {
	if a == nil {
		return call.Agent{}
	}
	return *a
}

// tenantLabel keeps metric cardinality bounded: unknown tenant names collapse to one label.
func tenantLabel(r *tenant.Registry, id string) string {
	if _, ok := r.Get(id); ok {
		return id
	}
	return "unknown"
}
