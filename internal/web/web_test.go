package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
)

// /readyz tells the public only whether calltrack is ready; the failing check's error
// (which can name hosts and settings) goes to the log and to operators.
func TestReadyzDetailsOnlyForOperators(t *testing.T) {
	var logs bytes.Buffer
	checks := map[string]Check{
		"kafka": func(context.Context) error { return nil },
		"redis": func(context.Context) error { return errors.New("dial tcp redis.internal:6379: connection refused") },
	}
	e := New(zerolog.New(&logs), nil, checks, WithReadyDetails(func(c echo.Context) bool {
		return c.Request().Header.Get("Authorization") == "Bearer op"
	}))
	get := func(auth string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	status, body := get("")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.JSONEq(t, `{"status":"not ready"}`, body)
	status, body = get("Bearer op")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.JSONEq(t, `{"status":"not ready","checks":{"kafka":"ok","redis":"dial tcp redis.internal:6379: connection refused"}}`, body)
	assert.Contains(t, logs.String(), "redis.internal:6379", "the log has the details")
}

// The access log never holds a route's token: a recording link's path is the link
// itself, and a logged one would give the call's audio to whoever reads the log.
func TestAccessLogHidesARoutesToken(t *testing.T) {
	var logs bytes.Buffer
	e := New(zerolog.New(&logs).Level(zerolog.DebugLevel), nil, nil)
	e.GET("/r/:tenant/:call/:token", func(c echo.Context) error { return c.NoContent(http.StatusForbidden) })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/r/acme/n2.1596270949.2175190/Zm9vYmFyc2lnbmF0dXJlMTIz", nil))
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Contains(t, logs.String(), `"path":"/r/acme/n2.1596270949.2175190/[token]"`)
	assert.NotContains(t, logs.String(), "Zm9vYmFyc2lnbmF0dXJlMTIz")

	// Nor when no route matched the request: a wrong method (405), a percent-encoded
	// token (the raw path is not the decoded one), a token with a trailing segment.
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/r/acme/n2.1596270949.2175190/Zm9vYmFyc2lnbmF0dXJlMTIz", nil),
		httptest.NewRequest(http.MethodDelete, "/r/acme/n2.1596270949.2175190/Zm9vYmFyc2lnbmF0dXJlMTIz", nil),
		httptest.NewRequest(http.MethodGet, "/r/acme/n2.1596270949.2175190/%5Am9vYmFyc2lnbmF0dXJlMTIz", nil),
		httptest.NewRequest(http.MethodGet, "/r/acme/n2.1596270949.2175190/Zm9vYmFyc2lnbmF0dXJlMTIz/x", nil),
	} {
		logs.Reset()
		e.ServeHTTP(httptest.NewRecorder(), r)
		assert.Contains(t, logs.String(), `"path":"/r/acme/n2.1596270949.2175190/[token]"`, r.Method+" "+r.URL.RawPath)
		assert.NotContains(t, logs.String(), "m9vYmFyc2lnbmF0dXJlMTIz", r.Method+" "+r.URL.String())
	}
}

// The client's address (rate limits, logs) is the connection's peer: X-Forwarded-For
// counts only from a proxy in CALLTRACK_TRUSTED_PROXIES's ranges — not from any
// private address, as Echo's own default would have it.
func TestClientAddress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		peer    string
		xff     string
		want    string
	}{
		{"no proxies: a forged header is ignored", nil, "203.0.113.7", "10.0.0.1", "203.0.113.7"},
		{"no proxies: a private peer's header too", nil, "10.1.2.3", "198.51.100.9", "10.1.2.3"},
		{"behind the ingress: its client", []string{"10.244.0.0/16"}, "10.244.1.5", "198.51.100.9", "198.51.100.9"},
		{"behind the ingress: what the client wrote itself is skipped", []string{"10.244.0.0/16"}, "10.244.1.5", "10.0.0.1, 198.51.100.9", "198.51.100.9"},
		{"behind the ingress, no header: the peer", []string{"10.244.0.0/16"}, "10.244.1.5", "", "10.244.1.5"},
		{"a peer outside the ranges is not trusted", []string{"10.244.0.0/16"}, "10.1.2.3", "198.51.100.9", "10.1.2.3"},
		{"a single address", []string{"192.0.2.10/32"}, "192.0.2.10", "198.51.100.9", "198.51.100.9"},
		{"IPv6", []string{"fd00::/8"}, "fd00::1", "2001:db8::5", "2001:db8::5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ranges []netip.Prefix
			for _, r := range tc.trusted {
				ranges = append(ranges, netip.MustParsePrefix(r))
			}
			e := New(zerolog.Nop(), nil, nil, WithTrustedProxies(ranges...))
			var got string
			e.GET("/ip", func(c echo.Context) error { got = c.RealIP(); return c.NoContent(http.StatusNoContent) })
			req := httptest.NewRequest(http.MethodGet, "/ip", nil)
			req.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(tc.peer), 40000).String()
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			req.Header.Set("X-Real-IP", "192.0.2.99") // never read
			e.ServeHTTP(httptest.NewRecorder(), req)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", 47 * time.Second: "47", 0: "1"} {
		c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
		RetryAfter(c, d)
		assert.Equal(t, want, c.Response().Header().Get("Retry-After"), "%s", d)
	}
}

// Only MyOperator's webhooks bound their bodies themselves (and count what is too
// large); every other route — Zoho's click-to-dial callback too, read before its token
// is checked — is answered 413 by the middleware.
func TestBodyLimitSkipsOnlyMyOperatorWebhooks(t *testing.T) {
	e := New(zerolog.Nop(), nil, nil)
	handled := map[string]bool{}
	for _, p := range []string{MyOperatorWebhooks + ":tenant/aftercall", "/webhooks/zoho/:tenant/clicktodial", "/admin/v1/x"} {
		e.POST(p, func(c echo.Context) error { handled[c.Path()] = true; return c.NoContent(http.StatusNoContent) })
	}
	big := bytes.Repeat([]byte("a"), MaxBody+1)
	for path, want := range map[string]int{
		"/webhooks/myoperator/acme/aftercall": http.StatusNoContent,
		"/webhooks/zoho/acme/clicktodial":     http.StatusRequestEntityTooLarge,
		"/admin/v1/x":                         http.StatusRequestEntityTooLarge,
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(big)))
		assert.Equal(t, want, rec.Code, path)
	}
	assert.Equal(t, map[string]bool{MyOperatorWebhooks + ":tenant/aftercall": true}, handled)
}

// A known path asked with a method it has no route for is 405 with Allow and the JSON
// error body, on every surface alike: plain routes (webhooks, click-to-call), where
// Echo's router answers it, and routes of a group with middleware (the admin API, the
// console), where Echo's catch-all for the group would answer 404. The group's
// middleware still runs first (a request without the admin's token is 401). An
// unknown path stays 404, and so does a handler's own 404.
func TestWrongMethodIs405(t *testing.T) {
	e := New(zerolog.Nop(), nil, nil)
	noContent := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	auth := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().Header.Get("Authorization") == "" {
				return Errorf(http.StatusUnauthorized, "unauthorized", "token required")
			}
			return next(c)
		}
	}
	e.POST("/webhooks/myoperator/:tenant/aftercall", noContent)
	e.POST("/api/v1/tenants/:tenant/calls", noContent)
	admin := e.Group("/admin/v1", auth)
	admin.GET("/tenants/:tenant/mappings/:user", noContent)
	admin.PUT("/tenants/:tenant/mappings/:user", noContent)
	admin.DELETE("/tenants/:tenant/mappings/:user", noContent)
	admin.GET("/tenants/:tenant/calls/:call", func(echo.Context) error { return echo.ErrNotFound })
	console := e.Group("/console", auth)
	tenantPages := console.Group("/tenants/:tenant", auth)
	tenantPages.GET("/overview", noContent)
	tenantPages.POST("/agents/map", noContent)

	for _, tc := range []struct {
		method, path string
		noAuth       bool
		status       int
		allow        string
	}{
		{http.MethodPatch, "/admin/v1/tenants/acme/mappings/a1", false, http.StatusMethodNotAllowed, "OPTIONS, DELETE, GET, PUT"},
		{http.MethodPost, "/admin/v1/tenants/acme/mappings/a1", false, http.StatusMethodNotAllowed, "OPTIONS, DELETE, GET, PUT"},
		{http.MethodDelete, "/admin/v1/tenants/acme/calls/c1", false, http.StatusMethodNotAllowed, "OPTIONS, GET"},
		{http.MethodPatch, "/admin/v1/tenants/acme/mappings/a1", true, http.StatusUnauthorized, ""},
		{http.MethodGet, "/admin/v1/tenants/acme/calls/c1", false, http.StatusNotFound, ""}, // the handler's own
		{http.MethodGet, "/admin/v1/tenants/acme/nothing", false, http.StatusNotFound, ""},
		{http.MethodPost, "/console/tenants/acme/overview", false, http.StatusMethodNotAllowed, "OPTIONS, GET"},
		{http.MethodGet, "/console/tenants/acme/agents/map", false, http.StatusMethodNotAllowed, "OPTIONS, POST"},
		{http.MethodGet, "/webhooks/myoperator/acme/aftercall", false, http.StatusMethodNotAllowed, "OPTIONS, POST"},
		{http.MethodDelete, "/api/v1/tenants/acme/calls", false, http.StatusMethodNotAllowed, "OPTIONS, POST"},
		{http.MethodHead, "/admin/v1/tenants/acme/calls/c1", false, http.StatusMethodNotAllowed, "OPTIONS, GET"},
		{http.MethodOptions, "/admin/v1/tenants/acme/mappings/a1", false, http.StatusNoContent, "OPTIONS, DELETE, GET, PUT"},
		{http.MethodOptions, "/api/v1/tenants/acme/calls", false, http.StatusNoContent, "OPTIONS, POST"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if !tc.noAuth {
				req.Header.Set("Authorization", "Bearer x")
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code, rec.Body.String())
			assert.Equal(t, tc.allow, rec.Header().Get(echo.HeaderAllow))
			if tc.status == http.StatusMethodNotAllowed && tc.method != http.MethodHead {
				assert.JSONEq(t, `{"error":{"code":"method_not_allowed","message":"`+tc.method+` is not allowed here; allowed: `+tc.allow+`"}}`,
					rec.Body.String())
			}
		})
	}
}
