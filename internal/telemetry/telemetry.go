// Package telemetry is calltrack's OpenTelemetry tracing: the engineer's view of one call
// from the webhook through Kafka to the writer and the CRM request (the call trace in
// Redis stays the support view). It is off unless an OTLP endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): then spans go out
// over OTLP/HTTP, configured by the standard OTEL_* variables (headers, TLS, timeout,
// sampler). The trace context crosses Kafka as W3C headers (traceparent, tracestate) on
// each message; logs carry the trace id.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// tracing is whether Setup installed a tracer provider; until it does (and in a
// process that traces nothing) Publish makes no span of its own.
var tracing atomic.Bool

// Name is the instrumentation scope of calltrack's own spans.
const Name = "github.com/calltrack/calltrack"

// Enabled reports whether an OTLP endpoint is configured (and the SDK not disabled).
func Enabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs this process's tracer provider and the W3C propagator. role names the
// subcommand (serve, work, sync, dev): the service is "calltrack-<role>" unless
// OTEL_SERVICE_NAME says otherwise. With no endpoint configured it installs nothing
// and every span is a no-op. shutdown flushes the spans not yet exported.
func Setup(ctx context.Context, role, version string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !Enabled() {
		tracing.Store(false)
		return func(context.Context) error { return nil }, nil
	}
	tracing.Store(true)
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName("calltrack-"+role), semconv.ServiceVersion(version)))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) && !errors.Is(err, resource.ErrSchemaURLConflict) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	if os.Getenv("OTEL_SERVICE_NAME") != "" { // the standard variable wins
		if env, eerr := resource.New(ctx, resource.WithFromEnv()); eerr == nil {
			res, _ = resource.Merge(res, env)
		}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// Tracer is calltrack's tracer (the global provider's: a no-op until Setup enables it).
func Tracer() trace.Tracer { return otel.Tracer(Name) }

// Handler wraps the HTTP server's handler: a server span per request, continuing a
// trace the caller sent (traceparent). With tracing off it is h itself: the wrapper's
// no-op spans cost ~4 % of serve's CPU per webhook (BENCHMARKS.md section 1).
func Handler(h http.Handler) http.Handler {
	if !Enabled() {
		return h
	}
	return otelhttp.NewHandler(h, "http", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return r.Method + " " + r.URL.Path
	}))
}

// Transport wraps an HTTP client's transport (the CRM clients): a client span per
// request, and its trace context in the request's headers.
func Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return otelhttp.NewTransport(rt)
}

// RouteName renames the current server span after the route that served it (Echo's
// path pattern, e.g. "POST /webhooks/myoperator/:tenant/aftercall"), so spans group by
// endpoint rather than by tenant and call.
func RouteName(ctx context.Context, method, route string) {
	if route != "" {
		trace.SpanFromContext(ctx).SetName(method + " " + route)
	}
}

// TraceID is the id of ctx's trace, or "" outside one.
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// Event adds trace_id and span_id of ctx's span to one log line, when there is one.
func Event(ctx context.Context, ev *zerolog.Event) *zerolog.Event {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return ev.Str("trace_id", sc.TraceID().String()).Str("span_id", sc.SpanID().String())
	}
	return ev
}

// Log adds trace_id and span_id of ctx's span to a logger's context, when there is one.
func Log(ctx context.Context, l zerolog.Context) zerolog.Context {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return l.Str("trace_id", sc.TraceID().String()).Str("span_id", sc.SpanID().String())
	}
	return l
}
