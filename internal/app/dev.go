package app

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/labstack/echo/v4"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	mosandbox "github.com/calltrack/calltrack/internal/myoperator/sandbox"
	"github.com/calltrack/calltrack/internal/telemetry"
	"github.com/calltrack/calltrack/internal/tenant"
)

//go:embed samples/aftercall_answered.json
var sampleAfterCall []byte

//go:embed samples/incall_ringing.json
var sampleInCall []byte

// Dev credentials (docs/architecture.md, "Dev mode and sandboxes").
const (
	DevTenant     = "demo"
	DevToken      = "demo-token"
	DevAdminToken = "demo-admin"
	// DevTenantAdminToken is tenant demo's admin: the console and admin API, demo only.
	DevTenantAdminToken = "demo-tenant-admin"
	DevKylasAPIKey      = "demo-crm-key"
	DevKylasOAuthToken  = "demo-kylas-oauth" // the sandbox's marketplace-app token: the owner-attributing sync route
	// DevKylasRateLimit is tenant demo's CRM rate limit (requests/s). The dev sandbox's
	// Kylas enforces none, and at Kylas's 5/s calls posted one at a time (each a request
	// or more) queued behind the limiter — up to 0.9 s — so calltrack dev timed the
	// limit, not the pipeline. Production tenants keep Kylas's 5/s unless crm.rate_limit.
	DevKylasRateLimit = 50
	// DevKylasKeyUser is the Kylas sandbox user the dev api-key belongs to (Sumit Arya).
	DevKylasKeyUser = 1001
	// DevSampleAgent is the MyOperator user id of the sample calls' agent.
	DevSampleAgent = "5cd40f6556f2f124"
)

// DevOptions configure `calltrack dev`.
type DevOptions struct {
	Addr      string // HTTP (ingest, admin, sandboxes)
	KafkaAddr string // embedded Kafka (kfake), reachable over TCP
	RedisAddr string // embedded Redis (miniredis)
	LogLevel  string
	// V2SummaryWait is how long a v2 call.end waits for its call.summary (default 5m).
	V2SummaryWait time.Duration
	// SpoolDir keeps calls while Kafka does not answer (default: a directory in the temp dir).
	SpoolDir string
}

// Dev is the embedded, one-process calltrack.
type Dev struct {
	App   *App
	Kylas *sandbox.Kylas
	Zoho  *sandbox.Zoho // tenant demo-zoho's CRM (zoho.go)
	MyOp  *mosandbox.Server
	Base  string // http://host:port of the HTTP server
	// TenantsFile describes tenant demo for the on-call CLIs run against this dev
	// (backfill.go); removed on Close.
	TenantsFile string

	tmpDir string

	kafka *kfake.Cluster
	redis *miniredis.Miniredis
	ln    net.Listener
}

// StartDev starts embedded Kafka and Redis, the sandbox CRM and the app on them.
func StartDev(ctx context.Context, o DevOptions, logw io.Writer) (*Dev, error) {
	d := &Dev{}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("dev: listen %s: %w", o.Addr, err)
	}
	d.ln = ln
	d.Base = "http://" + reachable(ln.Addr().String())

	kafkaHost, kafkaPort, err := splitPort(o.KafkaAddr)
	if err != nil {
		return nil, fmt.Errorf("dev: --kafka-addr: %w", err)
	}
	d.kafka, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kafkaPort),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(kafkaHost, fmt.Sprint(kafkaPort)))
		}))
	if err != nil {
		return nil, fmt.Errorf("dev: embedded kafka on %s: %w", o.KafkaAddr, err)
	}
	d.redis = miniredis.NewMiniRedis()
	if err := d.redis.StartAddr(o.RedisAddr); err != nil {
		return nil, fmt.Errorf("dev: embedded redis on %s: %w", o.RedisAddr, err)
	}

	// Two CRM users, so the console's CRM-user dropdown has someone to offer. The
	// api-key belongs to 1001 (Sumit), a real user, as every Kylas key does: records
	// made by the plain route (`calltrack backfill` with dev's tenants file, which
	// has no OAuth token) and leads made without ownerId are owned by a user that exists.
	d.Kylas = sandbox.NewKylas(sandbox.KylasOptions{APIKey: DevKylasAPIKey, BearerToken: DevKylasOAuthToken, KeyUserID: DevKylasKeyUser, Users: []sandbox.KylasUser{
		{ID: 1001, FirstName: "Sumit", LastName: "Arya", Email: "sumit.arya@example.com", Active: true},
		{ID: 1002, FirstName: "Priya", LastName: "N", Email: "priya@example.com", Active: true}}})
	// The sandbox MyOperator delivers afterCalls it is asked to (POST .../calls?deliver=true) to tenant demo.
	// Its outbound API places the click-to-call requests and delivers their webhooks (clicktocall.go).
	d.MyOp = mosandbox.New(mosandbox.Options{AfterCallWebhook: d.Base + "/webhooks/myoperator/" + DevTenant + "/aftercall?token=" + DevToken,
		OBDAccounts: devOBDAccounts(d.Base), MoreTokens: []string{DevZohoMyOperatorToken}})
	// Two MyOperator users that user sync cannot match, so the console's Agents page shows
	// unmatched users of both sides with their reasons: the sample call's agent, whose
	// email differs from CRM user 1001's only in case (left for the admin to map), and one
	// with no CRM user at all.
	d.MyOp.PutUser(mosandbox.User{ID: DevSampleAgent, Name: "Sumit", Email: "Sumit.Arya@Example.com", ContactNumber: "8586848544", Enabled: true})
	d.MyOp.PutUser(mosandbox.User{ID: "7a1b2c3d4e5f6a7b", Name: "Ravi Kumar", Email: "ravi.kumar@example.com", ContactNumber: "9811122233", Enabled: true})
	tenants := tenant.NewRegistry(&tenant.Tenant{ID: DevTenant, WebhookToken: DevToken, CompanyID: DevCompanyID,
		APIToken: DevAPIToken, ClickToCall: devClickToCall(d.Base, DevOBDSecret),
		MyOperatorAPI: d.Base + "/sandbox/myoperator", MyOperatorKey: tenant.Secret(d.MyOp.Token()),
		CRM: tenant.CRM{Kind: call.CRMKylas, BaseURL: d.Base + "/sandbox/kylas", APIKey: DevKylasAPIKey, BearerToken: DevKylasOAuthToken,
			RateLimit: DevKylasRateLimit},
		Calls: DevCallPolicy()}, d.devZoho())
	// A name of its own, not its token: names go to logs and the mapping journal.
	if _, err := tenants.WithAdmins(tenant.Admin{Name: "sumit@demo", Tenant: DevTenant, Token: DevTenantAdminToken}); err != nil {
		return nil, err
	}
	cfg := config.Config{KafkaBrokers: []string{d.kafka.ListenAddrs()[0]}, KafkaPartitions: 3, KafkaRepl: 1,
		RedisAddr: d.redis.Addr(), RedisPrefix: "ct", AdminToken: DevAdminToken, PublicURL: d.Base,
		WriterGroup: "calltrack-writer", LogLevel: o.LogLevel,
		V2SummaryWait: o.V2SummaryWait, RecordingSigningKey: DevRecordingSigningKey, SpoolDir: o.SpoolDir,
		RecordingAllowHTTPLoopback: true} // the sandbox MyOperator's links are http://127.0.0.1
	if cfg.SpoolDir == "" {
		// By the port the broker listens on: with --kafka-addr port 0 each dev gets its
		// own spool (one process per spool; a second would be refused).
		_, port, _ := net.SplitHostPort(cfg.KafkaBrokers[0])
		cfg.SpoolDir = filepath.Join(os.TempDir(), "calltrack-dev-spool-"+port)
	}
	d.App, err = Open(ctx, cfg, NewLogger(logw, o.LogLevel), tenants, WithIngest(), WithEmbeddedRedis())
	if err != nil {
		return nil, err
	}
	d.App.console.Dev = true // plain HTTP: console cookies without Secure
	if err := d.devBackfill(); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// Run serves HTTP and runs the writer until ctx ends.
func (d *Dev) Run(ctx context.Context) error {
	e := d.App.HTTP(d.mountSandboxes, func(e *echo.Echo) {
		// A first visit finds the console.
		e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/console/") })
	})
	srv := &http.Server{Handler: telemetry.Handler(e)}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(d.ln); err != nil && err != http.ErrServerClosed {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), d.App.Cfg.ShutdownTimeoutOr(5*time.Second))
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return d.App.RunWriter(ctx, d.App.Writer()) })
	g.Go(func() error { return d.App.RunSync(ctx, 0) })
	g.Go(func() error { return d.App.RunBacklog(ctx) })
	return g.Wait()
}

func (d *Dev) mountSandboxes(e *echo.Echo) {
	e.Any("/sandbox/kylas/*", echo.WrapHandler(http.StripPrefix("/sandbox/kylas", d.Kylas)))
	e.Any("/sandbox/zoho/*", echo.WrapHandler(http.StripPrefix("/sandbox/zoho", d.Zoho)))
	e.Any("/sandbox/myoperator/*", echo.WrapHandler(http.StripPrefix("/sandbox/myoperator", d.MyOp)))
	e.GET("/sandbox/myoperator/samples/aftercall.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, sampleAfterCall)
	})
	e.GET("/sandbox/myoperator/samples/incall.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, sampleInCall)
	})
	mountV2Samples(e)
}

// Close stops everything in reverse order.
func (d *Dev) Close() {
	if d.App != nil {
		d.App.Close()
	}
	if d.redis != nil {
		d.redis.Close()
	}
	if d.kafka != nil {
		d.kafka.Close()
	}
	if d.ln != nil {
		_ = d.ln.Close()
	}
	if d.tmpDir != "" {
		_ = os.RemoveAll(d.tmpDir)
	}
}

// Banner is what `calltrack dev` prints once it is up.
func (d *Dev) Banner() string {
	b := d.Base
	return fmt.Sprintf(`calltrack dev is up: %[1]s  (ready: %[1]s/readyz)
  embedded Kafka %[2]s, embedded Redis %[3]s, spool %[10]s
  tenant %[4]q  webhook token %[5]q  admin token %[6]q

Console: %[1]s/console/
  sign in with operator token %[6]q (every tenant) or tenant-admin token %[8]q (tenant demo only);
  on demo's Agents page, the sample's agent Sumit (5cd40f6556f2f124) waits unmatched: press Map, then Map agent

MyOperator webhook URLs for tenant demo:
  inCall:    %[1]s/webhooks/myoperator/demo/incall?token=demo-token
  afterCall: %[1]s/webhooks/myoperator/demo/aftercall?token=demo-token
  v2:        %[1]s/webhooks/myoperator/demo/v2?token=demo-token   (call.end waits %[7]s for call.summary)

Or map the sample's agent to CRM user 1001 with the admin API:
  curl -s -X PUT -H 'Authorization: Bearer demo-admin' -H 'Content-Type: application/json' \
    -d '{"crm_user_id":"1001","email":"sumit.arya@example.com","phones":["+918586848544"]}' \
    %[1]s/admin/v1/tenants/demo/mappings/5cd40f6556f2f124

Post the sample afterCall (as MyOperator does: form field myoperator=<json>):
  curl -s %[1]s/sandbox/myoperator/samples/aftercall.json | \
    curl -s --data-urlencode myoperator@- '%[1]s/webhooks/myoperator/demo/aftercall?token=demo-token'

Or the same call as Webhook v2 (samples: call.summary, call.end, call.disposition, call.dial_begin):
  curl -s %[1]s/sandbox/myoperator/samples/v2/call.summary.json | \
    curl -s -H 'Content-Type: application/json' --data-binary @- '%[1]s/webhooks/myoperator/demo/v2?token=demo-token'

See it in the sandbox CRM and trace it:
  curl -s -H 'api-key: demo-crm-key' %[1]s/sandbox/kylas/v1/call-logs
  curl -s -H 'Authorization: Bearer demo-admin' %[1]s/admin/v1/tenants/demo/calls/n2.1596270949.2175190

Tenant demo-zoho (webhook token demo-zoho-token) writes to the Zoho sandbox (Calls, PhoneBridge pop-ups):
  curl -s -X PUT -H 'Authorization: Bearer demo-admin' -H 'Content-Type: application/json' \
    -d '{"crm_user_id":"5725767000000411001","email":"sumit.arya@example.com","phones":["+918586848544"]}' \
    %[1]s/admin/v1/tenants/demo-zoho/mappings/5cd40f6556f2f124
  curl -s %[1]s/sandbox/myoperator/samples/aftercall.json | \
    curl -s --data-urlencode myoperator@- '%[1]s/webhooks/myoperator/demo-zoho/aftercall?token=demo-zoho-token'
  curl -s -H 'Authorization: Zoho-oauthtoken demo-zoho-access' %[1]s/sandbox/zoho/crm/v8/Calls
  curl -s %[1]s/sandbox/zoho/stats        # batching: "POST /crm/v8/Calls" requests vs records

Click-to-call as CRM user 1001 (map the agent first, as above): the sandbox MyOperator rings the
agent and the number, then posts the call's webhooks; the call is written under 1001:
  curl -s -X POST -H 'Authorization: Bearer demo-api-token' -H 'Content-Type: application/json' \
    -d '{"crm_user_id":"1001","number":"+919711636496"}' %[1]s/api/v1/tenants/demo/calls
  curl -s %[1]s/sandbox/myoperator/obd

A call MyOperator never delivered (recorded in the sandbox's call log only), found by the backfill:
  curl -s %[1]s/sandbox/myoperator/samples/aftercall.json | curl -s -H 'Content-Type: application/json' \
    --data-binary @- '%[1]s/sandbox/myoperator/calls?at=now&call_id=n2.1700000000.4242'
  curl -s -X POST -H 'Authorization: Bearer demo-admin' -H 'Content-Type: application/json' \
    -d '{"since":"1h","dry_run":true}' %[1]s/admin/v1/tenants/demo/backfill      # would_publish 1
  curl -s -X POST -H 'Authorization: Bearer demo-admin' -H 'Content-Type: application/json' \
    -d '{"since":"1h"}' %[1]s/admin/v1/tenants/demo/backfill                     # published 1

On-call CLIs (replay, dlq, trace, backfill) against this dev:
  export %[9]s
  go run ./cmd/calltrack backfill --tenant demo --since 6h --dry-run
`, b, d.App.Cfg.KafkaBrokers[0], d.App.Cfg.RedisAddr, DevTenant, DevToken, DevAdminToken, d.App.SummaryWait(), DevTenantAdminToken, d.CLIEnv(), d.App.Cfg.SpoolDir)
}

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var port int
	if _, err := fmt.Sscan(p, &port); err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// reachable turns a listen address into one a client can dial.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" || strings.HasPrefix(host, "[::]") {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
