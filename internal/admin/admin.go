// Package admin serves the admin API: mappings, call traces and a tenant's webhook
// URLs, behind a bearer token.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/phone"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

// MappingChanged is called after a mapping was stored or removed (late binding of
// parked calls hooks in here).
type MappingChanged func(tenant string, m mapping.Mapping, deleted bool)

// API is the admin API.
type API struct {
	Token     tenant.Secret
	Tenants   *tenant.Registry
	Mappings  *mapping.Store
	Trace     *trace.Store
	PublicURL string // base URL MyOperator reaches calltrack at, for the webhook URLs
	OnChange  MappingChanged
	Log       zerolog.Logger
}

// Register mounts the admin routes under /admin/v1.
func (a *API) Register(e *echo.Echo) {
	g := e.Group("/admin/v1", a.auth)
	g.GET("/tenants", a.listTenants)
	g.GET("/tenants/:tenant/mappings", a.listMappings)
	g.GET("/tenants/:tenant/mappings/:user", a.getMapping)
	g.PUT("/tenants/:tenant/mappings/:user", a.putMapping)
	g.DELETE("/tenants/:tenant/mappings/:user", a.deleteMapping)
	g.GET("/tenants/:tenant/calls/:call", a.getTrace)
	g.GET("/tenants/:tenant/webhooks", a.webhooks)
}

// RequireAdmin is the admin auth, for admin routes mounted elsewhere (user sync).
func (a *API) RequireAdmin(next echo.HandlerFunc) echo.HandlerFunc { return a.auth(next) }

func (a *API) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		got, ok := strings.CutPrefix(h, "Bearer ")
		want := a.Token.Reveal()
		x, y := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
		if !ok || want == "" || subtle.ConstantTimeCompare(x[:], y[:]) != 1 {
			return web.Errorf(http.StatusUnauthorized, "unauthorized", "missing or wrong admin bearer token")
		}
		if id := c.Param("tenant"); id != "" {
			if _, ok := a.Tenants.Get(id); !ok {
				return web.Errorf(http.StatusNotFound, "unknown_tenant", "no tenant "+id)
			}
		}
		return next(c)
	}
}

func (a *API) listTenants(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"tenants": a.Tenants.IDs()})
}

func (a *API) listMappings(c echo.Context) error {
	ms, err := a.Mappings.List(c.Request().Context(), c.Param("tenant"))
	if err != nil {
		return a.unavailable(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"mappings": ms})
}

func (a *API) getMapping(c echo.Context) error {
	m, err := a.Mappings.Get(c.Request().Context(), c.Param("tenant"), c.Param("user"))
	if errors.Is(err, mapping.ErrNotFound) {
		return web.Errorf(http.StatusNotFound, "not_found", "no mapping for MyOperator user "+c.Param("user"))
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
	var b putBody
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return web.Errorf(http.StatusBadRequest, "invalid_json", "body must be {\"crm_user_id\",\"email\",\"phones\",\"name\",\"myoperator_uuid\"}: "+err.Error())
	}
	tenantID := c.Param("tenant")
	t, _ := a.Tenants.Get(tenantID)
	m := mapping.Mapping{MyOperatorUserID: c.Param("user"), CRMUserID: strings.TrimSpace(b.CRMUserID), Email: strings.TrimSpace(b.Email),
		Name: b.Name, MyOperatorUUID: strings.TrimSpace(b.MyOperatorUUID), Source: mapping.SourceManual, Status: mapping.StatusActive,
		UpdatedAt: time.Now().UTC(), UpdatedBy: "admin-api"}
	for _, p := range b.Phones {
		e := phone.E164(p, t.DefaultCountry)
		if e == "" {
			return web.Errorf(http.StatusBadRequest, "invalid_mapping", "phone "+p+" is not a phone number")
		}
		m.Phones = append(m.Phones, e)
	}
	if err := a.Mappings.Put(c.Request().Context(), tenantID, m); err != nil {
		if errors.Is(err, mapping.ErrInvalid) {
			return web.Errorf(http.StatusBadRequest, "invalid_mapping", strings.TrimPrefix(err.Error(), mapping.ErrInvalid.Error()+": "))
		}
		return a.unavailable(err)
	}
	a.Log.Info().Str("tenant", tenantID).Str("myoperator_user_id", m.MyOperatorUserID).Str("crm_user_id", m.CRMUserID).Msg("mapping set by admin")
	if a.OnChange != nil {
		a.OnChange(tenantID, m, false)
	}
	return c.JSON(http.StatusOK, m)
}

func (a *API) deleteMapping(c echo.Context) error {
	tenantID, user := c.Param("tenant"), c.Param("user")
	err := a.Mappings.DeleteBy(c.Request().Context(), tenantID, user, "admin-api")
	if errors.Is(err, mapping.ErrNotFound) {
		return web.Errorf(http.StatusNotFound, "not_found", "no mapping for MyOperator user "+user)
	}
	if err != nil {
		return a.unavailable(err)
	}
	if a.OnChange != nil {
		a.OnChange(tenantID, mapping.Mapping{MyOperatorUserID: user}, true)
	}
	return c.NoContent(http.StatusNoContent)
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
	base := strings.TrimRight(a.PublicURL, "/")
	if base == "" {
		base = c.Scheme() + "://" + c.Request().Host
	}
	id := c.Param("tenant")
	p := base + "/webhooks/myoperator/" + id
	return c.JSON(http.StatusOK, map[string]any{
		"incall": p + "/incall", "aftercall": p + "/aftercall", "v2": p + "/v2",
		"auth": "append ?token=<webhook token>, or send it as header X-Calltrack-Token or as the HTTP Basic password",
	})
}

func (a *API) unavailable(err error) error {
	a.Log.Error().Err(err).Msg("admin request failed")
	return web.Errorf(http.StatusServiceUnavailable, "unavailable", "storage unavailable; retry")
}
