package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/calltrack/calltrack/internal/route"
	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/telemetry/telemetrytest"
	"github.com/calltrack/calltrack/internal/testenv"
)

// With OTEL_EXPORTER_OTLP_ENDPOINT set, one webhook is one trace at the collector: the
// webhook's server span, the Kafka publish, the writer's consumer span, and the CRM
// request under it — here through a failed first attempt, so the trace also crosses
// the retry topic (the re-published message carries it on).
func TestOneWebhookIsOneTrace(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTracerProvider(tp); otel.SetTextMapPropagator(prop) })
	rcv := telemetrytest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // ms: export soon, so the test polls briefly
	shutdown, err := telemetry.Setup(context.Background(), "e2e", "v0-test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = shutdown(context.Background()) })

	fast := route.Policy{InPlace: 1, InPlaceWait: 10 * time.Millisecond, MaxAttempts: 10, Base: 50 * time.Millisecond, Cap: 200 * time.Millisecond}
	s := newStack(t, stackOpts{retry: &fast})
	s.mapAgent(sumit.id, "1001", sumit.email)
	require.NoError(t, s.kylas.SetFaults(sandboxFaults(1, 503)))
	spec := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}}
	r := s.postForm("aftercall", afterCall(spec), token)
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	s.waitStatus(spec.uid, "retrying", within)
	require.NoError(t, s.kylas.SetFaults(sandboxFaults(0, 0)))
	require.Len(t, s.waitRecords(spec.uid, 1, within), 1)

	// The webhook's server span names the trace; the rest is found in it.
	var server telemetrytest.Span
	var inTrace []telemetrytest.Span
	byID := map[string]telemetrytest.Span{}
	var created telemetrytest.Span // the CRM request that wrote the record
	defer func() {
		if t.Failed() {
			for _, sp := range rcv.Spans() {
				t.Logf("span %s %s kind=%v trace=%s parent=%x id=%x status=%s url=%s", sp.Service, sp.Name, sp.Kind, sp.TraceID(), sp.ParentSpanId, sp.SpanId,
					sp.Attr("http.response.status_code"), sp.Attr("url.full"))
			}
		}
	}()
	testenv.Eventually(t, within, "the collector holds the webhook's trace down to the CRM create", func() bool {
		spans := rcv.Spans()
		server, inTrace, created = telemetrytest.Span{}, nil, telemetrytest.Span{}
		for _, sp := range spans {
			if sp.Kind == tracepb.Span_SPAN_KIND_SERVER && sp.Name == "POST /webhooks/myoperator/:tenant/aftercall" {
				server = sp
			}
		}
		if server.Span == nil {
			return false
		}
		for _, sp := range spans {
			if sp.TraceID() == server.TraceID() {
				inTrace = append(inTrace, sp)
				byID[string(sp.SpanId)] = sp
			}
		}
		for _, sp := range inTrace {
			if sp.Kind == tracepb.Span_SPAN_KIND_CLIENT && strings.HasPrefix(sp.Attr("http.response.status_code"), "2") &&
				strings.Contains(sp.Attr("url.full"), "/v1/call-logs") { // Kylas's create call log
				created = sp
			}
		}
		// The create's parent (the retry consumer's span) ends after it, and may be
		// exported in a later batch: wait for both.
		return created.Span != nil && byID[string(created.ParentSpanId)].Span != nil
	})
	t.Logf("trace %s: %v", server.TraceID(), telemetrytest.Names(inTrace))

	kinds := func(k tracepb.Span_SpanKind, topic string) []telemetrytest.Span {
		var out []telemetrytest.Span
		for _, sp := range inTrace {
			if sp.Kind == k && sp.Attr("messaging.destination.name") == topic {
				out = append(out, sp)
			}
		}
		return out
	}
	publishLog, processLog := kinds(tracepb.Span_SPAN_KIND_PRODUCER, s.env.Topics.Log), kinds(tracepb.Span_SPAN_KIND_CONSUMER, s.env.Topics.Log)
	publishRetry, processRetry := kinds(tracepb.Span_SPAN_KIND_PRODUCER, s.env.Topics.Retry), kinds(tracepb.Span_SPAN_KIND_CONSUMER, s.env.Topics.Retry)
	require.Len(t, publishLog, 1, "one publish of the call log: %v", telemetrytest.Names(inTrace))
	require.Len(t, processLog, 1, "the writer took the call log once")
	require.NotEmpty(t, publishRetry, "the failed write went to the retry topic in the same trace")
	require.NotEmpty(t, processRetry, "the retry consumer continued the trace")

	assert.Equal(t, server.SpanId, publishLog[0].ParentSpanId, "the publish is the webhook's child")
	assert.Equal(t, publishLog[0].SpanId, processLog[0].ParentSpanId, "the writer continues the trace from the message headers")
	assert.Equal(t, processLog[0].SpanId, publishRetry[0].ParentSpanId, "the retry publish is the consumer's child")
	assert.Equal(t, publishRetry[len(publishRetry)-1].SpanId, processRetry[len(processRetry)-1].ParentSpanId, "the retry consumer continues the retry message's trace")
	assert.Equal(t, processRetry[len(processRetry)-1].SpanId, created.ParentSpanId, "the CRM create is the retry consumer's child")
	failed := 0
	for _, sp := range inTrace {
		if sp.Kind == tracepb.Span_SPAN_KIND_CLIENT && sp.Attr("http.response.status_code") == "503" {
			failed++
			assert.Equal(t, processLog[0].SpanId, sp.ParentSpanId, "the failed CRM request is the first consumer span's child")
		}
	}
	assert.NotZero(t, failed, "the failed CRM request is in the trace")
	for _, sp := range inTrace {
		assert.Equal(t, "calltrack-e2e", sp.Service)
	}
}
