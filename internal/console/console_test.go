package console

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/authlimit"
	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/usersync"
	"github.com/calltrack/calltrack/internal/web"
)

// fixture is a console over real Redis, with tenants acme and beta, operator "op"
// and acme's admin; opts are the server's (trusted proxies).
type fixture struct {
	t    *testing.T
	srv  *httptest.Server
	auth *admin.Auth
	ms   *mapping.Store
	c    *Console // its fields that handlers read per request (DeadLetters) may be set by a test
	tr   *trace.Store
	logs *testenv.LogBuffer // the console's log
	api  *admin.API
}

func newFixture(t *testing.T, opts ...web.Option) *fixture {
	env := testenv.New(t)
	reg := tenant.NewRegistry(&tenant.Tenant{ID: "acme", CRM: tenant.CRM{Kind: "kylas"}}, &tenant.Tenant{ID: "beta", CRM: tenant.CRM{Kind: "kylas"}})
	_, err := reg.WithAdmins(tenant.Admin{Name: "acme-admin", Tenant: "acme", Token: "acme-token"})
	require.NoError(t, err)
	auth := &admin.Auth{Tenants: reg, Token: "op-token", Attempts: authlimit.New(env.Redis, env.Prefix, zerolog.Nop())}
	ms := mapping.NewStore(env.Redis, env.Prefix)
	tr := trace.New(env.Redis, env.Prefix)
	logs := &testenv.LogBuffer{}
	api := &admin.API{Auth: auth, Tenants: reg, Mappings: ms, Trace: tr, Log: zerolog.Nop()}
	sync := &usersync.Service{Tenants: reg, Mappings: ms, Redis: env.Redis, Prefix: env.Prefix, Log: zerolog.Nop()}
	c := &Console{Auth: auth, Admin: api, Tenants: reg, Mappings: ms, Trace: tr, Sync: sync, Redis: env.Redis, Prefix: env.Prefix, Log: zerolog.New(logs)}
	e := web.New(zerolog.Nop(), nil, nil, opts...)
	require.NoError(t, c.Register(e))
	srv := httptest.NewTLSServer(e) // TLS: the session cookie is Secure
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, auth: auth, ms: ms, c: c, tr: tr, logs: logs, api: api}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// client is a browser-like client: a cookie jar, no redirects followed.
func (f *fixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: f.srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (f *fixture) get(c *http.Client, path string) (*http.Response, string) {
	res, err := c.Get(f.srv.URL + path)
	require.NoError(f.t, err)
	return res, body(res)
}

func (f *fixture) post(c *http.Client, path string, form url.Values) (*http.Response, string) {
	res, err := c.PostForm(f.srv.URL+path, form)
	require.NoError(f.t, err)
	return res, body(res)
}

func body(res *http.Response) string {
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// signIn signs c in with token and returns the session's CSRF token.
func (f *fixture) signIn(c *http.Client, token string) (*http.Response, string) {
	return f.signInVia(c, token, "")
}

// signInVia is signIn with an X-Forwarded-For header on the post ("": none).
func (f *fixture) signInVia(c *http.Client, token, xff string) (*http.Response, string) {
	_, page := f.get(c, "/console/sign-in")
	m := csrfField.FindStringSubmatch(page)
	require.NotNil(f.t, m, "the sign-in form has a CSRF field")
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/console/sign-in",
		strings.NewReader(url.Values{"csrf": {m[1]}, "token": {token}}.Encode()))
	require.NoError(f.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	res, err := c.Do(req)
	require.NoError(f.t, err)
	body(res)
	if res.StatusCode != http.StatusSeeOther {
		return res, ""
	}
	_, page = f.get(c, res.Header.Get("Location"))
	m = csrfField.FindStringSubmatch(page)
	require.NotNil(f.t, m, "signed-in pages carry the session's CSRF token")
	return res, m[1]
}

func TestSessionCookieAndSignOut(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	res, _ := f.get(c, "/console/tenants/acme/calls")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/console/sign-in?next=%2Fconsole%2Ftenants%2Facme%2Fcalls", res.Header.Get("Location"))

	res, csrf := f.signIn(c, "op-token")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	var session *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == SessionCookie {
			session = ck
		}
	}
	require.NotNil(t, session)
	assert.True(t, session.HttpOnly, "HttpOnly")
	assert.True(t, session.Secure, "Secure outside dev")
	assert.Equal(t, http.SameSiteLaxMode, session.SameSite)
	res, page := f.get(c, "/console/tenants/beta/calls")
	assert.Equal(t, http.StatusOK, res.StatusCode, "an operator sees every tenant")
	assert.Contains(t, page, "No calls in the last 7 days")

	res, _ = f.post(c, "/console/sign-out", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res, _ = f.get(c, "/console/tenants/beta/calls")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode, "signed out: back to sign-in")
}

func TestTenantAdminSeesOneTenant(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	res, _ := f.signIn(c, "acme-token")
	assert.Equal(t, "/console/tenants/acme/overview", res.Header.Get("Location"))
	res, page := f.get(c, "/console/tenants/beta/calls")
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Contains(t, page, "You are signed in as a tenant admin of acme, so you cannot see tenant beta.")
	res, _ = f.get(c, "/console/tenants/nope/calls")
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "nor learn which tenants exist")
	res, _ = f.get(c, "/console/tenants/acme/calls")
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

func TestFormsNeedTheSessionCSRFToken(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.ms.Put(t.Context(), "acme", call.Mapping{MyOperatorUserID: "a1", CRMUserID: "7", Source: call.MappingManual, Status: call.MappingActive}))
	c := f.client()
	_, csrf := f.signIn(c, "acme-token")
	for name, form := range map[string]url.Values{"none": {}, "wrong": {"csrf": {csrf + "x"}}} {
		res, page := f.post(c, "/console/tenants/acme/agents/a1/unmap", form)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, name)
		assert.Contains(t, page, "security token is missing or wrong", name)
	}
	// A same-origin browser header is no substitute for the token.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/console/tenants/acme/agents/a1/unmap", strings.NewReader(""))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	_, err = f.ms.Get(t.Context(), "acme", "a1")
	require.NoError(t, err, "nothing was unmapped")

	res, _ = f.post(c, "/console/tenants/acme/agents/a1/unmap", url.Values{"csrf": {csrf}})
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, err = f.ms.Get(t.Context(), "acme", "a1")
	assert.ErrorIs(t, err, mapping.ErrNotFound, "with the token, the unmap went through")

	// The sign-in form has its own token.
	res, _ = f.post(f.client(), "/console/sign-in", url.Values{"token": {"op-token"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
}

// A page or form asked with another method is 405 with Allow and the JSON error body,
// as on the admin API (the console's groups' catch-all used to answer 404), once the
// session and its CSRF token are checked; an unknown console path is still 404.
func TestWrongMethodIs405(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	_, csrf := f.signIn(c, "op-token")
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodPost, "/console/tenants/acme/overview", http.StatusMethodNotAllowed, "OPTIONS, GET"},
		{http.MethodDelete, "/console/tenants/acme/calls", http.StatusMethodNotAllowed, "OPTIONS, GET"},
		{http.MethodGet, "/console/tenants/acme/agents/map", http.StatusMethodNotAllowed, "OPTIONS, POST"},
		{http.MethodPut, "/console/sign-in", http.StatusMethodNotAllowed, "OPTIONS, GET, POST"},
		{http.MethodGet, "/console/tenants/acme/nothing", http.StatusNotFound, ""},
	} {
		req, err := http.NewRequest(tc.method, f.srv.URL+tc.path, nil)
		require.NoError(t, err)
		req.Header.Set("X-CSRF-Token", csrf)
		res, err := c.Do(req)
		require.NoError(t, err)
		page := body(res)
		require.Equal(t, tc.status, res.StatusCode, "%s %s: %s", tc.method, tc.path, page)
		assert.Equal(t, tc.allow, res.Header.Get("Allow"), "%s %s", tc.method, tc.path)
		if tc.status == http.StatusMethodNotAllowed {
			assert.JSONEq(t, `{"error":{"code":"method_not_allowed","message":"`+tc.method+` is not allowed here; allowed: `+tc.allow+`"}}`, page)
		}
	}
}

func TestSignInAttemptsAreRateLimited(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for i := range 10 {
		res, _ := f.signIn(c, "wrong-token")
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, "attempt %d", i+1)
	}
	res, _ := f.signIn(c, "op-token")
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode, "the 11th attempt in a minute waits, right token or not")
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
}

// The limit is per client: the connection's peer, unless it is a trusted proxy — then
// the client X-Forwarded-For names. A forged header gets no fresh budget, and the log
// names the real client.
func TestSignInLimitPerClient(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		xff     func(i int) string // the header of wrong sign-in i
		then    string             // a sign-in with the right token after them
		want    int                // its answer
		client  string             // the client the log names
	}{
		{"forged headers do not bypass it", nil, func(i int) string { return fmt.Sprintf("10.0.0.%d", i) },
			"10.0.0.99", http.StatusTooManyRequests, `"client":"127.0.0.1"`},
		{"behind a trusted proxy: one client's failures", []string{"127.0.0.0/8"}, func(int) string { return "198.51.100.7" },
			"198.51.100.7", http.StatusTooManyRequests, `"client":"198.51.100.7"`},
		{"behind a trusted proxy: another client gets in", []string{"127.0.0.0/8"}, func(int) string { return "198.51.100.7" },
			"198.51.100.8", http.StatusSeeOther, `"client":"198.51.100.7"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ranges []netip.Prefix
			for _, r := range tc.trusted {
				ranges = append(ranges, netip.MustParsePrefix(r))
			}
			f := newFixture(t, web.WithTrustedProxies(ranges...))
			c := f.client()
			for i := range 11 {
				res, _ := f.signInVia(c, "wrong-token", tc.xff(i))
				want := http.StatusUnauthorized
				if i == 10 {
					want = http.StatusTooManyRequests
				}
				require.Equal(t, want, res.StatusCode, "wrong sign-in %d", i+1)
			}
			res, _ := f.signInVia(f.client(), "op-token", tc.then)
			assert.Equal(t, tc.want, res.StatusCode)
			assert.Contains(t, f.logs.String(), tc.client)
			assert.NotContains(t, f.logs.String(), `"client":"10.0.0.`, "a forged address is never logged as the client")
		})
	}
}

func TestRotatedTokenEndsSessions(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	_, _ = f.signIn(c, "acme-token")
	res, _ := f.get(c, "/console/tenants/acme/calls")
	require.Equal(t, http.StatusOK, res.StatusCode)
	// The tenants file now names another token for acme-admin (a restart with it).
	reg := tenant.NewRegistry(&tenant.Tenant{ID: "acme"})
	_, err := reg.WithAdmins(tenant.Admin{Name: "acme-admin", Tenant: "acme", Token: "acme-token-2"})
	require.NoError(t, err)
	f.auth.Tenants = reg
	res, _ = f.get(c, "/console/tenants/acme/calls")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode, "the old token's session is over")
}
