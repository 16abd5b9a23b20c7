// Package web builds the Echo server every HTTP role shares: JSON errors, request ids,
// access logs, body limit, the client's address, health, readiness and metrics
// endpoints.
package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/telemetry"
)

// MaxBody is the largest request body accepted (MyOperator payloads are a few KiB).
const MaxBody = 1 << 20

// MyOperatorWebhooks begins the routes of MyOperator's webhooks, which bound their
// bodies themselves (ingest's readBody); every other route, Zoho's click-to-dial
// callback too, is bounded by the body-limit middleware.
const MyOperatorWebhooks = "/webhooks/myoperator/"

// SignedLinks begins the short recording links, /r/<tenant>/<call>/<token>: the token
// is a credential (the link plays the call's audio), so no log holds what follows the
// call id, whether the route matched or not (a 405, a percent-encoded token).
const SignedLinks = "/r/"

// Error is an HTTP error with calltrack's JSON body {"error":{"code","message"}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error.
func Errorf(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Check is a readiness probe: nil is "ok"; a *Note is ready with something to say
// (e.g. "spool": Kafka is down but calls are kept); any other error is not ready.
type Check func(ctx context.Context) error

// Option changes a default of New.
type Option func(*options)

type options struct {
	readyDetails   func(echo.Context) bool
	trustedProxies []netip.Prefix
}

// WithTrustedProxies takes the client's address (c.RealIP: rate limits, logs) from
// X-Forwarded-For when the request comes from one of these ranges (an ingress
// controller): the nearest address in it not in them. Without it, and for requests
// from anywhere else, the client is the connection's peer and forwarding headers are
// ignored — any client can write them.
func WithTrustedProxies(ranges ...netip.Prefix) Option {
	return func(o *options) { o.trustedProxies = ranges }
}

// ipExtractor reads the client's address: the peer's, or X-Forwarded-For's behind the
// trusted proxies only. Echo's XFF reader trusts private, loopback and link-local
// peers by default; here only the ranges given are.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// RetryAfter sets the Retry-After header to d in whole seconds (rounded up, at least 1)
// and returns them.
func RetryAfter(c echo.Context, d time.Duration) int {
	s := max(int((d+time.Second-1)/time.Second), 1)
	c.Response().Header().Set("Retry-After", strconv.Itoa(s))
	return s
}

// WithReadyDetails lets callers for whom fn is true (signed-in operators) see each
// readiness check's error; everyone else gets the status only (errors can name hosts
// and settings).
func WithReadyDetails(fn func(echo.Context) bool) Option {
	return func(o *options) { o.readyDetails = fn }
}

// Note is a readiness answer that leaves the process ready, shown instead of "ok".
type Note struct{ Text string }

func (n *Note) Error() string { return n.Text }

// Notef returns a *Note.
func Notef(format string, args ...any) error { return &Note{Text: fmt.Sprintf(format, args...)} }

// readiness runs the checks: ready when none failed; each check's answer by name. A
// failed check is logged (its error goes to operators only).
func readiness(ctx context.Context, checks map[string]Check, log zerolog.Logger) (ready bool, answers map[string]string) {
	answers, ready = map[string]string{}, true
	for name, check := range checks {
		err := check(ctx)
		var note *Note
		switch {
		case err == nil:
			answers[name] = "ok"
		case errors.As(err, &note):
			answers[name] = note.Text
		default:
			answers[name], ready = err.Error(), false
			log.Warn().Str("check", name).Err(err).Msg("not ready")
		}
	}
	return ready, answers
}

// New returns an Echo with calltrack's defaults. ready lists the readiness checks.
func New(log zerolog.Logger, m *metrics.Metrics, ready map[string]Check, opts ...Option) *echo.Echo {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = ipExtractor(o.trustedProxies)
	e.HTTPErrorHandler = errorHandler(log)
	e.Use(middleware.RequestID())
	e.Use(middleware.Recover())
	e.Use(accessLog(log))
	e.Use(spanName)
	// Webhooks read their bodies under the same bound themselves (ingest's readBody), so
	// a payload over it is counted in their outcomes, not answered before them.
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: "1M",
		Skipper: func(c echo.Context) bool { return strings.HasPrefix(c.Path(), MyOperatorWebhooks) }}))

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
		defer cancel()
		ok, res := readiness(ctx, ready, log)
		body := map[string]any{"status": "ready"}
		if o.readyDetails != nil && o.readyDetails(c) {
			body["checks"] = res
		}
		if !ok {
			body["status"] = "not ready"
			return c.JSON(http.StatusServiceUnavailable, body)
		}
		return c.JSON(http.StatusOK, body)
	})
	if m != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})))
	}
	return e
}

func errorHandler(log zerolog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var we *Error
		var he *echo.HTTPError
		switch {
		case errors.As(err, &we):
		case errors.As(err, &he):
			if he.Code == http.StatusNotFound {
				if allow := allowedMethods(c); allow != "" {
					c.Response().Header().Set(echo.HeaderAllow, allow)
					if c.Request().Method == http.MethodOptions {
						_ = c.NoContent(http.StatusNoContent) // as Echo's router answers OPTIONS
						return
					}
					he = echo.ErrMethodNotAllowed
				}
			}
			we = &Error{Status: he.Code, Code: codeFor(he.Code), Message: http.StatusText(he.Code)}
			if msg, ok := he.Message.(string); ok && msg != "" {
				we.Message = msg
			}
			switch he.Code {
			case http.StatusRequestEntityTooLarge:
				we.Message = "request body is larger than 1 MiB"
			case http.StatusMethodNotAllowed:
				we.Message = c.Request().Method + " is not allowed here; allowed: " + c.Response().Header().Get(echo.HeaderAllow)
			}
		default:
			log.Error().Err(err).Str("path", c.Path()).Msg("unhandled error")
			we = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(we.Status)
			return
		}
		_ = c.JSON(we.Status, map[string]*Error{"error": we})
	}
}

// routedMethods are the methods a 404's path is tried with, in the order Echo's router
// lists them in Allow (after OPTIONS).
var routedMethods = []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodPost, http.MethodPut}

// allowedMethods is the Allow header of a request answered 404 by a group's catch-all
// while its path has routes for other methods; "" when it has none, or when a handler
// of the request's own route answered 404. Echo registers a catch-all under every group
// with middleware (the admin API's, the console's), so that the middleware runs for
// unknown paths too, and its router prefers that catch-all's 404 to the 405 it answers
// elsewhere. Asked here, in the one error handler, every group gets the 405 — its
// middleware (authentication) still runs first — and plain routes keep Echo's.
func allowedMethods(c echo.Context) string {
	e, req := c.Echo(), c.Request()
	routes := map[string]bool{}
	for _, r := range e.Routes() {
		routes[r.Method+" "+r.Path] = true
	}
	if routes[req.Method+" "+c.Path()] {
		return "" // a route's own handler said not found
	}
	path := echo.GetPath(req)
	var allow []string
	for _, m := range routedMethods {
		probe := e.NewContext(req, nil)
		e.Router().Find(m, path, probe)
		if m != req.Method && routes[m+" "+probe.Path()] {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return ""
	}
	return http.MethodOptions + ", " + strings.Join(allow, ", ")
}

func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusServiceUnavailable:
		return "unavailable"
	default:
		return "error"
	}
}

// spanName names the request's trace span after its route (the path pattern), so
// spans group by endpoint, not by tenant and call id.
func spanName(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		telemetry.RouteName(c.Request().Context(), c.Request().Method, c.Path())
		return next(c)
	}
}

// redactToken hides a signed link's token: everything after /r/<tenant>/<call>/, in the
// decoded path (an encoded slash in a call id only hides more).
func redactToken(path string) string {
	rest, ok := strings.CutPrefix(path, SignedLinks)
	if !ok {
		return path
	}
	tenant, rest, _ := strings.Cut(rest, "/")
	callID, _, hasToken := strings.Cut(rest, "/")
	if !hasToken {
		return path
	}
	return SignedLinks + tenant + "/" + callID + "/[token]"
}

// accessLog logs one line per request, without the query string: it can carry the
// webhook token.
func accessLog(log zerolog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			req, res := c.Request(), c.Response()
			if req.URL.Path == "/healthz" || req.URL.Path == "/readyz" || req.URL.Path == "/metrics" {
				return nil
			}
			lvl := zerolog.DebugLevel
			if res.Status >= 500 {
				lvl = zerolog.ErrorLevel
			} else if res.Status >= 400 {
				lvl = zerolog.InfoLevel
			}
			ev := log.WithLevel(lvl)
			if ev == nil {
				return nil // a 2xx below the log level: nothing to format
			}
			path := redactToken(req.URL.Path)
			telemetry.Event(req.Context(), ev.Str("request_id", res.Header().Get(echo.HeaderXRequestID)).
				Str("method", req.Method).Str("path", path).Int("status", res.Status).
				Dur("took", time.Since(start))).Msg("http")
			return nil
		}
	}
}
