package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/internal/provisional"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

// V2 serves MyOperator Webhook v2: one endpoint for every call event, in one envelope.
//   - call.initiated / call.dial_begin / call.answered → calltrack.call.live.v1;
//   - call.summary → calltrack.call.log.v1 (+ calltrack.call.recording.v1);
//   - call.end → calltrack.call.held.v1, whose consumer (provisional.Releaser) holds it
//     until the wait ends and writes the call from it unless a call log came;
//   - call.disposition → calltrack.call.recording.v1 (an amendment with the disposition);
//   - any other event type → kept verbatim on calltrack.webhook.rejected.v1 with reason
//     unknown_event_type, counted, and answered 200 {"status":"kept"}.
//
// Deliveries are deduplicated on event_id (MyOperator retries for up to 24 h).
type V2 struct {
	*Handler
}

// Register mounts POST /webhooks/myoperator/{tenant}/v2.
func (v *V2) Register(e *echo.Echo) {
	e.POST(web.MyOperatorWebhooks+":tenant/v2", v.serve("v2", v.authenticate, v.webhook))
}

// authenticate accepts what v1 accepts (?token=, X-Calltrack-Token, the Basic
// password) and the other places MyOperator v2 can put an API key: an X-Api-Key
// header, Authorization: Bearer, or ?api_key=.
func (v *V2) authenticate(c echo.Context) (*tenant.Tenant, error) {
	t, err := v.Authenticate(c)
	if err == nil {
		return t, nil
	}
	r := c.Request()
	bearer, _ := strings.CutPrefix(r.Header.Get(echo.HeaderAuthorization), "Bearer ")
	for _, secret := range []string{r.Header.Get("X-Api-Key"), strings.TrimSpace(bearer), c.QueryParam("api_key")} {
		if secret == "" {
			continue
		}
		if t, aerr := v.Tenants.Authenticate(c.Param("tenant"), secret); aerr == nil {
			return t, nil
		}
	}
	return nil, err
}

func (v *V2) webhook(c echo.Context, r *request) error {
	const kind = "v2"
	t, body, log := r.t, r.body, r.log
	ctx := c.Request().Context()

	raw, err := myoperator.ExtractJSON(c.Request().Header.Get(echo.HeaderContentType), body, nil)
	var ev *myoperator.V2Event
	if err == nil {
		ev, err = myoperator.ParseV2(t.ID, raw, v.now())
	}
	if err != nil {
		r.outcome = "rejected"
		return v.reject(ctx, c, r, t.ID, kind, body, err, log)
	}
	if !t.AcceptsCompany(ev.CompanyID) {
		return v.refuseCompany(ctx, c, r, t, kind, body, ev.CompanyID)
	}
	log = log.With().Str("event_type", ev.Type).Str("event_id", ev.ID).Str("call_id", ev.CallID).Logger()
	r.log = log

	var d delivery
	switch ev.Kind {
	case myoperator.V2Live:
		d = v.inCall(t, ev.Live)
		d.trace.Stage.Detail = ev.Type + ": " + string(ev.Live.State)
	case myoperator.V2Summary:
		d = v.afterCall(t, ev.Log, r)
		d.trace.Stage.Detail = ev.Type
	case myoperator.V2End:
		d = v.heldEnd(ctx, t, ev, r)
	case myoperator.V2Disposition:
		d = delivery{trace: &trace.Update{Stage: trace.Stage{Kind: "recording", Detail: ev.Type}}, traceKind: "recording",
			build: func() ([]kafka.Message, error) {
				val, err := json.Marshal(ev.Amendment)
				if err != nil {
					return nil, err
				}
				return []kafka.Message{kafkabus.Event(v.Topics.Recording, call.Key(t.ID, ev.CallID), "calltrack/ingest", t.ID, ev.CallID, val)}, nil
			}}
	default:
		// Kept verbatim, as rejected payloads are, so nothing MyOperator sends is lost.
		kept := kafkabus.Event(v.Topics.Rejected, t.ID, "calltrack/ingest", t.ID, ev.CallID, body,
			kafka.Header{Key: kafkabus.HeaderReason, Value: []byte(reasonUnknownEvent)},
			kafka.Header{Key: "kind", Value: []byte(kind)},
			kafka.Header{Key: "event_type", Value: []byte(ev.Type)},
			kafka.Header{Key: "content_type", Value: []byte(c.Request().Header.Get(echo.HeaderContentType))})
		d = delivery{build: func() ([]kafka.Message, error) {
			v.Metrics.UnknownV2Events.WithLabelValues(tenantLabel(v.Tenants, t.ID), ev.Type).Inc()
			r.outcome = "kept"
			log.Info().Msg("unknown event type kept")
			return []kafka.Message{kept}, nil
		}}
	}
	d.callID, d.detail = ev.CallID, ev.Type

	// A redelivery of the same event yields nothing new.
	d.dedupeKey = "webhook:" + t.ID + ":v2:" + ev.ID
	if ev.ID == "" {
		d.dedupeKey = "webhook:" + t.ID + ":v2-body:" + payloadHash(raw)
	}
	d.answer = answer{Status: "accepted", Tenant: t.ID, CallID: ev.CallID, EventType: ev.Type}
	if ev.Kind == myoperator.V2Unknown {
		d.answer.Status = "kept"
	}
	if ev.Kind == myoperator.V2End {
		provisional := d.build != nil
		d.answer.Provisional = &provisional
		if d.build == nil {
			d.build = func() ([]kafka.Message, error) { return nil, nil }
		}
	}
	return v.deliver(c, r, d)
}

// heldEnd publishes a call.end's call log to the held topic, where it waits for the
// call's summary (provisional.Releaser) — unless the call's log is on its way already
// (then build is nil: nothing to hold).
func (v *V2) heldEnd(ctx context.Context, t *tenant.Tenant, ev *myoperator.V2Event, r *request) delivery {
	agent := ""
	if ev.Log.Agent != nil {
		agent = agentLabel(*ev.Log.Agent)
	}
	stage := func(st, detail string) []trace.Update {
		return []trace.Update{{Stage: trace.Stage{Stage: st, Kind: "log", Detail: detail}, Agent: agent}}
	}
	d := delivery{traceKind: "log", trace: &trace.Update{Stage: trace.Stage{Kind: "log", Detail: ev.Type}, Agent: agent}}
	if v.logSeen(ctx, r, t.ID, ev.CallID) {
		d.stages = func(bool) []trace.Update {
			return stage(provisional.StageDropped, "call.end after the call's log: not used")
		}
		return d
	}
	d.stages = func(bool) []trace.Update {
		return stage(provisional.StageHeld, "call.end kept: its call log is written from it unless a call.summary or afterCall comes first")
	}
	d.build = func() ([]kafka.Message, error) {
		val, err := json.Marshal(ev.Log)
		if err != nil {
			return nil, err
		}
		return []kafka.Message{kafkabus.Event(v.Topics.Held, call.Key(t.ID, ev.CallID), "calltrack/ingest", t.ID, ev.CallID, val,
			kafka.Header{Key: kafkabus.HeaderReason, Value: []byte(provisional.ReasonSummaryMissing)})}, nil
	}
	return d
}

// logSeen reports whether the call's trace shows a call log already on its way (so a
// call.end need not be held); false when Redis cannot tell.
func (v *V2) logSeen(ctx context.Context, r *request, tenantID, callID string) bool {
	if !v.redis.usable() {
		return false
	}
	rctx, cancel := v.redisContext(ctx)
	defer cancel()
	if v.After != nil && v.After.Flush(rctx) != nil {
		// A summary accepted here may have its stages still queued, and the queue is
		// slower than the budget: Redis cannot tell in time (not Redis's failure).
		return false
	}
	tr, err := v.Trace.Get(rctx, tenantID, callID)
	if err != nil && !errors.Is(err, trace.ErrNotFound) {
		v.redis.failed(err)
		return false
	}
	return provisional.LogSeen(tr)
}

// readBody reads the request body; the error is the *web.Error to answer.
func readBody(c echo.Context) ([]byte, error) {
	var body []byte
	var err error
	switch n := c.Request().ContentLength; {
	case n > web.MaxBody:
		err = &http.MaxBytesError{Limit: web.MaxBody}
		// Only its head is read, to be kept (KeptHead); the rest is never read.
		body = make([]byte, KeptHead)
		m, _ := io.ReadFull(c.Request().Body, body)
		body = body[:m]
	case n > 0:
		// Sized once (net/http ends the body at its Content-Length): io.ReadAll grows
		// from 512 bytes, three allocations for a webhook.
		body = make([]byte, n)
		_, err = io.ReadFull(c.Request().Body, body)
	default: // length unknown (chunked): bounded as it is read
		body, err = io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, web.MaxBody))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		var he *echo.HTTPError
		if errors.As(err, &mbe) || (errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge) {
			return body[:min(len(body), KeptHead)], errTooLarge
		}
		return nil, web.Errorf(http.StatusBadRequest, "bad_request", "could not read the request body")
	}
	return body, nil
}

// KeptHead is how much of a payload over web.MaxBody the rejected topic keeps: the
// whole would not fit a Kafka message (1 MiB by default), and its head shows what
// was sent.
const KeptHead = 64 << 10

var errTooLarge = web.Errorf(http.StatusRequestEntityTooLarge, reasonTooLarge, "request body is larger than 1 MiB")

// bodyOutcome is the metric outcome of a readBody error.
func bodyOutcome(err error) string {
	if we, ok := errors.AsType[*web.Error](err); ok && we.Status == http.StatusRequestEntityTooLarge {
		return "too_large"
	}
	return "unreadable" // answered 400 (the sender hung up mid-body): not a 5xx of ours
}
