package backfill

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/replay"
	"github.com/calltrack/calltrack/internal/web"
)

// API serves the backfill on the admin API: a run on demand and the last report.
type API struct {
	Service *Service
	// Answer is how long POST .../backfill waits for the run before answering 202 (the
	// run goes on; GET .../backfill/report shows it when done); default 20s, inside the
	// HTTP server's write timeout.
	Answer time.Duration
	// Wait is how long a run waits for a running backfill of the tenant; default 10s.
	Wait time.Duration
	Log  zerolog.Logger
}

// Register mounts the routes on the admin group (/admin/v1, behind the admin auth).
func (a *API) Register(g *echo.Group) {
	g.POST("/tenants/:tenant/backfill", a.run)
	g.GET("/tenants/:tenant/backfill/report", a.report)
}

// request is POST .../backfill's body: {"since":"6h","until":"...","dry_run":true};
// since and until are RFC 3339 or a time ago (2h, 30m, 1d).
type request struct {
	Since  string `json:"since"`
	Until  string `json:"until"`
	DryRun bool   `json:"dry_run"`
}

func (a *API) run(c echo.Context) error {
	var b request
	if err := web.DecodeJSON(c.Request().Body, &b); err != nil {
		return web.Errorf(http.StatusBadRequest, "invalid_json", `body must be {"since":"6h","until":"<optional>","dry_run":false}: `+err.Error())
	}
	now := a.Service.now()
	since, err := replay.ParseTime(b.Since, now)
	if err != nil {
		return web.Errorf(http.StatusBadRequest, "bad_window", "since: "+strings.TrimPrefix(err.Error(), replay.ErrBadWindow.Error()+": "))
	}
	until, err := replay.ParseTime(b.Until, now)
	if err != nil {
		return web.Errorf(http.StatusBadRequest, "bad_window", "until: "+strings.TrimPrefix(err.Error(), replay.ErrBadWindow.Error()+": "))
	}
	if _, _, err := Window(since, until, now); err != nil {
		return a.fail(err)
	}
	wait := a.Wait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	answer := a.Answer
	if answer <= 0 {
		answer = 20 * time.Second
	}
	type result struct {
		r   *Report
		err error
	}
	done := make(chan result, 1)
	tenantID := c.Param("tenant")
	go func() {
		// A run once started finishes even if the caller goes away (it is bounded by the
		// service's timeout); its report is kept.
		r, err := a.Service.Run(context.WithoutCancel(c.Request().Context()), tenantID,
			Options{Since: since, Until: until, DryRun: b.DryRun, Trigger: TriggerAdmin, Wait: wait})
		done <- result{r, err}
	}()
	t := time.NewTimer(answer)
	defer t.Stop()
	select {
	case res := <-done:
		if res.err != nil && res.r == nil {
			return a.fail(res.err)
		}
		if res.err != nil {
			// Part of the window was done: the report says how far, and why it stopped.
			a.Log.Warn().Err(res.err).Str("tenant", tenantID).Msg("backfill failed")
			return c.JSON(statusOf(res.err), res.r)
		}
		return c.JSON(http.StatusOK, res.r)
	case <-t.C:
		return c.JSON(http.StatusAccepted, map[string]any{"status": "running", "tenant": tenantID,
			"report": "/admin/v1/tenants/" + tenantID + "/backfill/report"})
	}
}

func (a *API) report(c echo.Context) error {
	r, err := a.Service.LastReport(c.Request().Context(), c.Param("tenant"))
	if err != nil {
		return a.fail(err)
	}
	return c.JSON(http.StatusOK, r)
}

// statusOf is the HTTP status of a run's error.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNoReport), errors.Is(err, ErrUnknownTenant):
		return http.StatusNotFound
	case errors.Is(err, ErrBadWindow):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotConfigured), errors.Is(err, ErrBusy):
		return http.StatusConflict
	case errors.Is(err, ErrUpstream):
		return http.StatusBadGateway
	}
	return http.StatusServiceUnavailable
}

// fail maps a run's error to the admin API's error answer.
func (a *API) fail(err error) error {
	status := statusOf(err)
	msg := strings.TrimPrefix(err.Error(), "backfill: ")
	switch {
	case errors.Is(err, ErrNoReport):
		return web.Errorf(status, "not_found", "no backfill has run for the tenant yet; POST .../backfill runs one")
	case errors.Is(err, ErrUnknownTenant):
		return web.Errorf(status, "unknown_tenant", msg)
	case errors.Is(err, ErrBadWindow):
		return web.Errorf(status, "bad_window", msg)
	case errors.Is(err, ErrNotConfigured):
		return web.Errorf(status, "backfill_not_configured", msg)
	case errors.Is(err, ErrBusy):
		return web.Errorf(status, "backfill_running", "a backfill of the tenant is running; retry shortly")
	case errors.Is(err, ErrUpstream):
		// MyOperator's errors carry no secrets (the client strips the token).
		return web.Errorf(status, "upstream_failed", msg)
	}
	a.Log.Error().Err(err).Msg("backfill request failed")
	return web.Errorf(status, "unavailable", "Kafka or Redis unavailable; retry")
}
