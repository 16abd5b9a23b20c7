// Package admin serves the admin API: mappings, call traces and a tenant's webhook
// URLs, behind tenant-scoped bearer tokens (auth.go), and holds the actions the
// console shares with it.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/phone"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

// MappingChanged is called after a mapping was stored or removed (late binding of
// parked calls hooks in here).
type MappingChanged func(tenant string, m call.Mapping, deleted bool)

// API is the admin API.
type API struct {
	Auth      *Auth
	Tenants   *tenant.Registry
	Mappings  *mapping.Store
	Trace     *trace.Store
	PublicURL string // base URL MyOperator reaches calltrack at, for the webhook URLs
	OnChange  MappingChanged
	// CRMUsers is a tenant's CRM users API (its adapter): a mapping's CRM user must be
	// one of them (crmusers.go). nil: not checked.
	CRMUsers func(*tenant.Tenant) (directory.Source, error)
	// UserCache keeps the CRM users listed, shared with the console's dropdown; nil
	// keeps none.
	UserCache *directory.Cache
	Log       zerolog.Logger
}

// Register mounts the admin routes under /admin/v1.
func (a *API) Register(e *echo.Echo) {
	g := e.Group("/admin/v1", a.Auth.RequireAdmin)
	g.GET("/tenants", a.listTenants)
	g.GET("/tenants/:tenant/mappings", a.listMappings)
	g.GET("/tenants/:tenant/mappings/:user", a.getMapping)
	g.PUT("/tenants/:tenant/mappings/:user", a.putMapping)
	g.DELETE("/tenants/:tenant/mappings/:user", a.deleteMapping)
	g.GET("/tenants/:tenant/calls/:call", a.getTrace)
	g.GET("/tenants/:tenant/webhooks", a.webhooks)
}

// RequireAdmin is the admin auth (Auth.RequireAdmin), for admin routes mounted
// elsewhere (user sync).
func (a *API) RequireAdmin(next echo.HandlerFunc) echo.HandlerFunc { return a.Auth.RequireAdmin(next) }

func (a *API) listTenants(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"tenants": Visible(FromContext(c), a.Tenants)})
}

// Visible lists the tenants an admin may see: all for an operator, its own for a
// tenant admin.
func Visible(ad *tenant.Admin, tenants *tenant.Registry) []string {
	if ad.Operator() {
		return tenants.IDs()
	}
	return []string{ad.Tenant}
}

// Actor is how an admin's changes are recorded (mapping journal, logs).
func Actor(via string, ad *tenant.Admin) string { return via + ":" + ad.Name }

func (a *API) listMappings(c echo.Context) error {
	ms, err := a.Mappings.List(c.Request().Context(), c.Param("tenant"))
	if err != nil {
		return a.unavailable(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"mappings": ms})
}

// AgentParam reads the MyOperator user id of the :user path parameter: every route
// that names an agent reads it here (admin API, user sync's approve, console). Echo
// routes on the escaped path when the request has one — an id with "/" or "?" comes as
// %2F, %3F — and leaves the parameter escaped; otherwise it comes unescaped, and
// unescaping it again would corrupt an id with "%". The id is checked as every stored
// one is (call.ValidateAgentID); a bad one is a *web.Error 400 invalid_agent_id.
func AgentParam(c echo.Context) (string, error) {
	id := c.Param("user")
	if c.Request().URL.RawPath != "" {
		u, err := url.PathUnescape(id)
		if err != nil {
			return "", web.Errorf(http.StatusBadRequest, "invalid_agent_id", "the MyOperator user id in the path is not validly escaped")
		}
		id = u
	}
	if err := call.ValidateAgentID(id); err != nil {
		return "", web.Errorf(http.StatusBadRequest, "invalid_agent_id", strings.TrimPrefix(err.Error(), call.ErrInvalidMapping.Error()+": "))
	}
	return id, nil
}

func (a *API) getMapping(c echo.Context) error {
	user, err := AgentParam(c)
	if err != nil {
		return err
	}
	m, err := a.Mappings.Get(c.Request().Context(), c.Param("tenant"), user)
	if errors.Is(err, mapping.ErrNotFound) {
		return web.Errorf(http.StatusNotFound, "not_found", "no mapping for MyOperator user "+user)
	}
	if err != nil {
		return a.unavailable(err)
	}
	return c.JSON(http.StatusOK, m)
}

type putBody struct {
	CRMUserID      string   `json:"crm_user_id"`
	Email          string   `json:"email"`
	Phones         []string `json:"phones"`
	Name           string   `json:"name"`
	MyOperatorUUID string   `json:"myoperator_uuid"`
}

func (a *API) putMapping(c echo.Context) error {
	user, err := AgentParam(c)
	if err != nil {
		return err
	}
	var b putBody
	if err := web.DecodeJSON(c.Request().Body, &b); err != nil {
		return web.Errorf(http.StatusBadRequest, "invalid_json", "body must be {\"crm_user_id\",\"email\",\"phones\",\"name\",\"myoperator_uuid\"}: "+err.Error())
	}
	m := call.Mapping{MyOperatorUserID: user, CRMUserID: b.CRMUserID, Email: b.Email, Name: b.Name,
		MyOperatorUUID: b.MyOperatorUUID}
	stored, err := a.SetMapping(c.Request().Context(), c.Param("tenant"), m, b.Phones, Actor("admin-api", FromContext(c)))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, stored)
}

// Stored is a mapping an admin set, as the API answers it.
type Stored struct {
	call.Mapping
	// Warning is what the admin should know of a mapping that was stored: its CRM user
	// could not be checked (the CRM did not list its users), or is deactivated.
	Warning string `json:"warning,omitempty"`
}

// SetMapping stores an admin's (manual, active) mapping of m.MyOperatorUserID, its
// phones given as typed (made E.164 with the tenant's country). Errors are *web.Error:
// 400 for an invalid mapping, 409 mapping_conflict when its email, phone or uuid is
// another agent's mapping's, 422 unknown_crm_user when its CRM user is not one of the
// tenant's CRM users, 503 when storage fails.
func (a *API) SetMapping(ctx context.Context, tenantID string, m call.Mapping, phones []string, actor string) (*Stored, error) {
	t, _ := a.Tenants.Get(tenantID)
	m.CRMUserID, m.Email, m.MyOperatorUUID = strings.TrimSpace(m.CRMUserID), strings.TrimSpace(m.Email), strings.TrimSpace(m.MyOperatorUUID)
	m.Source, m.Status, m.UpdatedAt, m.UpdatedBy = call.MappingManual, call.MappingActive, time.Now().UTC(), actor
	m.Phones = nil
	for _, p := range phones {
		if strings.TrimSpace(p) == "" {
			continue
		}
		e := phone.E164(p, t.DefaultCountry)
		if e == "" {
			return nil, web.Errorf(http.StatusBadRequest, "invalid_mapping", "phone "+p+" is not a phone number")
		}
		m.Phones = append(m.Phones, e)
	}
	invalid := func(err error) error {
		return web.Errorf(http.StatusBadRequest, "invalid_mapping", strings.TrimPrefix(err.Error(), call.ErrInvalidMapping.Error()+": "))
	}
	// Validated before the CRM is asked about its user: a malformed mapping costs no
	// call to the CRM.
	err := m.Validate()
	if err == nil {
		err = m.ValidateManual(t.CRM.Kind)
	}
	if err != nil {
		return nil, invalid(err)
	}
	warning, err := a.checkCRMUser(ctx, t, m.CRMUserID) // crmusers.go
	if err != nil {
		return nil, err
	}
	if err := a.Mappings.Put(ctx, tenantID, m); err != nil {
		var conflict *mapping.ConflictError
		switch {
		case errors.Is(err, call.ErrInvalidMapping):
			return nil, invalid(err)
		case errors.As(err, &conflict):
			return nil, ConflictError(conflict)
		}
		return nil, a.unavailable(err)
	}
	a.Log.Info().Str("tenant", tenantID).Str("myoperator_user_id", m.MyOperatorUserID).Str("crm_user_id", m.CRMUserID).
		Str("actor", actor).Bool("warned", warning != "").Msg("mapping set by admin")
	if a.OnChange != nil {
		a.OnChange(tenantID, m, false)
	}
	return &Stored{Mapping: m, Warning: warning}, nil
}

// ConflictError is the *web.Error of a mapping refused because its email, phone or
// uuid is another agent's (409 mapping_conflict, naming that agent).
func ConflictError(c *mapping.ConflictError) *web.Error {
	return web.Errorf(http.StatusConflict, "mapping_conflict",
		fmt.Sprintf("%s: one %s maps to one agent; remove it from that agent's mapping first, or leave it out of this one", c.Error(), c.Field))
}

func (a *API) deleteMapping(c echo.Context) error {
	user, err := AgentParam(c)
	if err != nil {
		return err
	}
	if err := a.DeleteMapping(c.Request().Context(), c.Param("tenant"), user, Actor("admin-api", FromContext(c))); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// DeleteMapping removes an agent's mapping (the agent returns to automatic matching).
// Errors are *web.Error: 404 when there is none, 503 when storage fails.
func (a *API) DeleteMapping(ctx context.Context, tenantID, user, actor string) error {
	err := a.Mappings.DeleteBy(ctx, tenantID, user, actor)
	if errors.Is(err, mapping.ErrNotFound) {
		return web.Errorf(http.StatusNotFound, "not_found", "no mapping for MyOperator user "+user)
	}
	if err != nil {
		return a.unavailable(err)
	}
	a.Log.Info().Str("tenant", tenantID).Str("myoperator_user_id", user).Str("actor", actor).Msg("mapping removed by admin")
	if a.OnChange != nil {
		a.OnChange(tenantID, call.Mapping{MyOperatorUserID: user}, true)
	}
	return nil
}

func (a *API) getTrace(c echo.Context) error {
	t, err := a.Trace.Get(c.Request().Context(), c.Param("tenant"), c.Param("call"))
	if errors.Is(err, trace.ErrNotFound) {
		return web.Errorf(http.StatusNotFound, "not_found", "no trace of call "+c.Param("call")+" (traces are kept 7 days)")
	}
	if err != nil {
		return a.unavailable(err)
	}
	return c.JSON(http.StatusOK, t)
}

func (a *API) webhooks(c echo.Context) error {
	u := a.WebhookURLs(c, c.Param("tenant"))
	return c.JSON(http.StatusOK, map[string]any{"incall": u.InCall, "aftercall": u.AfterCall, "v2": u.V2, "auth": u.Auth})
}

// WebhookURLs are the URLs to paste into MyOperator for a tenant.
type WebhookURLs struct{ InCall, AfterCall, V2, Auth string }

// WebhookURLs returns a tenant's webhook URLs, on PublicURL or else the request's host.
func (a *API) WebhookURLs(c echo.Context, id string) WebhookURLs {
	base := strings.TrimRight(a.PublicURL, "/")
	if base == "" {
		base = c.Scheme() + "://" + c.Request().Host
	}
	p := base + "/webhooks/myoperator/" + id
	return WebhookURLs{InCall: p + "/incall", AfterCall: p + "/aftercall", V2: p + "/v2",
		Auth: "append ?token=<webhook token>, or send it as header X-Calltrack-Token or as the HTTP Basic password"}
}

func (a *API) unavailable(err error) error {
	a.Log.Error().Err(err).Msg("admin request failed")
	return web.Errorf(http.StatusServiceUnavailable, "unavailable", "storage unavailable; retry")
}
