package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

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

// Holds keeps call.end events until their call.summary comes (provisional.Store).
type Holds interface {
	Hold(ctx context.Context, l *call.Log) error
	Cancel(ctx context.Context, tenant, callID string) error
}

// V2 serves MyOperator Webhook v2: one endpoint for every call event, in one envelope.
//   - call.initiated / call.dial_begin / call.answered → calltrack.call.live.v1;
//   - call.summary → calltrack.call.log.v1 (+ calltrack.call.recording.v1), and the
//     call's held call.end is cancelled;
//   - call.end → held (Holds) until a call log of the call comes, or the wait ends;
//   - call.disposition → calltrack.call.recording.v1 (an amendment with the disposition);
//   - any other event type → kept verbatim on calltrack.webhook.rejected.v1 with reason
//     unknown_event_type, counted, and answered 200 {"status":"kept"}.
//
// Deliveries are deduplicated on event_id (MyOperator retries for up to 24 h).
type V2 struct {
	*Handler
	Holds Holds
}

// Register mounts POST /webhooks/myoperator/{tenant}/v2.
func (v *V2) Register(e *echo.Echo) {
	e.POST("/webhooks/myoperator/:tenant/v2", v.serve("v2", v.authenticate, v.webhook))
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
	t, body, log, start := r.t, r.body, r.log, r.start
	ctx := c.Request().Context()

	raw, err := myoperator.ExtractJSON(c.Request().Header.Get(echo.HeaderContentType), body, nil)
	var ev *myoperator.V2Event
	if err == nil {
		ev, err = myoperator.ParseV2(t.ID, raw, v.now())
	}
	if err != nil {
		r.outcome = "rejected"
		return v.reject(ctx, c, t.ID, kind, body, err, log)
	}
	if !t.AcceptsCompany(ev.CompanyID) {
		r.outcome = "unauthorized"
		log.Warn().Msg("payload of another company refused")
		return web.Errorf(http.StatusUnauthorized, "unauthorized", "unknown tenant or wrong webhook token")
	}
	log = log.With().Str("event_type", ev.Type).Str("event_id", ev.ID).Str("call_id", ev.CallID).Logger()
	unavailable := func(err error, msg string) error {
		r.outcome = "unavailable"
		log.Error().Err(err).Msg(msg)
		return web.Errorf(http.StatusServiceUnavailable, "unavailable", "calltrack cannot take the call right now; retry")
	}

	var msgs []kafka.Message
	var tu trace.Update
	switch ev.Kind {
	case myoperator.V2Live:
		msgs, err = v.inCall(ctx, t, ev.Live)
		tu = trace.Update{Stage: trace.Stage{Kind: "live", Detail: ev.Type + ": " + string(ev.Live.State)}}
	case myoperator.V2Summary:
		msgs, err = v.afterCall(ctx, t, ev.Log, log)
		tu = trace.Update{Stage: trace.Stage{Kind: "log", Detail: ev.Type}, Call: trace.InfoOf(ev.Log)}
		if ev.Log.Agent != nil {
			tu.Agent = agentLabel(*ev.Log.Agent)
		}
	case myoperator.V2End:
		tu = trace.Update{Stage: trace.Stage{Kind: "log", Detail: ev.Type}}
	case myoperator.V2Disposition:
		var val []byte
		if val, err = json.Marshal(ev.Amendment); err == nil {
			msgs = []kafka.Message{kafkabus.Event(v.Topics.Recording, call.Key(t.ID, ev.CallID), "calltrack/ingest", t.ID, ev.CallID, val)}
		}
		tu = trace.Update{Stage: trace.Stage{Kind: "recording", Detail: ev.Type}}
	default:
		// Kept verbatim, as rejected payloads are, so nothing MyOperator sends is lost.
		msgs = []kafka.Message{kafkabus.Event(v.Topics.Rejected, t.ID, "calltrack/ingest", t.ID, ev.CallID, body,
			kafka.Header{Key: kafkabus.HeaderReason, Value: []byte("unknown_event_type")},
			kafka.Header{Key: "kind", Value: []byte(kind)},
			kafka.Header{Key: "event_type", Value: []byte(ev.Type)},
			kafka.Header{Key: "content_type", Value: []byte(c.Request().Header.Get(echo.HeaderContentType))})}
	}
	if err != nil {
		return unavailable(err, "webhook not accepted")
	}

	// A redelivery of the same event yields nothing new.
	dedupeKey := "webhook:" + t.ID + ":v2:" + ev.ID
	if ev.ID == "" {
		dedupeKey = "webhook:" + t.ID + ":v2-body:" + payloadHash(raw)
	}
	answer := map[string]any{"status": "accepted", "tenant": t.ID, "call_id": ev.CallID, "event_type": ev.Type}
	traceKind := tu.Kind
	if ev.Kind == myoperator.V2Unknown {
		traceKind = ""
	}
	if ok, err := v.claim(c, r, dedupeKey, ev.CallID, traceKind, ev.Type, answer); !ok {
		return err
	}
	release := func() { v.release(ctx, dedupeKey, log) }

	if ev.Kind == myoperator.V2End {
		held, err := v.holdEnd(ctx, ev)
		if err != nil {
			release() // let MyOperator's retry through
			return unavailable(err, "call.end not held")
		}
		v.finish(ctx, dedupeKey, log)
		r.outcome = "accepted"
		answer["provisional"] = held
		log.Info().Bool("held", held).Dur("took", time.Since(start)).Msg("webhook accepted")
		return c.JSON(http.StatusOK, answer)
	}

	traced := ev.Kind != myoperator.V2Unknown
	if traced {
		tu.Stage.Stage, tu.Status = trace.StatusReceived, ""
		if ev.Kind == myoperator.V2Summary {
			tu.Status = trace.StatusReceived
		}
		_ = v.Trace.Record(ctx, t.ID, ev.CallID, tu)
	}
	if err := v.publish(ctx, msgs); err != nil {
		release()
		return unavailable(err, "publish failed")
	}
	v.finish(ctx, dedupeKey, log)
	if ev.Kind == myoperator.V2Summary {
		// The summary is here: its call.end need not wait (the release loop checks the
		// trace too, so a failure here only costs a look).
		if err := v.Holds.Cancel(ctx, t.ID, ev.CallID); err != nil {
			log.Warn().Err(err).Msg("held call.end not cancelled")
		}
	}
	if traced {
		tu.Stage.Stage, tu.Stage.At = trace.StatusPublished, time.Time{}
		if ev.Kind == myoperator.V2Summary {
			tu.Status = trace.StatusPublished
		}
		if err := v.Trace.Record(ctx, t.ID, ev.CallID, tu); err != nil {
			log.Warn().Err(err).Msg("trace not recorded")
		}
	}
	if ev.Kind == myoperator.V2Unknown {
		v.Metrics.UnknownV2Events.WithLabelValues(tenantLabel(v.Tenants, t.ID), ev.Type).Inc()
		r.outcome = "kept"
		answer["status"] = "kept"
		log.Info().Msg("unknown event type kept")
		return c.JSON(http.StatusOK, answer)
	}
	r.outcome = "accepted"
	log.Info().Dur("took", time.Since(start)).Msg("webhook accepted")
	return c.JSON(http.StatusOK, answer)
}

// holdEnd keeps a call.end's call log until the call's summary comes; it reports
// false when a call log of the call came already (then call.end is not needed).
func (v *V2) holdEnd(ctx context.Context, ev *myoperator.V2Event) (bool, error) {
	l := ev.Log
	tr, err := v.Trace.Get(ctx, l.Tenant, l.CallID)
	if err != nil && !errors.Is(err, trace.ErrNotFound) {
		return false, err
	}
	if provisional.LogSeen(tr) {
		_ = v.Trace.Record(ctx, l.Tenant, l.CallID, trace.Update{Stage: trace.Stage{Stage: provisional.StageDropped, Kind: "log",
			Detail: "call.end after the call's log: not used"}})
		return false, nil
	}
	if err := v.Holds.Hold(ctx, l); err != nil {
		return false, err
	}
	u := trace.Update{Stage: trace.Stage{Stage: provisional.StageHeld, Kind: "log",
		Detail: "call.end kept: its call log is written from it unless a call.summary or afterCall comes first"}}
	if l.Agent != nil {
		u.Agent = agentLabel(*l.Agent)
	}
	_ = v.Trace.Record(ctx, l.Tenant, l.CallID, u)
	return true, nil
}

// readBody reads the request body; the error is the *web.Error to answer.
func readBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		var he *echo.HTTPError
		if errors.As(err, &mbe) || (errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge) {
			return nil, web.Errorf(http.StatusRequestEntityTooLarge, "payload_too_large", "request body is larger than 1 MiB")
		}
		return nil, web.Errorf(http.StatusBadRequest, "bad_request", "could not read the request body")
	}
	return body, nil
}

// bodyOutcome is the metric outcome of a readBody error.
func bodyOutcome(err error) string {
	if we, ok := errors.AsType[*web.Error](err); ok && we.Status == http.StatusRequestEntityTooLarge {
		return "too_large"
	}
	return "error"
}
