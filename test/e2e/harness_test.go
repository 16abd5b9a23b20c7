// Package e2e runs calltrack's roles against the test environment's Kafka and Redis
// (a real broker and redis-server in CI) and the sandbox CRM, and asserts what a user
// sees: the CRM records, their owners and counts, HTTP statuses and error bodies.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/app"
	"github.com/calltrack/calltrack/internal/callwriter"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	mosandbox "github.com/calltrack/calltrack/internal/myoperator/sandbox"
	"github.com/calltrack/calltrack/internal/route"
	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
)

const (
	tenantID   = "acme"
	token      = "acme-token"
	adminToken = "admin-secret"
	crmKey     = "acme-crm-key"
	kylasOAuth = "demo-kylas-oauth" // the Kylas sandbox's marketplace-app token (the sync route)
	companyID  = "5cd40f6554442586"
	// recordingKey signs durable recording links (stackOpts.durableLinks).
	recordingKey = "e2e-recording-signing-key"
)

// stack is one calltrack deployment for a test: ingest + admin over HTTP, and writers.
type stack struct {
	t        testing.TB
	env      *testenv.Env
	app      *app.App
	kylas    *sandbox.Kylas
	crmSrv   *httptest.Server
	kylasB   *sandbox.Kylas    // CRM of the second tenant (stackOpts.second "kylas")
	zohoB    *sandbox.Zoho     // CRM of the second tenant (stackOpts.second "zoho")
	zohoMain *sandbox.Zoho     // the main tenant's CRM on a Zoho stack (newZohoStackWith)
	mo       *mosandbox.Server // MyOperator API sandbox (recording links)
	moSrv    *httptest.Server
	api      *httptest.Server
	group    string
	writers  []context.CancelFunc
	wg       sync.WaitGroup
}

type stackOpts struct {
	retry    *route.Policy
	fallback string
	sync     tenant.Sync // the tenant's user-sync settings
	noWriter bool
	// second adds tenant "beta" (token "beta-token") on its own CRM sandbox: "kylas"
	// (kylasB, rate limit 50/s, so that tests measure isolation, not pacing) or "zoho" (zohoB).
	second string
	// kylasLimit is the main tenant's Kylas rate limit (requests/s); 0: the default.
	kylasLimit float64
	// summaryWait is how long a v2 call.end waits for its call.summary (default 5m).
	summaryWait time.Duration
	// durableLinks makes the writer put calltrack's signed recording links in the CRM.
	durableLinks bool
	// calls is the main tenant's call policy (policies, departments).
	calls tenant.CallPolicy
	// clickToCall gives the tenant an API token (apiToken) and click-to-call through the
	// sandbox MyOperator's outbound API, whose calls' webhooks come back to the stack.
	clickToCall bool
	// publicURL is CALLTRACK_PUBLIC_URL (PhoneBridge's click-to-dial callback); set
	// before the stack starts, since the writer reads the config.
	publicURL string
	// writerSettle is how soon a create that got no answer is looked up (default 10s).
	writerSettle time.Duration
}

func newStack(t testing.TB, o stackOpts) *stack {
	t.Helper()
	env := testenv.New(t)
	// kylasLimit also makes the sandbox answer 429 above it, as Kylas does.
	s := &stack{t: t, env: env, kylas: sandbox.NewKylas(sandbox.KylasOptions{APIKey: crmKey, RateLimit: int(o.kylasLimit)})}
	s.crmSrv = httptest.NewServer(s.kylas)
	t.Cleanup(s.crmSrv.Close)
	// The tenant's fallback and department owners are CRM users, as they must be in
	// production (the sandbox refuses a record owned by no user).
	s.ensureCRMUser(o.fallback)
	for _, owner := range o.calls.Departments {
		s.ensureCRMUser(owner)
	}
	s.mo = mosandbox.New(mosandbox.Options{})
	s.moSrv = httptest.NewServer(s.mo)
	t.Cleanup(s.moSrv.Close)
	tenants := tenant.NewRegistry(&tenant.Tenant{ID: tenantID, WebhookToken: token, CompanyID: companyID,
		MyOperatorAPI: s.moSrv.URL, MyOperatorKey: tenant.Secret(s.mo.Token()),
		FallbackOwner: o.fallback, Sync: o.sync, Calls: o.calls, CRM: tenant.CRM{Kind: "kylas", BaseURL: s.crmSrv.URL, APIKey: crmKey, BearerToken: kylasOAuth}})
	switch o.second {
	case "kylas":
		// Beta's agents are mapped to these CRM users (priya: 2002): they exist.
		s.kylasB = sandbox.NewKylas(sandbox.KylasOptions{APIKey: crmKey,
			Users: []sandbox.KylasUser{{ID: 2002, FirstName: "Priya", LastName: "N", Email: priya.email, Active: true}}})
		srvB := httptest.NewServer(s.kylasB)
		t.Cleanup(srvB.Close)
		tenants = tenant.NewRegistry(append(tenantsOf(tenants), &tenant.Tenant{ID: "beta", WebhookToken: "beta-token",
			CRM: tenant.CRM{Kind: "kylas", BaseURL: srvB.URL, APIKey: crmKey, BearerToken: kylasOAuth, RateLimit: 50}})...)
	case "zoho":
		// Beta's agents are mapped to these Zoho users (sumit: …001, priya: …002): they exist.
		s.zohoB = sandbox.NewZoho(sandbox.ZohoOptions{Seed: 2, Users: []sandbox.ZohoUser{
			{ID: "5725767000000411001", FullName: "Sumit Arya", Email: sumit.email},
			{ID: "5725767000000411002", FullName: "Priya N", Email: priya.email}}})
		srvB := httptest.NewServer(s.zohoB)
		t.Cleanup(srvB.Close)
		tenants = tenant.NewRegistry(append(tenantsOf(tenants), &tenant.Tenant{ID: "beta", WebhookToken: "beta-token",
			CRM: tenant.CRM{Kind: "zoho", Zoho: tenant.Zoho{AccountsURL: srvB.URL, APIDomain: srvB.URL,
				ClientID: sandbox.ZohoClientID, ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken}}})...)
	}
	if o.clickToCall {
		main, _ := tenants.Get(tenantID)
		main.APIToken = apiToken
		main.ClickToCall = tenant.ClickToCall{OBDURL: s.moSrv.URL + "/obd-api-v1", APIKey: obdAPIKey, SecretToken: obdSecret,
			PublicIVRID: obdIVR, PerUserPerMinute: 3}
	}
	if o.kylasLimit > 0 {
		main, _ := tenants.Get(tenantID)
		main.CRM.RateLimit = o.kylasLimit
	}
	s.group = "writer" + env.Suffix
	cfg := config.Config{KafkaBrokers: env.Brokers, KafkaPartitions: 3, KafkaRepl: 1, TopicSuffix: env.Suffix,
		RedisAddr: env.RedisAddr, RedisPrefix: env.Prefix, AdminToken: adminToken, WriterGroup: s.group,
		LogLevel: "warn", ShutdownTimeout: 5 * time.Second, V2SummaryWait: o.summaryWait, WriterSettle: o.writerSettle, PublicURL: o.publicURL,
		// Features, not degradation, are under test here (test/fault has Redis outages): a
		// loaded CI box must not make ingest skip the dedupe for a slow Redis answer.
		RedisBudget: 10 * time.Second}
	if o.durableLinks {
		cfg.RecordingSigningKey = recordingKey
		cfg.RecordingAllowHTTPLoopback = true // the sandbox MyOperator's links are http://127.0.0.1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, err := app.Open(ctx, cfg, app.NewLogger(testWriter{t}, "warn"), tenants)
	require.NoError(t, err)
	if o.retry != nil {
		a.Retry = *o.retry
	}
	s.app = a
	s.api = httptest.NewUnstartedServer(nil)
	if o.durableLinks {
		a.Cfg.PublicURL = "http://" + s.api.Listener.Addr().String() // the links the writers write point here
	}
	s.api.Config.Handler = telemetry.Handler(a.HTTP()) // as app.Serve does
	s.api.Start()
	if o.clickToCall {
		hook := func(kind string) string {
			return s.api.URL + "/webhooks/myoperator/" + tenantID + "/" + kind + "?token=" + token
		}
		s.mo.AddOBDAccount(mosandbox.OBDAccount{CompanyID: companyID, APIKey: obdAPIKey, SecretToken: obdSecret, PublicIVRID: obdIVR,
			InCallWebhook: hook("incall"), AfterCallWebhook: hook("aftercall")})
		t.Cleanup(s.mo.WaitOBD) // no webhook in flight when the stack closes
	}
	t.Cleanup(func() {
		s.api.Close()
		s.stopWriters()
		a.Close()
	})
	if !o.noWriter {
		s.startWriter()
	}
	return s
}

// startWriter starts one more writer instance (its own consumer-group member) and
// returns its stop function (waits for the drain) and the count of CRM writes it made.
func (s *stack) startWriter() (context.CancelFunc, *atomic.Int64) {
	ctx, cancel := context.WithCancel(context.Background())
	w := s.app.Writer()
	writes := &atomic.Int64{}
	factory := w.Service.CRMs
	w.Service.CRMs = func(t *tenant.Tenant) (callwriter.CRM, error) {
		a, err := factory(t)
		return countingAdapter{a, writes}, err
	}
	s.wg.Add(1)
	done := make(chan struct{})
	go func() {
		defer s.wg.Done()
		defer close(done)
		if err := s.app.RunWriter(ctx, w); err != nil {
			s.t.Errorf("writer: %v", err)
		}
	}()
	s.writers = append(s.writers, cancel)
	// stop cancels this writer and waits until it has drained and left the group.
	stop := func() {
		cancel()
		<-done
	}
	return stop, writes
}

type countingAdapter struct {
	callwriter.CRM
	n *atomic.Int64
}

func (c countingAdapter) CreateCall(ctx context.Context, call crm.Call) (string, error) {
	id, err := c.CRM.CreateCall(ctx, call)
	if err == nil {
		c.n.Add(1)
	}
	return id, err
}

func (s *stack) stopWriters() {
	for _, c := range s.writers {
		c()
	}
	s.wg.Wait()
}

// testWriter sends logs to t.Log so they show with the failing test only.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type response struct {
	Status int
	Body   map[string]any
	Took   time.Duration
	Header http.Header
}

func (s *stack) do(req *http.Request) response {
	s.t.Helper()
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{Status: res.StatusCode, Took: time.Since(start), Body: map[string]any{}, Header: res.Header}
	if len(raw) > 0 {
		require.NoError(s.t, json.Unmarshal(raw, &r.Body), "body: %s", raw)
	}
	return r
}

// postForm posts a webhook the classic way: form field myoperator=<json>.
func (s *stack) postForm(kind, payload, tok string) response {
	form := url.Values{"myoperator": {payload}}
	req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/webhooks/myoperator/"+tenantID+"/"+kind+"?token="+url.QueryEscape(tok),
		strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.do(req)
}

// postJSON posts a JSON body with the token in the header.
func (s *stack) postJSON(kind, body string) response {
	req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/webhooks/myoperator/"+tenantID+"/"+kind, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Calltrack-Token", token)
	return s.do(req)
}

func (s *stack) admin(method, path string, body any) response {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.api.URL+"/admin/v1/tenants/"+tenantID+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	return s.do(req)
}

func (s *stack) mapAgent(userID, crmUser, email string, phones ...string) {
	s.t.Helper()
	s.ensureCRMUser(crmUser)
	r := s.admin(http.MethodPut, "/mappings/"+userID, map[string]any{"crm_user_id": crmUser, "email": email, "phones": phones})
	require.Equal(s.t, http.StatusOK, r.Status, "%v", r.Body)
}

// ensureCRMUser makes id a user of the main tenant's CRM (Kylas, or Zoho on a Zoho
// stack) unless it is one: an admin maps agents to CRM users that exist, and the
// sandboxes, like the CRMs, refuse a record owned by anyone else.
func (s *stack) ensureCRMUser(id string) {
	s.t.Helper()
	if s.kylas == nil { // a Zoho stack (newZohoStackWith)
		if s.zohoMain != nil && id != "" && !s.zohoMain.HasUser(id) {
			s.zohoMain.AddUser(sandbox.ZohoUser{ID: id, FullName: "User " + id, Email: "user" + id + "@example.com"})
		}
		return
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 || s.kylas.HasUser(n) {
		return
	}
	s.kylas.AddUser(sandbox.KylasUser{ID: n, FirstName: "User", LastName: id, Email: "user" + id + "@example.com", Active: true})
}

func (s *stack) trace(callID string) response { return s.admin(http.MethodGet, "/calls/"+callID, nil) }

// stages lists the stage names of a trace answer.
func stages(tr map[string]any) []string {
	var out []string
	list, _ := tr["stages"].([]any)
	for _, st := range list {
		if m, ok := st.(map[string]any); ok {
			name, _ := m["stage"].(string)
			out = append(out, name)
		}
	}
	return out
}

// waitStatus polls the call's trace until it has the status.
func (s *stack) waitStatus(callID, status string, within time.Duration) map[string]any {
	s.t.Helper()
	return s.waitTrace(callID, "reaches status "+status, within, func(tr map[string]any) bool { return tr["status"] == status })
}

// waitStage polls the call's trace until it names the stage: a trace stage is
// recorded after the CRM answered, so the CRM can show the write first.
func (s *stack) waitStage(callID, stage string, within time.Duration) map[string]any {
	s.t.Helper()
	return s.waitTrace(callID, "has stage "+stage, within, func(tr map[string]any) bool { return slices.Contains(stages(tr), stage) })
}

// waitTrace polls the call's trace until ok says so, and returns it.
func (s *stack) waitTrace(callID, what string, within time.Duration, ok func(tr map[string]any) bool) map[string]any {
	s.t.Helper()
	var last map[string]any
	testenv.Eventually(s.t, within, fmt.Sprintf("call %s %s (last trace %v)", callID, what, &last), func() bool {
		r := s.trace(callID)
		last = r.Body
		return r.Status == http.StatusOK && ok(r.Body)
	})
	return last
}

// records returns the sandbox CRM's call logs for one call.
func (s *stack) records(callID string) []sandbox.KylasCallLog {
	var out []sandbox.KylasCallLog
	for _, r := range s.kylas.Records() {
		if r.CallID() == callID {
			out = append(out, r)
		}
	}
	return out
}

// waitRecords polls until the CRM holds n records of the call.
func (s *stack) waitRecords(callID string, n int, within time.Duration) []sandbox.KylasCallLog {
	s.t.Helper()
	testenv.Eventually(s.t, within, fmt.Sprintf("%d CRM record(s) of %s", n, callID), func() bool { return len(s.records(callID)) == n })
	return s.records(callID)
}

// readTopic reads every message on a topic until want match or the deadline.
func (s *stack) readTopic(topic string, want int, match func(kafka.Message) bool) []kafka.Message {
	s.t.Helper()
	var got []kafka.Message
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for p := 0; p < 3 && len(got) < want; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.env.Brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		ends, err := s.app.Kafka.EndOffsets(ctx, topic, []int{p})
		require.NoError(s.t, err)
		last := ends[p]
		for off := int64(0); off < last; off++ {
			m, err := r.ReadMessage(ctx)
			require.NoError(s.t, err)
			if match(m) {
				got = append(got, m)
			}
		}
		r.Close()
	}
	return got
}

func tenantsOf(r *tenant.Registry) []*tenant.Tenant {
	var out []*tenant.Tenant
	for _, id := range r.IDs() {
		t, _ := r.Get(id)
		out = append(out, t)
	}
	return out
}

// postAs posts an afterCall for another tenant of the stack.
func (s *stack) postAs(tenantID, tok, payload string) response {
	form := url.Values{"myoperator": {payload}}
	req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/webhooks/myoperator/"+tenantID+"/aftercall?token="+url.QueryEscape(tok),
		strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.do(req)
}
