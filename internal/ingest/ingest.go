// Package ingest receives MyOperator webhooks: it authenticates the tenant, parses and
// normalises the payload, resolves the owner from the mapping cache, and publishes the
// call's events to Kafka — answering 2xx only once Kafka acknowledged them. It never
// calls a CRM.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/idempotency"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

// Publisher is what ingest needs of Kafka.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// DedupeTTL is how long a delivered webhook is recognised when it comes again
// (MyOperator v1 retries within minutes; v2 for up to 24 h).
const DedupeTTL = 48 * time.Hour

// Handler serves the webhook endpoints.
type Handler struct {
	Tenants   *tenant.Registry
	Mappings  *mapping.Store
	Publisher Publisher
	Topics    kafkabus.Topics
	Dedupe    *idempotency.Store
	Trace     *trace.Store
	Metrics   *metrics.Metrics
	Log       zerolog.Logger
	Now       func() time.Time
}

// Register mounts the webhook routes.
func (h *Handler) Register(e *echo.Echo) {
	for _, kind := range []string{"incall", "aftercall"} {
		kind := kind
		fn := h.serve(kind, h.Authenticate, func(c echo.Context, r *request) error { return h.webhook(c, r, kind) })
		e.POST("/webhooks/myoperator/:tenant/"+kind, fn)
		e.GET("/webhooks/myoperator/:tenant/"+kind, fn) // legacy GET delivery
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
		if r.body, err = readBody(c); err != nil {
			r.outcome = bodyOutcome(err)
			return err
		}
		r.t = t
		r.log = h.Log.With().Str("tenant", t.ID).Str("kind", kind).Str("request_id", c.Response().Header().Get(echo.HeaderXRequestID)).Logger()
		return fn(c, r)
	}
}

func (h *Handler) webhook(c echo.Context, r *request, kind string) error {
	t, body, log, start := r.t, r.body, r.log, r.start
	ctx := c.Request().Context()

	raw, err := myoperator.ExtractJSON(c.Request().Header.Get(echo.HeaderContentType), body, c.QueryParams())
	if err == nil && !t.AcceptsCompany(myoperator.CompanyID(raw)) {
		r.outcome = "unauthorized"
		log.Warn().Msg("payload of another company refused")
		return web.Errorf(http.StatusUnauthorized, "unauthorized", "unknown tenant or wrong webhook token")
	}
	var msgs []kafka.Message
	var callID, logID string
	var tu trace.Update
	if err == nil {
		receivedAt := h.now()
		if kind == "aftercall" {
			var l *call.Log
			if l, err = myoperator.ParseAfterCall(t.ID, raw, receivedAt); err == nil {
				callID, logID = l.CallID, l.LogID
				msgs, err = h.afterCall(ctx, t, l, log)
				tu = trace.Update{Stage: trace.Stage{Kind: "log"}, LogID: l.LogID, Call: trace.InfoOf(l)}
				if l.Agent != nil {
					tu.Agent = agentLabel(*l.Agent)
				}
			}
		} else {
			var lv *call.Live
			if lv, err = myoperator.ParseInCall(t.ID, raw, receivedAt); err == nil {
				callID = lv.CallID
				msgs, err = h.inCall(ctx, t, lv)
				tu = trace.Update{Stage: trace.Stage{Kind: "live", Detail: string(lv.State)}}
			}
		}
		if errors.Is(err, myoperator.ErrIgnored) {
			// Well formed, but nothing to act on (an inCall state of no known meaning):
			// no event, no pop-up; answered 200 so MyOperator does not retry it.
			r.outcome = "ignored"
			msg := strings.TrimPrefix(err.Error(), myoperator.ErrIgnored.Error()+": ")
			log.Info().Str("reason", msg).Msg("webhook ignored")
			return c.JSON(http.StatusOK, map[string]any{"status": "ignored", "tenant": t.ID, "reason": msg})
		}
		if err != nil && !errors.Is(err, myoperator.ErrMalformed) {
			r.outcome = "unavailable"
			log.Error().Err(err).Str("call_id", callID).Msg("webhook not accepted")
			return web.Errorf(http.StatusServiceUnavailable, "unavailable", "calltrack cannot take the call right now; retry")
		}
	}
	if err != nil {
		r.outcome = "rejected"
		return h.reject(ctx, c, t.ID, kind, body, err, log)
	}
	log = log.With().Str("call_id", callID).Logger()
	if logID != "" {
		log = log.With().Str("log_id", logID).Logger()
	}

	// A redelivery of the same payload (in whatever encoding) yields no second event.
	dedupeKey := fmt.Sprintf("webhook:%s:%s:%s", t.ID, kind, payloadHash(raw))
	answer := map[string]any{"status": "accepted", "tenant": t.ID, "call_id": callID}
	if ok, err := h.claim(c, r, dedupeKey, callID, tu.Kind, "", answer); !ok {
		return err
	}
	tu.Stage.Stage, tu.Status = trace.StatusReceived, ""
	if kind == "aftercall" {
		tu.Status = trace.StatusReceived
	}
	_ = h.Trace.Record(ctx, t.ID, callID, tu)
	if err := h.publish(ctx, msgs); err != nil {
		r.outcome = "unavailable"
		h.release(ctx, dedupeKey, log) // let MyOperator's retry through
		log.Error().Err(err).Msg("publish failed")
		return web.Errorf(http.StatusServiceUnavailable, "unavailable", "calltrack cannot take the call right now; retry")
	}
	h.finish(ctx, dedupeKey, log)
	tu.Stage.Stage, tu.Stage.At = trace.StatusPublished, time.Time{}
	if kind == "aftercall" {
		tu.Status = trace.StatusPublished
	}
	if err := h.Trace.Record(ctx, t.ID, callID, tu); err != nil {
		log.Warn().Err(err).Msg("trace not recorded")
	}
	r.outcome = "accepted"
	log.Info().Dur("took", time.Since(start)).Msg("webhook accepted")
	return c.JSON(http.StatusOK, answer)
}

// PendingTTL bounds how long a delivery's claim holds off its redeliveries: past a
// slow publish, but short of MyOperator's 30 s retry spacing, so the claim of a
// process that died mid-way lets the next retry through.
const PendingTTL = 25 * time.Second

// publishTimeout bounds a webhook's publish. The caller hanging up does not cancel it:
// a publish cut off half-way would leave MyOperator's retry to find a claim.
const publishTimeout = 20 * time.Second

// claim dedupes a delivery by key. It reports true when this delivery should go ahead;
// otherwise it has answered: 200 "duplicate" when an earlier delivery was published,
// 503 "in_progress" while one is still being published — never "done" for work that
// could yet fail, so MyOperator keeps retrying until a delivery goes through.
func (h *Handler) claim(c echo.Context, r *request, key, callID, traceKind, detail string, answer map[string]any) (bool, error) {
	ctx := c.Request().Context()
	state, err := h.Dedupe.Claim(ctx, key, PendingTTL)
	switch {
	case err != nil:
		r.outcome = "unavailable"
		r.log.Error().Err(err).Msg("dedupe check failed")
		return false, web.Errorf(http.StatusServiceUnavailable, "unavailable", "calltrack cannot take the call right now; retry")
	case state == idempotency.Pending:
		r.outcome = "in_progress"
		r.log.Info().Msg("redelivery while the first delivery is being published")
		return false, web.Errorf(http.StatusServiceUnavailable, "in_progress", "an earlier delivery of this payload is being processed; retry")
	case state == idempotency.Finished:
		r.outcome = "duplicate"
		r.log.Info().Msg("redelivered webhook ignored")
		if traceKind != "" {
			_ = h.Trace.Record(ctx, r.t.ID, callID, trace.Update{Stage: trace.Stage{Stage: "duplicate_ignored", Kind: traceKind, Detail: detail}})
		}
		answer["status"] = "duplicate"
		return false, c.JSON(http.StatusOK, answer)
	}
	return true, nil
}

// publish writes the events and waits for the ack, whatever becomes of the request.
func (h *Handler) publish(ctx context.Context, msgs []kafka.Message) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	err := h.Publisher.Publish(ctx, msgs...)
	if err != nil {
		for _, m := range msgs {
			h.Metrics.PublishErrors.WithLabelValues(m.Topic).Inc()
		}
	}
	return err
}

// finish records a published delivery, so its redeliveries are duplicates.
func (h *Handler) finish(ctx context.Context, key string, log zerolog.Logger) {
	if err := h.Dedupe.Finish(context.WithoutCancel(ctx), key, DedupeTTL); err != nil {
		// Published all the same; a redelivery after the claim lapses publishes again,
		// which the writer's idempotency absorbs.
		log.Warn().Err(err).Msg("dedupe not recorded")
	}
}

// release forgets a claim whose work failed, so the retry is not a "duplicate".
func (h *Handler) release(ctx context.Context, key string, log zerolog.Logger) {
	if err := h.Dedupe.Release(context.WithoutCancel(ctx), key); err != nil {
		log.Error().Err(err).Msg("dedupe release failed")
	}
}

// afterCall resolves the owner and builds the call-log (and recording) events.
func (h *Handler) afterCall(ctx context.Context, t *tenant.Tenant, l *call.Log, log zerolog.Logger) ([]kafka.Message, error) {
	owner, err := h.Mappings.Owner(ctx, t.ID, t.FallbackOwner, l.Agent)
	if err != nil {
		return nil, err
	}
	// A number that belongs to one of the tenant's own agents is an internal call.
	if l.Internal, err = h.Mappings.IsAgentPhone(ctx, t.ID, l.CallerNumber); err != nil {
		return nil, err
	}
	l.Owner = owner
	if owner == nil {
		log.Info().Str("agent", agentLabel(ptrOr(l.Agent))).Msg("agent not mapped: the call will be kept unattributed")
	}
	val, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	key := call.Key(t.ID, l.CallID)
	msgs := []kafka.Message{kafkabus.Event(h.Topics.Log, key, "calltrack/ingest", t.ID, l.CallID, val)}
	if !l.Recording.Empty() {
		rec, err := json.Marshal(call.RecordingEvent{Tenant: t.ID, CallID: l.CallID, Recording: *l.Recording, ReceivedAt: l.ReceivedAt})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, kafkabus.Event(h.Topics.Recording, key, "calltrack/ingest", t.ID, l.CallID, rec))
	}
	return msgs, nil
}

// inCall resolves the rung agents' owners (by phone: inCall has nothing else) for pop-ups.
func (h *Handler) inCall(ctx context.Context, t *tenant.Tenant, lv *call.Live) ([]kafka.Message, error) {
	for _, p := range lv.AgentPhones {
		m, err := h.Mappings.Resolve(ctx, t.ID, call.Agent{Phone: p})
		if errors.Is(err, mapping.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		lv.Agents = append(lv.Agents, call.Agent{ID: m.MyOperatorUserID, Email: m.Email, Name: m.Name, Phone: p})
		lv.Owners = append(lv.Owners, *m.Owner())
	}
	val, err := json.Marshal(lv)
	if err != nil {
		return nil, err
	}
	return []kafka.Message{kafkabus.Event(h.Topics.Live, call.Key(t.ID, lv.CallID), "calltrack/ingest", t.ID, lv.CallID, val)}, nil
}

// reject answers 400 and keeps the raw payload on the rejected topic with the reason.
func (h *Handler) reject(ctx context.Context, c echo.Context, tenantID, kind string, body []byte, cause error, log zerolog.Logger) error {
	msg := strings.TrimPrefix(cause.Error(), myoperator.ErrMalformed.Error()+": ")
	if len(body) == 0 {
		// A legacy GET delivery carries its payload in the query: keep that (less the token).
		q := c.QueryParams()
		q.Del("token")
		q.Del("api_key") // v2's other place for the token
		body = []byte(q.Encode())
	}
	m := kafkabus.Event(h.Topics.Rejected, tenantID, "calltrack/ingest", tenantID, "", body,
		kafka.Header{Key: kafkabus.HeaderReason, Value: []byte("malformed_payload")},
		kafka.Header{Key: kafkabus.HeaderError, Value: []byte(msg)},
		kafka.Header{Key: "kind", Value: []byte(kind)},
		kafka.Header{Key: "content_type", Value: []byte(c.Request().Header.Get(echo.HeaderContentType))})
	if err := h.Publisher.Publish(ctx, m); err != nil {
		h.Metrics.PublishErrors.WithLabelValues(h.Topics.Rejected).Inc()
		log.Error().Err(err).Msg("rejected payload could not be kept")
	}
	log.Info().Str("reason", msg).Msg("malformed webhook rejected")
	return web.Errorf(http.StatusBadRequest, "malformed_payload", msg)
}

// payloadHash identifies a payload whatever its encoding: the JSON is decoded and
// re-encoded with sorted keys before hashing.
func payloadHash(raw []byte) string {
	var v any
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	canon := raw
	if d.Decode(&v) == nil {
		if b, err := json.Marshal(v); err == nil {
			canon = b
		}
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:16])
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
