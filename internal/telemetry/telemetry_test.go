package telemetry_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/calltrack/calltrack/internal/telemetry"
)

// receiver is an in-process OTLP/HTTP trace receiver: what a collector would get.
type receiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	svc   []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	body, _ := io.ReadAll(req.Body)
	var in coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range in.ResourceSpans {
		for _, a := range rs.Resource.Attributes {
			if a.Key == "service.name" {
				r.svc = append(r.svc, a.Value.GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			r.spans = append(r.spans, ss.Spans...)
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(b)
}

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
	rcv := &receiver{}
	collector := httptest.NewServer(rcv)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
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

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	byName := map[string]*tracepb.Span{}
	for _, s := range rcv.spans {
		byName[s.Name] = s
	}
	require.Len(t, rcv.spans, 4, "server, publish, process, CRM request: %v", names(rcv.spans))
	server := byName["POST /webhooks/myoperator/:tenant/aftercall"]
	publish := byName["publish calltrack.call.log.v1"]
	process := byName["process calltrack.call.log.v1"]
	require.NotNil(t, server, "%v", names(rcv.spans))
	require.NotNil(t, publish)
	require.NotNil(t, process)
	var client *tracepb.Span
	for _, s := range rcv.spans {
		if s.Kind == tracepb.Span_SPAN_KIND_CLIENT {
			client = s
		}
	}
	require.NotNil(t, client)
	for _, s := range rcv.spans {
		assert.Equal(t, server.TraceId, s.TraceId, "%s is in the webhook's trace", s.Name)
	}
	assert.Equal(t, server.SpanId, publish.ParentSpanId, "publish under the webhook")
	assert.Equal(t, publish.SpanId, process.ParentSpanId, "the writer continues the publish's context from the headers")
	assert.Equal(t, process.SpanId, client.ParentSpanId, "the CRM request under the writer")
	assert.Contains(t, crmTraceparent, hexID(server.TraceId), "the CRM sees the trace in traceparent")
	assert.Contains(t, logged.String(), `"trace_id":"`+hexID(server.TraceId)+`"`, "logs carry the trace id")
	assert.Contains(t, rcv.svc, "calltrack-test")
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
	rcv := &receiver{}
	collector := httptest.NewServer(rcv)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
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

func names(ss []*tracepb.Span) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Name
	}
	return out
}

func hexID(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
