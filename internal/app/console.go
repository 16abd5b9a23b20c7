package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/authlimit"
	"github.com/calltrack/calltrack/internal/console"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/dlq"
	"github.com/calltrack/calltrack/internal/overview"
	"github.com/calltrack/calltrack/internal/replay"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

// AdminAuth says who an admin token (or a console session) belongs to.
func (a *App) AdminAuth() *admin.Auth {
	return &admin.Auth{Tenants: a.Tenants, Token: a.Cfg.AdminToken, Attempts: a.attempts}
}

// mountAdmin mounts the admin surface on e: the admin API, the admin routes of other
// packages (behind the same tenant-scoped auth hook) and the console. With
// CALLTRACK_ADMIN_ADDR set it goes on a listener of its own (AdminHTTP), else beside
// the webhooks.
func (a *App) mountAdmin(e *echo.Echo) {
	adm := a.Admin()
	adm.Register(e)
	a.registerSync(e, adm)
	a.registerBackfill(e, adm) // backfill.go
	a.RegisterCRM(e, adm)      // zoho.go
	if err := a.console.Register(e); err != nil {
		panic(err) // the embedded templates do not parse: a build defect, caught by any test
	}
}

// buildConsole builds the admin console over the admin API's actions (at Open).
func (a *App) buildConsole() {
	adm := a.Admin()
	a.console = &console.Console{Auth: adm.Auth, Admin: adm, Tenants: a.Tenants, Mappings: a.Mappings, Trace: a.Trace, Sync: a.UserSync,
		MyOperatorUsers: a.myOperatorUsers, DeadLetters: deadLetters{a}, Redis: a.Redis,
		Prefix: a.Cfg.RedisPrefix, Log: a.Log}
	if a.Backfill != nil {
		a.console.Backfills = a.Backfill
	}
}

// crmUsers is the CRM's users API of a tenant (its adapter, when it lists users).
func (a *App) crmUsers(t *tenant.Tenant) (directory.Source, error) {
	ad, err := a.Adapters(t)
	if err != nil {
		return nil, err
	}
	if u, ok := ad.(interface{ Unwrap() crm.Adapter }); ok {
		ad = u.Unwrap() // the metered wrapper (crm.go)
	}
	src, ok := ad.(directory.Source)
	if !ok {
		return nil, fmt.Errorf("the %s adapter cannot list users", t.CRM.Kind)
	}
	return src, nil
}

// myOperatorUsers is MyOperator's users API of a tenant.
func (a *App) myOperatorUsers(t *tenant.Tenant) (directory.Source, error) {
	mo, _, err := a.userSources(t)
	return mo, err
}

// deadLetters reads and replays a tenant's dead letters for the console, with dlq and
// replay on the app's Kafka client and producer.
type deadLetters struct{ a *App }

func (d deadLetters) Summary(ctx context.Context, tenantID string, since time.Time) (dlq.Summary, error) {
	return dlq.Summarize(ctx, dlq.Options{Kafka: d.a.Kafka, Topics: d.a.Topics, Window: replay.Window{Since: since},
		Filter: replay.Filter{Tenants: []string{tenantID}}})
}

func (d deadLetters) Replay(ctx context.Context, tenantID string, r console.ReplayRequest, sent func(int)) (replay.Summary, error) {
	return replay.Run(ctx, replay.Options{Kafka: d.a.Kafka, Publisher: &countingPublisher{next: d.a.Producer, sent: sent},
		Topics: d.a.Topics, Trace: d.a.Trace, Topic: d.a.Topics.DLQ, Window: replay.Window{Since: r.Since},
		Filter: replay.Filter{Tenants: []string{tenantID}, Reasons: r.Reasons}, DryRun: r.DryRun, Reattribute: r.Reattribute}, io.Discard)
}

// countingPublisher tells the console's replay progress how many messages went.
type countingPublisher struct {
	next replay.Publisher
	n    int
	sent func(int)
}

func (p *countingPublisher) Publish(ctx context.Context, msgs ...kafka.Message) error {
	if err := p.next.Publish(ctx, msgs...); err != nil {
		return err
	}
	p.n += len(msgs)
	if p.sent != nil {
		p.sent(p.n)
	}
	return nil
}

// AdminHTTP builds the admin listener's server when CALLTRACK_ADMIN_ADDR is set; nil
// otherwise (the admin surface is then on HTTP's server).
func (a *App) AdminHTTP() *echo.Echo {
	if a.Cfg.AdminAddr == "" {
		return nil
	}
	e := web.New(a.Log, nil, a.Ready(), a.webOptions()...)
	a.mountAdmin(e)
	return e
}

// webOptions are every server's: readiness details for operators, and the client's
// address from X-Forwarded-For behind CALLTRACK_TRUSTED_PROXIES only.
func (a *App) webOptions() []web.Option {
	return []web.Option{a.readyDetails(), web.WithTrustedProxies(a.proxies...)}
}

// readyDetails shows /readyz's check errors to operators only: an operator bearer
// token, or an operator's console session.
func (a *App) readyDetails() web.Option {
	auth := a.AdminAuth()
	return web.WithReadyDetails(func(c echo.Context) bool {
		if ad := auth.Bearer(c, authlimit.Readyz); ad != nil {
			return ad.Operator()
		}
		return a.console.Operator(c)
	})
}

// redisLogger routes go-redis's own log lines (pool and reconnect messages) through
// zerolog instead of its unstructured logger on stderr.
type redisLogger struct{ log zerolog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn().Str("component", "go-redis").Msg(fmt.Sprintf(format, v...))
}

// useRedisLogger installs log as go-redis's logger (a process-wide setting).
func useRedisLogger(log zerolog.Logger) { redis.SetLogger(redisLogger{log}) }

// startOverview flushes this process's counts into the Overview's hourly counters in
// Redis until the app closes (a last flush then).
func (a *App) startOverview() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	rec := &overview.Recorder{Redis: a.Redis, Prefix: a.Cfg.RedisPrefix, Metrics: a.Metrics, Log: a.Log}
	go func() { defer close(done); rec.Run(ctx) }()
	a.closers = append(a.closers, func() error { cancel(); <-done; return nil })
}
