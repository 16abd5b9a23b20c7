package app

import (
	"context"
	"fmt"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/overview"
	"github.com/calltrack/calltrack/internal/web"
)

// AdminAuth says who an admin token (or a console session) belongs to.
func (a *App) AdminAuth() *admin.Auth {
	return &admin.Auth{Tenants: a.Tenants, Token: a.Cfg.AdminToken}
}

// mountAdmin mounts the admin surface on e: the admin API, the admin routes of other
// packages (behind the same tenant-scoped auth hook) and the console. With
// CALLTRACK_ADMIN_ADDR set it goes on a listener of its own (AdminHTTP), else beside
// the webhooks.
func (a *App) mountAdmin(e *echo.Echo) {
	adm := a.Admin()
	adm.Register(e)
	a.registerSync(e, adm)
}

// AdminHTTP builds the admin listener's server when CALLTRACK_ADMIN_ADDR is set; nil
// otherwise (the admin surface is then on HTTP's server).
func (a *App) AdminHTTP() *echo.Echo {
	if a.Cfg.AdminAddr == "" {
		return nil
	}
	e := web.New(a.Log, nil, a.Ready(), a.readyDetails())
	a.mountAdmin(e)
	return e
}

// readyDetails shows /readyz's check errors to operators only (bearer token).
func (a *App) readyDetails() web.Option {
	auth := a.AdminAuth()
	return web.WithReadyDetails(func(c echo.Context) bool {
		ad := auth.Bearer(c)
		return ad != nil && ad.Operator()
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
