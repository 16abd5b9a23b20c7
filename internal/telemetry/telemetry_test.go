package telemetry_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/telemetry/telemetrytest"
)

func restoreGlobals(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTracerProvider(tp); otel.SetTextMapPropagator(prop) })
}

// One webhook's trace, through the same wiring the roles use: the HTTP server span,
// the Kafka publish with the context in the message's headers, the consumer that
// continues it, and the CRM request (whose server sees the trace too) — all one trace,
// exported over OTLP to the configured endpoint.
func TestOneTraceFromWebhookThroughKafkaToCRM(t *testing.T) {
	restoreGlobals(t)
	rcv := telemetrytest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	shutdown, err := telemetry.Setup(context.Background(), "test", "v0-test")
	require.NoError(t, err)

	var crmTraceparent string
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		crmTraceparent = r.Header.Get("traceparent")
		w.WriteHeader(http.StatusCreated)
	}))
	defer crm.Close()
	crmClient := &http.Client{Transport: telemetry.Transport(nil)}

	var topic []kafka.Message // the broker, as far as the trace is concerned
	var logged bytes.Buffer
	webhook := telemetry.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		telemetry.RouteName(r.Context(), r.Method, "/webhooks/myoperator/:tenant/aftercall")
		log := telemetry.Log(r.Context(), zerolog.New(&logged).With()).Logger()
		log.Info().Msg("accepted")
		msgs := []kafka.Message{{Topic: "calltrack.call.log.v1", Key: []byte("acme:n2.1"), Value: []byte("{}"),
			Headers: []kafka.Header{{Key: "tenant", Value: []byte("acme")}}}}
		_, span := telemetry.Publish(r.Context(), msgs)
		topic = append(topic, msgs...) // acks=all
		telemetry.End(span, nil)
		w.WriteHeader(http.StatusOK)
	}))
	srv := httptest.NewServer(webhook)
	defer srv.Close()
	res, err := http.Post(srv.URL+"/webhooks/myoperator/acme/aftercall", "application/json", nil)
	require.NoError(t, err)
	res.Body.Close()
	require.Len(t, topic, 1)
	assert.Equal(t, "acme", string(topic[0].Headers[0].Value), "the message's own headers are kept")

	write := telemetry.Consume(func(ctx context.Context, m kafka.Message) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, crm.URL+"/v1/call-logs", nil)
		res, err := crmClient.Do(req)
		if err != nil {
			return err
		}
		return res.Body.Close()
	})
	require.NoError(t, write(context.Background(), topic[0]))
	require.NoError(t, shutdown(context.Background()))

	spans := rcv.Spans()
	byName := map[string]telemetrytest.Span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	require.Len(t, spans, 4, "server, publish, process, CRM request: %v", telemetrytest.Names(spans))
	server, ok := byName["POST /webhooks/myoperator/:tenant/aftercall"]
	require.True(t, ok, "%v", telemetrytest.Names(spans))
	publish, process := byName["publish calltrack.call.log.v1"], byName["process calltrack.call.log.v1"]
	require.NotNil(t, publish.Span)
	require.NotNil(t, process.Span)
	var client telemetrytest.Span
	for _, s := range spans {
		if s.Kind == tracepb.Span_SPAN_KIND_CLIENT {
			client = s
		}
	}
	require.NotNil(t, client.Span)
	for _, s := range spans {
		assert.Equal(t, server.TraceId, s.TraceId, "%s is in the webhook's trace", s.Name)
	}
	assert.Equal(t, server.SpanId, publish.ParentSpanId, "publish under the webhook")
	assert.Equal(t, publish.SpanId, process.ParentSpanId, "the writer continues the publish's context from the headers")
	assert.Equal(t, process.SpanId, client.ParentSpanId, "the CRM request under the writer")
	assert.Contains(t, crmTraceparent, server.TraceID(), "the CRM sees the trace in traceparent")
	assert.Contains(t, logged.String(), `"trace_id":"`+server.TraceID()+`"`, "logs carry the trace id")
	assert.Equal(t, "calltrack-test", server.Service)
}

// Without an endpoint nothing is recorded, nothing is sent, and messages get no trace
// headers.
func TestOffWithoutEndpoint(t *testing.T) {
	restoreGlobals(t)
	otel.SetTracerProvider(noop.NewTracerProvider())
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	assert.False(t, telemetry.Enabled())
	shutdown, err := telemetry.Setup(context.Background(), "test", "v0-test")
	require.NoError(t, err)
	defer shutdown(context.Background())
	msgs := []kafka.Message{{Topic: "t"}}
	ctx, span := telemetry.Publish(context.Background(), msgs)
	telemetry.End(span, nil)
	assert.False(t, span.IsRecording())
	assert.Empty(t, msgs[0].Headers)
	assert.Empty(t, telemetry.TraceID(ctx))
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_SDK_DISABLED", "true")
	assert.False(t, telemetry.Enabled(), "OTEL_SDK_DISABLED wins")
}

// A message that already carries a trace context (a retry, a replay) gets the new one,
// not a second traceparent.
func TestInjectReplacesHeaders(t *testing.T) {
	restoreGlobals(t)
	rcv := telemetrytest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	shutdown, err := telemetry.Setup(context.Background(), "test", "v0-test")
	require.NoError(t, err)
	defer shutdown(context.Background())
	m := kafka.Message{Headers: []kafka.Header{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}}
	ctx, span := telemetry.Tracer().Start(context.Background(), "retry")
	defer span.End()
	telemetry.Inject(ctx, &m)
	n := 0
	for _, h := range m.Headers {
		if h.Key == "traceparent" {
			n++
			assert.Contains(t, string(h.Value), telemetry.TraceID(ctx))
		}
	}
	assert.Equal(t, 1, n)
	assert.Equal(t, telemetry.TraceID(ctx), telemetry.TraceID(telemetry.Extract(context.Background(), m)))
}
