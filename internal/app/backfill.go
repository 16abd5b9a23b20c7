package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/backfill"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/ratelimit"
	"github.com/calltrack/calltrack/internal/tenant"
)

// wireBackfill builds the backfill from MyOperator's call log.
func (a *App) wireBackfill() {
	a.Backfill = &backfill.Service{Tenants: a.Tenants, Traces: a.Trace, Once: a.Idem, Publisher: a.Producer, Topics: a.Topics,
		Redis: a.Redis, Prefix: a.Cfg.RedisPrefix, Metrics: backfill.NewMetrics(a.Metrics.Registry),
		Log:       a.Log.With().Str("role", "backfill").Logger(),
		Searchers: func(t *tenant.Tenant) (backfill.Searcher, error) { return a.MyOperator(t), nil }}
}

// MyOperator returns a client of the tenant's MyOperator account whose requests (call-log
// search, recording links, users) wait on the account's shared limiter.
func (a *App) MyOperator(t *tenant.Tenant) *moapi.Client {
	c := moapi.New(t.MyOperatorAPI, t.MyOperatorKey.Reveal())
	c.Limiter = a.myOperatorLimiter(t)
	return c
}

// myOperatorLimiter paces one MyOperator account (about 20 requests a minute, shared by
// every replica; the tenant's backfill.rate). Accounts are told apart by API URL and
// token, so two tenants of one account share its limit.
func (a *App) myOperatorLimiter(t *tenant.Tenant) *ratelimit.Limiter {
	h := sha256.Sum256([]byte(t.MyOperatorAPI + "\x00" + t.MyOperatorKey.Reveal()))
	key := "myoperator:" + hex.EncodeToString(h[:8])
	if l, ok := a.moLimiters.Load(key); ok {
		return l.(*ratelimit.Limiter)
	}
	perSecond := t.Backfill.WithDefaults().RatePerMinute / 60
	l, _ := a.moLimiters.LoadOrStore(key, ratelimit.New(a.Redis, a.Cfg.RedisPrefix, key, perSecond))
	return l.(*ratelimit.Limiter)
}

// registerBackfill mounts the backfill's admin routes (run, report) behind the admin
// API's auth.
func (a *App) registerBackfill(e *echo.Echo, adm interface {
	RequireAdmin(echo.HandlerFunc) echo.HandlerFunc
}) {
	(&backfill.API{Service: a.Backfill, Log: a.Log}).Register(e.Group("/admin/v1", adm.RequireAdmin))
}

// RunBackfill runs the periodic backfill of every backfilled tenant until ctx ends.
func (a *App) RunBackfill(ctx context.Context) error {
	return (&backfill.Scheduler{Service: a.Backfill}).Run(ctx)
}

// Dev names of the demo tenant's secrets in the tenants file `calltrack dev` writes for
// the on-call CLIs (calltrack backfill needs the tenant's MyOperator settings).
const (
	devWebhookTokenEnv    = "CALLTRACK_DEV_WEBHOOK_TOKEN"
	devMyOperatorTokenEnv = "CALLTRACK_DEV_MYOPERATOR_TOKEN"
	devKylasKeyEnv        = "CALLTRACK_DEV_KYLAS_API_KEY"
	devKylasOAuthEnv      = "CALLTRACK_DEV_KYLAS_OAUTH_TOKEN"
	devAPITokenEnv        = "CALLTRACK_DEV_API_TOKEN"
	devOBDKeyEnv          = "CALLTRACK_DEV_OBD_API_KEY"
	devOBDSecretEnv       = "CALLTRACK_DEV_OBD_SECRET"
)

// devBackfill writes a tenants file of demo for `calltrack backfill` run against this
// dev. (Each dev tenant has a sandbox MyOperator account of its own, so each tenant's
// periodic backfill finds only its own calls.)
//
// The file describes demo as dev runs it (StartDev; TestDevBackfill compares them):
// the Kylas marketplace app's OAuth token beside the api-key, so the CLIs write by the
// owner-attributing route and load it without the api-key-only warning; its call
// policies, business hours and department owner; its API token and click-to-call.
func (d *Dev) devBackfill() error {
	dir, err := os.MkdirTemp("", "calltrack-dev-")
	if err != nil {
		return fmt.Errorf("dev: tenants file: %w", err)
	}
	d.tmpDir = dir
	d.TenantsFile = filepath.Join(dir, "tenants.yaml")
	body := fmt.Sprintf(`# calltrack dev's tenant %[1]s, for the on-call CLIs run against this dev (calltrack backfill).
tenants:
  %[1]s:
    company_id: "%[7]s"
    webhook_token_env: %[2]s
    myoperator_api_url: %[3]s/sandbox/myoperator
    myoperator_api_token_env: %[4]s
    api_token_env: %[10]s
    click_to_call:
      obd_url: %[3]s/sandbox/myoperator/obd-api-v1
      api_key_env: %[11]s
      secret_token_env: %[12]s
      public_ivr_id: "%[13]s"
    crm:
      kind: kylas
      base_url: %[3]s/sandbox/kylas
      api_key_env: %[5]s
      bearer_token_env: %[8]s
      rate_limit: %[6]d
    policies:
      missed: log_and_task
    business_hours:
      time_zone: Asia/Kolkata
      mon: "09:30-18:30"
      tue: "09:30-18:30"
      wed: "09:30-18:30"
      thu: "09:30-18:30"
      fri: "09:30-18:30"
      sat: "10:00-14:00"
    task_due: %[14]s
    departments:
      sales: "%[9]s"
`, DevTenant, devWebhookTokenEnv, d.Base, devMyOperatorTokenEnv, devKylasKeyEnv, DevKylasRateLimit,
		DevCompanyID, devKylasOAuthEnv, DevDepartmentOwner, devAPITokenEnv, devOBDKeyEnv, devOBDSecretEnv,
		DevOBDPublicIVRID, DevCallPolicy().TaskDue)
	if err := os.WriteFile(d.TenantsFile, []byte(body), 0o600); err != nil {
		return fmt.Errorf("dev: tenants file: %w", err)
	}
	return nil
}

// CLIEnv is the environment the on-call CLIs need to work against this dev.
func (d *Dev) CLIEnv() string {
	return fmt.Sprintf("CALLTRACK_KAFKA_BROKERS=%s CALLTRACK_REDIS_ADDR=%s CALLTRACK_TENANTS_FILE=%s %s=%s %s=%s %s=%s %s=%s %s=%s %s=%s %s=%s",
		d.App.Cfg.KafkaBrokers[0], d.App.Cfg.RedisAddr, d.TenantsFile, devWebhookTokenEnv, DevToken,
		devMyOperatorTokenEnv, d.MyOp.Token(), devKylasKeyEnv, DevKylasAPIKey, devKylasOAuthEnv, DevKylasOAuthToken,
		devAPITokenEnv, DevAPIToken, devOBDKeyEnv, DevOBDAPIKey, devOBDSecretEnv, DevOBDSecret)
}
