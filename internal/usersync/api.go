package usersync

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/web"
)

// API serves user sync on the admin API: the report, a sync on demand, and the
// approval of pending mappings.
type API struct {
	Service *Service
	// Wait is how long POST .../sync waits for a running sync of the tenant to end
	// before answering 409; default 30s.
	Wait time.Duration
	Log  zerolog.Logger
}

// Register mounts the routes on the admin group (/admin/v1, behind the admin auth).
func (a *API) Register(g *echo.Group) {
	g.GET("/tenants/:tenant/sync/report", a.report)
	g.POST("/tenants/:tenant/sync", a.sync)
	g.POST("/tenants/:tenant/mappings/:user/approve", a.approve)
}

func (a *API) report(c echo.Context) error {
	r, err := a.Service.Report(c.Request().Context(), c.Param("tenant"))
	if err != nil {
		return a.fail(err)
	}
	return c.JSON(http.StatusOK, r)
}

func (a *API) sync(c echo.Context) error {
	wait := a.Wait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	// A sync once started finishes even if the caller goes away (it is bounded by the
	// service's timeout): half a sync would only be reconciled by the next one.
	r, err := a.Service.Sync(context.WithoutCancel(c.Request().Context()), c.Param("tenant"), Options{Wait: wait})
	if err != nil {
		return a.fail(err)
	}
	return c.JSON(http.StatusOK, r)
}

func (a *API) approve(c echo.Context) error {
	user, err := admin.AgentParam(c)
	if err != nil {
		return err
	}
	m, err := a.Service.Approve(c.Request().Context(), c.Param("tenant"), user, "admin-api")
	if err != nil {
		return a.fail(err)
	}
	a.Log.Info().Str("tenant", c.Param("tenant")).Str("myoperator_user_id", m.MyOperatorUserID).Str("crm_user_id", m.CRMUserID).Msg("mapping approved")
	return c.JSON(http.StatusOK, m)
}

// fail maps the sync errors to the admin API's statuses.
func (a *API) fail(err error) error {
	var conflict *mapping.ConflictError
	switch {
	case errors.Is(err, ErrNoReport):
		return web.Errorf(http.StatusNotFound, "not_found", "no user sync has run for the tenant yet; POST .../sync runs one")
	case errors.Is(err, mapping.ErrNotFound):
		return web.Errorf(http.StatusNotFound, "not_found", "no mapping for that MyOperator user")
	case errors.Is(err, ErrUnknownTenant):
		return web.Errorf(http.StatusNotFound, "unknown_tenant", err.Error())
	case errors.Is(err, ErrNotConfigured):
		return web.Errorf(http.StatusConflict, "sync_not_configured", strings.TrimPrefix(err.Error(), "usersync: "))
	case errors.Is(err, ErrBusy):
		return web.Errorf(http.StatusConflict, "sync_running", "a sync of the tenant is running; retry shortly")
	case errors.As(err, &conflict):
		return admin.ConflictError(conflict)
	case errors.Is(err, ErrNotPending):
		return web.Errorf(http.StatusConflict, "not_pending", strings.TrimPrefix(err.Error(), "usersync: "))
	case errors.Is(err, ErrUpstream):
		// The users APIs' errors carry no secrets (the clients strip tokens).
		return web.Errorf(http.StatusBadGateway, "upstream_failed", strings.TrimPrefix(err.Error(), "usersync: "))
	}
	a.Log.Error().Err(err).Msg("user sync request failed")
	return web.Errorf(http.StatusServiceUnavailable, "unavailable", "storage or Kafka unavailable; retry")
}
