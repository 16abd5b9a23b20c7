package clicktocall

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/authlimit"
	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/web"
)

// fakeAgents is an in-memory mapping store.
type fakeAgents struct {
	ms  []call.Mapping
	err error
}

func (f fakeAgents) ByCRMUser(_ context.Context, _, user string) ([]call.Mapping, error) {
	var out []call.Mapping
	for _, m := range f.ms {
		if m.CRMUserID == user {
			out = append(out, m)
		}
	}
	return out, f.err
}

// fakeDialer records the calls it was asked to place.
type fakeDialer struct {
	mu    sync.Mutex
	dials []moapi.Dial
	err   error
}

func (f *fakeDialer) Place(_ context.Context, _ *tenant.Tenant, d moapi.Dial) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.dials = append(f.dials, d)
	return "u-1", nil
}

// fakeLimiter allows perMinute requests per key, then asks to wait a minute.
type fakeLimiter struct {
	mu   sync.Mutex
	seen map[string]int
	err  error
	wait time.Duration // a refusal's wait; default a minute
}

func (f *fakeLimiter) Allow(_ context.Context, key string, perMinute int) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	if f.seen == nil {
		f.seen = map[string]int{}
	}
	f.seen[key]++
	if f.seen[key] > perMinute {
		return cmp.Or(f.wait, time.Minute), nil
	}
	return 0, nil
}

func configured() *tenant.Tenant {
	return &tenant.Tenant{ID: "acme", CompanyID: "c1", DefaultCountry: "91", CRM: tenant.CRM{Kind: call.CRMKylas}, ClickToCall: tenant.ClickToCall{
		APIKey: "k", SecretToken: "s", PublicIVRID: "ivr", PerUserPerMinute: 2}}
}

var mappings = []call.Mapping{
	{MyOperatorUserID: "agent-sumit", CRMUserID: "1001", Phones: []string{"+918586848544"}, Status: call.MappingActive},
	{MyOperatorUserID: "agent-old", CRMUserID: "1001", Status: call.MappingSuspended},
	{MyOperatorUserID: "agent-priya", CRMUserID: "1002", Status: call.MappingSuspended},
	{MyOperatorUserID: "agent-ravi", CRMUserID: "1003", Status: call.MappingPending},
	{MyOperatorUserID: "agent-a", CRMUserID: "1004", Status: call.MappingActive},
	{MyOperatorUserID: "agent-b", CRMUserID: "1004", Status: call.MappingActive},
}

func TestPlace(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tenant    *tenant.Tenant
		user, num string
		agentsErr error
		dialErr   error
		code      string
		status    int
		agent     string // the agent rung
		number    string // the customer, E.164
	}{
		{name: "mapped user, E.164 number", user: "1001", num: "+919711636496", agent: "agent-sumit", number: "+919711636496"},
		{name: "national number gets the tenant's country", user: "1001", num: "097116 36496", agent: "agent-sumit", number: "+919711636496"},
		{name: "unmapped user", user: "9999", num: "+919711636496", code: CodeUnmappedUser, status: http.StatusUnprocessableEntity},
		{name: "suspended mapping: disabled agent", user: "1002", num: "+919711636496", code: CodeAgentDisabled, status: http.StatusConflict},
		{name: "pending mapping", user: "1003", num: "+919711636496", code: CodeMappingPending, status: http.StatusConflict},
		{name: "two active agents", user: "1004", num: "+919711636496", code: CodeAmbiguous, status: http.StatusConflict},
		{name: "not a number", user: "1001", num: "call me", code: CodeInvalidNumber, status: http.StatusBadRequest},
		{name: "too short for its country code", user: "1001", num: "+1900555", code: CodeInvalidNumber, status: http.StatusBadRequest},
		{name: "too long for its country code", user: "1001", num: "+12125551234567", code: CodeInvalidNumber, status: http.StatusBadRequest},
		{name: "no number", user: "1001", num: " ", code: CodeInvalidRequest, status: http.StatusBadRequest},
		{name: "no user", user: "", num: "+919711636496", code: CodeInvalidRequest, status: http.StatusBadRequest},
		{name: "tenant without click_to_call", tenant: &tenant.Tenant{ID: "acme"}, user: "1001", num: "+919711636496",
			code: CodeNotConfigured, status: http.StatusConflict},
		{name: "mappings unreadable", user: "1001", num: "+919711636496", agentsErr: errors.New("redis down"),
			code: CodeUnavailable, status: http.StatusServiceUnavailable},
		{name: "MyOperator refuses", user: "1001", num: "+919711636496",
			dialErr: &moapi.Error{Status: 403, Message: "user is disabled", Permanent: true}, code: CodeRefused, status: http.StatusConflict},
		{name: "MyOperator down", user: "1001", num: "+919711636496",
			dialErr: &moapi.Error{Status: 502, Message: "bad gateway"}, code: CodeUnavailable, status: http.StatusBadGateway},
		{name: "MyOperator rate limits", user: "1001", num: "+919711636496",
			dialErr: &moapi.Error{Status: 429, RetryAfter: time.Minute}, code: CodeUnavailable, status: http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDialer{err: tc.dialErr}
			s := &Service{Agents: fakeAgents{ms: mappings, err: tc.agentsErr}, Dialer: d, Limiter: &fakeLimiter{}, Log: zerolog.Nop(),
				NewReference: func() string { return "c2c-test" }}
			tn := tc.tenant
			if tn == nil {
				tn = configured()
			}
			p, err := s.Place(context.Background(), Request{Tenant: tn, CRMUserID: tc.user, Number: tc.num, Via: "api"})
			if tc.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.code || e.Status != tc.status {
					t.Fatalf("Place: %v, want %s (%d)", err, tc.code, tc.status)
				}
				if e.Message == "" {
					t.Error("an error without a message")
				}
				if tc.dialErr == nil && len(d.dials) != 0 {
					t.Errorf("MyOperator asked to dial: %+v", d.dials)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := moapi.Dial{UserID: tc.agent, Number: tc.number, ReferenceID: "c2c-test"}
			if len(d.dials) != 1 || d.dials[0] != want {
				t.Fatalf("dials %+v, want %+v", d.dials, want)
			}
			if p.ReferenceID != "c2c-test" || p.AgentID != tc.agent || p.Number != tc.number || p.UniqueID != "u-1" {
				t.Errorf("placed %+v", p)
			}
		})
	}
}

// A user's budget is per user: a third click within the minute is refused with a
// Retry-After, another user still gets through; the limiter failing refuses (503).
func TestPlaceRateLimitedPerUser(t *testing.T) {
	d := &fakeDialer{}
	lim := &fakeLimiter{}
	ms := append([]call.Mapping{{MyOperatorUserID: "agent-x", CRMUserID: "2001", Status: call.MappingActive}}, mappings...)
	s := &Service{Agents: fakeAgents{ms: ms}, Dialer: d, Limiter: lim, Log: zerolog.Nop()}
	tn := configured() // 2 a minute
	place := func(user string) error {
		_, err := s.Place(context.Background(), Request{Tenant: tn, CRMUserID: user, Number: "+919711636496"})
		return err
	}
	for range 2 {
		if err := place("1001"); err != nil {
			t.Fatal(err)
		}
	}
	var e *Error
	if err := place("1001"); !errors.As(err, &e) || e.Code != CodeRateLimited || e.Status != http.StatusTooManyRequests || e.RetryAfter != time.Minute {
		t.Fatalf("third click: %v", err)
	}
	if err := place("2001"); err != nil {
		t.Fatalf("another user: %v", err)
	}
	if len(d.dials) != 3 {
		t.Errorf("%d dials, want 3", len(d.dials))
	}
	// A wait of 47.2 s is said as the Retry-After header gives it: whole seconds, up.
	lim.wait = 47200 * time.Millisecond
	if err := place("1001"); !errors.As(err, &e) || e.RetryAfter != 48*time.Second || !strings.Contains(e.Message, "try again in 48s") {
		t.Fatalf("fractional wait: %v (Retry-After %s)", err, e.RetryAfter)
	}
	lim.err = errors.New("redis down")
	if err := place("2001"); !errors.As(err, &e) || e.Code != CodeUnavailable {
		t.Fatalf("limiter down: %v", err)
	}
}

func TestZohoCode(t *testing.T) {
	for code, want := range map[string]string{CodeInvalidNumber: ZohoInvalid, CodeRateLimited: ZohoBusy, CodeRefused: ZohoRejected,
		CodeUnmappedUser: ZohoNotAvailable, CodeAgentDisabled: ZohoNotAvailable, CodeUnavailable: ZohoNotAvailable} {
		if got := ZohoCode(code); got != want {
			t.Errorf("ZohoCode(%s) = %s, want %s", code, got, want)
		}
	}
}

// The Redis limiter allows no more than the budget in any minute, however a user's
// clicks are spread (the test's clock stands in for Redis's).
func TestRedisLimiterBudgetPerMinute(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   []time.Duration // the clicks, since the first
		want []time.Duration // each one's answer: 0 allowed, else Retry-After
	}{
		{"six spread out, the seventh within the minute", []time.Duration{0, 2 * time.Second, 4 * time.Second,
			6 * time.Second, 8 * time.Second, 10 * time.Second, 13 * time.Second},
			[]time.Duration{0, 0, 0, 0, 0, 0, 47 * time.Second}},
		{"a burst, then the minute after the first", []time.Duration{0, 0, 0, 0, 0, 0, 10 * time.Second, 59 * time.Second, time.Minute},
			[]time.Duration{0, 0, 0, 0, 0, 0, 50 * time.Second, time.Second, 0}},
		{"one every 10 s", []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second, 40 * time.Second,
			50 * time.Second, 59 * time.Second, 60 * time.Second},
			[]time.Duration{0, 0, 0, 0, 0, 0, time.Second, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			start := time.Now()
			var now time.Time
			l := NewRedisLimiter(env.Redis, env.Prefix)
			l.now = func() time.Time { return now }
			for i, at := range tc.at {
				now = start.Add(at)
				wait, err := l.Allow(t.Context(), "acme:1001", 6)
				require.NoError(t, err)
				assert.Equal(t, tc.want[i], wait, "click %d at %s", i+1, at)
			}
			// Another user's budget is their own.
			wait, err := l.Allow(t.Context(), "acme:1002", 6)
			require.NoError(t, err)
			assert.Zero(t, wait)
		})
	}
}

// Wrong API tokens count against the client's budget of failed authentications (the
// admin API's too): after it, 429 with Retry-After in the API's error shape, the right
// token included; another client's right token still gets through.
func TestAPIWrongTokensAreLimited(t *testing.T) {
	env := testenv.New(t)
	tn := configured()
	tn.APIToken = "acme-api-token"
	s := &Service{Agents: fakeAgents{ms: mappings}, Dialer: &fakeDialer{}, Limiter: &fakeLimiter{}, Log: zerolog.Nop()}
	beta := configured()
	beta.ID, beta.APIToken = "beta", "beta-api-token"
	api := &API{Service: s, Tenants: tenant.NewRegistry(tn, beta), Attempts: authlimit.New(env.Redis, env.Prefix, zerolog.Nop())}
	e := web.New(zerolog.Nop(), nil, nil)
	api.Register(e)
	post := func(client, token string) *httptest.ResponseRecorder {
		tenantID := "acme"
		if strings.HasPrefix(token, "beta") {
			tenantID = "beta"
		}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/tenants/"+tenantID+"/calls", strings.NewReader(`{"crm_user_id":"1001","number":"+919711636496"}`))
		req.RemoteAddr = client + ":40000"
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	for _, tc := range []struct {
		name          string
		client, token string
		status        int
	}{
		{"right token", "198.51.100.7", "acme-api-token", http.StatusAccepted},
		{"wrong 1", "198.51.100.7", "guess", http.StatusUnauthorized},
		{"wrong 2", "198.51.100.7", "guess", http.StatusUnauthorized},
		{"wrong 3", "198.51.100.7", "guess", http.StatusUnauthorized},
		{"wrong 4", "198.51.100.7", "guess", http.StatusUnauthorized},
		{"wrong 5", "198.51.100.7", "guess", http.StatusUnauthorized},
		{"wrong 6", "198.51.100.7", "guess", http.StatusUnauthorized},
		{"wrong 7", "198.51.100.7", "guess", http.StatusUnauthorized},
		{"wrong 8", "198.51.100.7", "guess", http.StatusUnauthorized},
		{"wrong 9", "198.51.100.7", "guess", http.StatusUnauthorized},
		{"wrong 10", "198.51.100.7", "guess", http.StatusUnauthorized},
		{"wrong 11: refused", "198.51.100.7", "guess", http.StatusTooManyRequests},
		{"the guesser's right token: refused", "198.51.100.7", "acme-api-token", http.StatusTooManyRequests},
		{"another client's right token", "198.51.100.8", "acme-api-token", http.StatusAccepted},
		// One integration calling for many tenants from one address: acme's stale token
		// does not lock beta out.
		{"another tenant's right token from the refused client", "198.51.100.7", "beta-api-token", http.StatusAccepted},
	} {
		rec := post(tc.client, tc.token)
		require.Equal(t, tc.status, rec.Code, "%s: %s", tc.name, rec.Body)
		if tc.status == http.StatusTooManyRequests {
			assert.NotEmpty(t, rec.Header().Get("Retry-After"), tc.name)
			assert.Contains(t, rec.Body.String(), `{"error":{"code":"rate_limited","message":"too many failed authentications`, tc.name)
		}
	}
}

// A number E.164 in form but too short or too long for its country code is refused
// before MyOperator is asked (it would refuse it, as a 409 myoperator_refused that
// does not say the number is at fault): 400 invalid_number naming it, masked.
func TestAPIRefusesImpossibleNumber(t *testing.T) {
	d := &fakeDialer{}
	e := apiServer(t, &Service{Agents: fakeAgents{ms: mappings}, Dialer: d, Limiter: &fakeLimiter{}, Log: zerolog.Nop()})
	for number, want := range map[string]string{
		"+1900555":        `{"error":{"code":"invalid_number","message":"number ******** cannot be dialled: too short for country code +1"}}`,
		"+12125551234567": `{"error":{"code":"invalid_number","message":"number +12********4567 cannot be dialled: too long for country code +1"}}`,
		"+999123456789":   `{"error":{"code":"invalid_number","message":"number +99******6789 cannot be dialled: no country has its calling code"}}`,
		"+44 20 7946":     `{"error":{"code":"invalid_number","message":"number +44****7946 cannot be dialled: too short for country code +44"}}`,
	} {
		rec := postCall(e, "acme-api-token", `{"crm_user_id":"1001","number":"`+number+`"}`)
		assert.Equal(t, http.StatusBadRequest, rec.Code, number)
		assert.JSONEq(t, want, rec.Body.String(), number)
	}
	rec := postCall(e, "acme-api-token", `{"crm_user_id":"1001","number":"+14155550100"}`)
	assert.Equal(t, http.StatusAccepted, rec.Code, "a possible +1 number: %s", rec.Body)
	assert.Len(t, d.dials, 1, "only the possible number dialled")
}

// A crm_user_id that is no plain user id of the tenant's CRM is the request's fault:
// 400 invalid_crm_user_id saying what an id of that CRM looks like, as a malformed
// number is a 400 invalid_number — not 422 unmapped_user, which would send the caller
// looking for a mapping. Nothing is dialled, and no user's budget is spent. Ids of
// the right form go on to the mapping lookup (unmapped: 422).
func TestAPIRefusesMalformedCRMUserID(t *testing.T) {
	const (
		kylasWant = `{"error":{"code":"invalid_crm_user_id","message":"crm_user_id is not a user id of the tenant's CRM: Kylas user ids are whole numbers above 0 in digits, with no sign, space or leading zero, at most 9223372036854775807 (e.g. 1001)"}}`
		zohoWant  = `{"error":{"code":"invalid_crm_user_id","message":"crm_user_id is not a user id of the tenant's CRM: Zoho CRM user ids are digits only, at most 30 (e.g. 1386586000000078001)"}}`
		unmapped  = "unmapped_user"
	)
	zohoUser := "1386586000000078001"
	for _, tc := range []struct {
		name, kind, user string // user: crm_user_id as JSON
		status           int
		want             string // the whole body, or a code
	}{
		{"exponent", call.CRMKylas, `1e3`, http.StatusBadRequest, kylasWant},
		{"exponent as text", call.CRMKylas, `"1e3"`, http.StatusBadRequest, kylasWant},
		{"negative", call.CRMKylas, `"-1"`, http.StatusBadRequest, kylasWant},
		{"negative number", call.CRMKylas, `-1`, http.StatusBadRequest, kylasWant},
		{"plus sign", call.CRMKylas, `"+5"`, http.StatusBadRequest, kylasWant},
		{"leading space", call.CRMKylas, `" 7"`, http.StatusBadRequest, kylasWant},
		{"leading zero", call.CRMKylas, `"01001"`, http.StatusBadRequest, kylasWant},
		{"zero", call.CRMKylas, `"0"`, http.StatusBadRequest, kylasWant},
		{"a fraction", call.CRMKylas, `1001.0`, http.StatusBadRequest, kylasWant},
		{"past int64", call.CRMKylas, `"92233720368547758070"`, http.StatusBadRequest, kylasWant},
		{"a name", call.CRMKylas, `"sumit"`, http.StatusBadRequest, kylasWant},
		{"Zoho: a name", call.CRMZoho, `"sumit"`, http.StatusBadRequest, zohoWant},
		{"Zoho: plus sign", call.CRMZoho, `"+1386586000000078001"`, http.StatusBadRequest, zohoWant},
		{"Zoho: 31 digits", call.CRMZoho, `"` + strings.Repeat("1", 31) + `"`, http.StatusBadRequest, zohoWant},
		{"empty: required", call.CRMKylas, `""`, http.StatusBadRequest, CodeInvalidRequest},
		{"a Kylas id, not mapped", call.CRMKylas, `"9999"`, http.StatusUnprocessableEntity, unmapped},
		{"a Kylas id as a number", call.CRMKylas, `1001`, http.StatusAccepted, ""},
		{"a Zoho id", call.CRMZoho, `"` + zohoUser + `"`, http.StatusAccepted, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := configured()
			tn.CRM.Kind, tn.APIToken = tc.kind, "acme-api-token"
			d, lim := &fakeDialer{}, &fakeLimiter{}
			ms := append([]call.Mapping{{MyOperatorUserID: "agent-z", CRMUserID: zohoUser, Status: call.MappingActive}}, mappings...)
			e := web.New(zerolog.Nop(), nil, nil)
			(&API{Service: &Service{Agents: fakeAgents{ms: ms}, Dialer: d, Limiter: lim, Log: zerolog.Nop()},
				Tenants: tenant.NewRegistry(tn)}).Register(e)
			rec := postCall(e, "acme-api-token", `{"crm_user_id":`+tc.user+`,"number":"+919711636496"}`)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			switch {
			case strings.HasPrefix(tc.want, "{"):
				assert.JSONEq(t, tc.want, rec.Body.String())
			case tc.want != "":
				assert.Contains(t, rec.Body.String(), `{"error":{"code":"`+tc.want+`"`)
			}
			if tc.status == http.StatusBadRequest {
				assert.Empty(t, d.dials, "nothing dialled")
				assert.Empty(t, lim.seen, "no user's budget spent")
			}
		})
	}
}

// apiServer serves s's API for tenant acme (API token acme-api-token).
func apiServer(t *testing.T, s *Service) *echo.Echo {
	t.Helper()
	tn := configured()
	tn.APIToken = "acme-api-token"
	e := web.New(zerolog.Nop(), nil, nil)
	(&API{Service: s, Tenants: tenant.NewRegistry(tn)}).Register(e)
	return e
}

// postCall posts body to acme's click-to-call API with token.
func postCall(e *echo.Echo, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/tenants/acme/calls", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// Requests refused before Place runs are counted too, under the code they are answered
// with; a tenant name no tenant has is counted as "unknown" (guesses add no series).
func TestAPICountsRequestsRefusedBeforePlace(t *testing.T) {
	outcomes := NewOutcomes(prometheus.NewRegistry())
	e := apiServer(t, &Service{Agents: fakeAgents{ms: mappings}, Dialer: &fakeDialer{}, Limiter: &fakeLimiter{}, Log: zerolog.Nop(),
		Outcomes: outcomes})
	for _, tc := range []struct {
		name, path, token, body string
		status                  int
		tenant, outcome         string
	}{
		{"no token", "/api/v1/tenants/acme/calls", "", `{"crm_user_id":"1001","number":"+919711636496"}`, http.StatusUnauthorized, "acme", "unauthorized"},
		{"wrong token", "/api/v1/tenants/acme/calls", "guess", `{"crm_user_id":"1001","number":"+919711636496"}`, http.StatusUnauthorized, "acme", "unauthorized"},
		{"no such tenant", "/api/v1/tenants/nobody/calls", "guess", `{}`, http.StatusUnauthorized, "unknown", "unauthorized"},
		{"not JSON", "/api/v1/tenants/acme/calls", "acme-api-token", `not json`, http.StatusBadRequest, "acme", CodeInvalidRequest},
		{"unknown field", "/api/v1/tenants/acme/calls", "acme-api-token", `{"crm_user_id":"1001","phone":"+919711636496"}`, http.StatusBadRequest, "acme", CodeInvalidRequest},
		{"placed", "/api/v1/tenants/acme/calls", "acme-api-token", `{"crm_user_id":"1001","number":"+919711636496"}`, http.StatusAccepted, "acme", OutcomePlaced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(outcomes.WithLabelValues(tc.tenant, ViaAPI, tc.outcome))
			req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			require.Equal(t, tc.status, rec.Code, "%s", rec.Body)
			assert.Equal(t, before+1, testutil.ToFloat64(outcomes.WithLabelValues(tc.tenant, ViaAPI, tc.outcome)))
		})
	}
	assert.Equal(t, 4, testutil.CollectAndCount(outcomes), "no series for the tenant name guessed")
}

// A body is one JSON value: anything after it is a 400 invalid_request and no call is
// placed, not a call placed from the part that parsed.
func TestAPIRefusesTrailingData(t *testing.T) {
	d := &fakeDialer{}
	e := apiServer(t, &Service{Agents: fakeAgents{ms: mappings}, Dialer: d, Limiter: &fakeLimiter{}, Log: zerolog.Nop()})
	const good = `{"crm_user_id":"1001","number":"+919711636496"}`
	for _, body := range []string{good + "garbage", good + good, good + "}", good + " []"} {
		rec := postCall(e, "acme-api-token", body)
		assert.Equal(t, http.StatusBadRequest, rec.Code, body)
		assert.JSONEq(t, `{"error":{"code":"invalid_request","message":"body must be JSON {\"crm_user_id\":\"...\",\"number\":\"+91...\"}: unexpected data after the JSON value"}}`,
			rec.Body.String(), body)
	}
	assert.Empty(t, d.dials, "no call placed")
	rec := postCall(e, "acme-api-token", good+"\n")
	assert.Equal(t, http.StatusAccepted, rec.Code, "trailing whitespace is fine: %s", rec.Body)
}
