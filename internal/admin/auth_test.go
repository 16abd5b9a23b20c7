package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/authlimit"
	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

// The admin API as a tenant admin, an operator of the tenants file and the
// CALLTRACK_ADMIN_TOKEN operator see it; plus a route another package mounts through
// the auth hook.
func TestTenantScopedTokens(t *testing.T) {
	env := testenv.New(t)
	reg := tenant.NewRegistry(&tenant.Tenant{ID: "acme"}, &tenant.Tenant{ID: "beta"})
	_, err := reg.WithAdmins(tenant.Admin{Name: "acme-admin", Tenant: "acme", Token: "acme-admin-token"},
		tenant.Admin{Name: "alice", Token: "alice-operator-token"})
	require.NoError(t, err)
	api := &API{Auth: &Auth{Tenants: reg, Token: "env-operator-token"}, Tenants: reg,
		Mappings: mapping.NewStore(env.Redis, env.Prefix), Trace: trace.New(env.Redis, env.Prefix), Log: zerolog.Nop()}
	e := web.New(zerolog.Nop(), nil, nil)
	api.Register(e)
	var mountedBy string
	e.Group("/admin/v1", api.RequireAdmin).POST("/tenants/:tenant/backfill", func(c echo.Context) error {
		mountedBy = FromContext(c).Name
		return c.NoContent(http.StatusAccepted)
	})

	do := func(method, path, token, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	cases := []struct {
		name, method, path, token, body string
		status                          int
		contains                        string
	}{
		{"no token", "GET", "/admin/v1/tenants/acme/mappings", "", "", 401, `"unauthorized"`},
		{"wrong token", "GET", "/admin/v1/tenants/acme/mappings", "acme-admin-tokenX", "", 401, `"unauthorized"`},
		{"tenant admin, own tenant", "GET", "/admin/v1/tenants/acme/mappings", "acme-admin-token", "", 200, `"mappings"`},
		{"tenant admin, other tenant", "GET", "/admin/v1/tenants/beta/mappings", "acme-admin-token", "", 403, "your token is for tenant acme only"},
		{"tenant admin, unknown tenant", "GET", "/admin/v1/tenants/nope/mappings", "acme-admin-token", "", 403, `"forbidden"`},
		{"tenant admin writes other tenant", "PUT", "/admin/v1/tenants/beta/mappings/a1", "acme-admin-token", `{"crm_user_id":"7"}`, 403, `"forbidden"`},
		{"tenant admin, mounted route, other tenant", "POST", "/admin/v1/tenants/beta/backfill", "acme-admin-token", "", 403, `"forbidden"`},
		{"tenant admin lists tenants", "GET", "/admin/v1/tenants", "acme-admin-token", "", 200, `{"tenants":["acme"]}`},
		{"operator lists tenants", "GET", "/admin/v1/tenants", "alice-operator-token", "", 200, `{"tenants":["acme","beta"]}`},
		{"operator, any tenant", "GET", "/admin/v1/tenants/beta/mappings", "alice-operator-token", "", 200, `"mappings"`},
		{"operator, unknown tenant", "GET", "/admin/v1/tenants/nope/mappings", "alice-operator-token", "", 404, `"unknown_tenant"`},
		{"CALLTRACK_ADMIN_TOKEN is an operator", "GET", "/admin/v1/tenants/beta/mappings", "env-operator-token", "", 200, `"mappings"`},
		// A wrong method meets the tenant check before its 405, as the right one does.
		{"tenant admin, other tenant, wrong method", "DELETE", "/admin/v1/tenants/beta/mappings", "acme-admin-token", "", 403, `"forbidden"`},
		{"tenant admin, other tenant, OPTIONS", "OPTIONS", "/admin/v1/tenants/beta/calls/x", "acme-admin-token", "", 403, `"forbidden"`},
		{"tenant admin, escaped other tenant, wrong method", "PATCH", "/admin/v1/tenants/b%65ta/mappings/a1", "acme-admin-token", "", 403, `"forbidden"`},
		{"tenant admin, own tenant, wrong method", "DELETE", "/admin/v1/tenants/acme/mappings", "acme-admin-token", "", 405, `"method_not_allowed"`},
		{"operator, unknown tenant, wrong method", "DELETE", "/admin/v1/tenants/nope/calls/x", "alice-operator-token", "", 404, `"unknown_tenant"`},
		{"operator, wrong method", "DELETE", "/admin/v1/tenants/beta/mappings", "alice-operator-token", "", 405, `"method_not_allowed"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := do(c.method, c.path, c.token, c.body)
			assert.Equal(t, c.status, status, body)
			assert.Contains(t, body, c.contains)
		})
	}

	status, _ := do("POST", "/admin/v1/tenants/acme/backfill", "acme-admin-token", "")
	assert.Equal(t, http.StatusAccepted, status)
	assert.Equal(t, "acme-admin", mountedBy, "a mounted route knows who acts")

	// The journal says who changed a mapping.
	status, body := do("PUT", "/admin/v1/tenants/acme/mappings/a1", "acme-admin-token", `{"crm_user_id":"7","phones":["8586848544"]}`)
	require.Equal(t, http.StatusOK, status, body)
	var m call.Mapping
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	assert.Equal(t, "admin-api:acme-admin", m.UpdatedBy)
	assert.Equal(t, []string{"+918586848544"}, m.Phones)
}

func TestCurrentEndsWithRotatedToken(t *testing.T) {
	reg := tenant.NewRegistry(&tenant.Tenant{ID: "acme"})
	_, err := reg.WithAdmins(tenant.Admin{Name: "acme-admin", Tenant: "acme", Token: "old-token"})
	require.NoError(t, err)
	a := &Auth{Tenants: reg, Token: "op-token"}
	assert.NotNil(t, a.Current("acme-admin", Fingerprint("old-token")))
	assert.Nil(t, a.Current("acme-admin", Fingerprint("new-token")), "a session of a rotated token is over")
	assert.Nil(t, a.Current("gone", Fingerprint("old-token")))
	assert.NotNil(t, a.Current(OperatorName, Fingerprint("op-token")))
}

// Wrong bearer tokens from one client get 429 with Retry-After after the limit, and so
// does that client's right token (or guessing would go on behind the 429s); other
// clients' right tokens still get in, and right tokens are never counted.
func TestWrongTokensAreLimitedPerClient(t *testing.T) {
	const guesser, admin = "198.51.100.7", "198.51.100.8"
	type req struct {
		client, token string
		status        int
	}
	repeat := func(n int, r req) []req {
		out := make([]req, n)
		for i := range out {
			out[i] = r
		}
		return out
	}
	for _, tc := range []struct {
		name string
		reqs []req
	}{
		{"wrong tokens: 401 ×10, then 429", append(repeat(10, req{guesser, "guess", 401}),
			req{guesser, "guess", 429}, req{guesser, "guess", 429})},
		{"the guesser's right token is refused too", append(repeat(10, req{guesser, "guess", 401}),
			req{guesser, "alice-operator-token", 429})},
		{"another client's right token gets in", append(repeat(11, req{guesser, "guess", 0}),
			req{admin, "alice-operator-token", 200}, req{admin, "acme-admin-token", 200})},
		{"right tokens are not counted", append(repeat(30, req{guesser, "alice-operator-token", 200}),
			append(repeat(10, req{guesser, "guess", 401}), req{guesser, "guess", 429})...)},
		{"no token is no guess", append(repeat(20, req{guesser, "", 401}), req{guesser, "alice-operator-token", 200})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			reg := tenant.NewRegistry(&tenant.Tenant{ID: "acme"})
			_, err := reg.WithAdmins(tenant.Admin{Name: "acme-admin", Tenant: "acme", Token: "acme-admin-token"},
				tenant.Admin{Name: "alice", Token: "alice-operator-token"})
			require.NoError(t, err)
			api := &API{Auth: &Auth{Tenants: reg, Token: "env-operator-token", Attempts: authlimit.New(env.Redis, env.Prefix, zerolog.Nop())},
				Tenants: reg, Mappings: mapping.NewStore(env.Redis, env.Prefix), Trace: trace.New(env.Redis, env.Prefix), Log: zerolog.Nop()}
			e := web.New(zerolog.Nop(), nil, nil)
			api.Register(e)
			for i, r := range tc.reqs {
				req := httptest.NewRequest(http.MethodGet, "/admin/v1/tenants/acme/mappings", nil)
				req.RemoteAddr = r.client + ":40000"
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i)) // forged: no proxy is trusted
				if r.token != "" {
					req.Header.Set("Authorization", "Bearer "+r.token)
				}
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				if r.status == 0 {
					continue
				}
				require.Equal(t, r.status, rec.Code, "request %d: %+v: %s", i+1, r, rec.Body)
				if r.status == http.StatusTooManyRequests {
					retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
					require.NoError(t, err, "Retry-After")
					assert.True(t, retry > 0 && retry <= 60, "Retry-After %d", retry)
					assert.JSONEq(t, fmt.Sprintf(`{"error":{"code":"rate_limited","message":"too many failed authentications from your address; try again in %d s"}}`, retry),
						rec.Body.String())
				}
			}
		})
	}
}

// A guessing client's lockout is in the log once, naming its address and the admin
// API, never the tokens it tried; its further guesses add no line.
func TestRefusedClientLogged(t *testing.T) {
	env := testenv.New(t)
	reg := tenant.NewRegistry(&tenant.Tenant{ID: "acme"})
	var logged bytes.Buffer
	api := &API{Auth: &Auth{Tenants: reg, Token: "env-operator-token", Attempts: authlimit.New(env.Redis, env.Prefix, zerolog.New(&logged))},
		Tenants: reg, Mappings: mapping.NewStore(env.Redis, env.Prefix), Trace: trace.New(env.Redis, env.Prefix), Log: zerolog.Nop()}
	e := web.New(zerolog.Nop(), nil, nil)
	api.Register(e)
	for i := range authlimit.PerMinute + 5 {
		req := httptest.NewRequest(http.MethodGet, "/admin/v1/tenants/acme/mappings", nil)
		req.RemoteAddr = "198.51.100.7:40000"
		req.Header.Set("Authorization", fmt.Sprintf("Bearer guess-%d", i))
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		require.Equal(t, i >= authlimit.PerMinute, rec.Code == http.StatusTooManyRequests, "request %d: %d", i+1, rec.Code)
	}
	log := logged.String()
	assert.Equal(t, 1, strings.Count(log, `"message":"too many failed authentications: client refused"`), log)
	assert.Contains(t, log, `"client":"198.51.100.7","surface":"admin-api"`)
	assert.NotContains(t, log, "guess-")
}
