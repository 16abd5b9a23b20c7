package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/crm/zoho"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/popup"
	"github.com/calltrack/calltrack/internal/tenant"
)

// zohoAdapter builds a tenant's Zoho CRM adapter. Access tokens are shared by
// every replica through Redis (Zoho grants 10 per refresh token in 10 minutes).
// Callers cache the adapter per tenant: it batches concurrent inserts.
func (a *App) zohoAdapter(t *tenant.Tenant, parties crm.PartyCache, leads crm.LeadPolicy) (*zoho.Adapter, error) {
	z := t.CRM.Zoho
	tz, err := zoho.LoadTimeZone(z.TimeZone)
	if err != nil {
		return nil, err
	}
	return zoho.New(zoho.Config{AccountsURL: z.AccountsURL, APIDomain: z.APIDomain, ClientID: z.ClientID,
		ClientSecret: z.ClientSecret.Reveal(), RefreshToken: z.RefreshToken.Reveal(), DefaultCountry: t.DefaultCountry,
		TimeZone: tz, CallIDField: z.CallIDField, TokenStore: zoho.NewRedisTokenStore(a.Redis, a.Cfg.RedisPrefix),
		Limiter: a.Limiter(t), HTTPClient: a.CRMClient(t), Parties: parties, Leads: leads, // limits.go
		MaxLinger: a.Cfg.ZohoBatchLinger})
}

// Notifier returns the live-call pop-up notifier of a tenant's CRM: Zoho's
// PhoneBridge, or a no-op for CRMs without a pop-up API (Kylas). Callers cache it
// per tenant.
func (a *App) Notifier(t *tenant.Tenant) (popup.Notifier, error) {
	switch t.CRM.Kind {
	case call.CRMZoho:
		z, err := a.zohoAdapter(t, nil, crm.LeadPolicy{})
		if err != nil {
			return nil, err
		}
		return popup.PhoneBridge{API: z, Users: a.phoneBridgeStore(t), DefaultCountry: t.DefaultCountry}, nil
	case call.CRMKylas:
		return popup.Nop{}, nil
	default:
		return nil, fmt.Errorf("crm kind %q is not supported", t.CRM.Kind)
	}
}

// phoneBridgeStore is where the PhoneBridge setup keeps a tenant's CRM user →
// PhoneBridge user map.
func (a *App) phoneBridgeStore(t *tenant.Tenant) popup.PhoneBridgeStore {
	return popup.PhoneBridgeStore{Redis: a.Redis, Prefix: a.Cfg.RedisPrefix, Tenant: t.ID}
}

// ClickToDialURI is the click-to-dial URI the PhoneBridge setup registers for a
// tenant: crm.clicktodial_uri, else <CALLTRACK_PUBLIC_URL>/webhooks/zoho/<tenant>/clicktodial
// (the callback itself is issue 16's); "" when neither is set.
func (a *App) ClickToDialURI(t *tenant.Tenant) string {
	if t.CRM.Zoho.ClickToDialURI != "" {
		return t.CRM.Zoho.ClickToDialURI
	}
	if a.Cfg.PublicURL == "" {
		return ""
	}
	return strings.TrimRight(a.Cfg.PublicURL, "/") + "/webhooks/zoho/" + t.ID + "/clicktodial"
}

// SetupPhoneBridge runs the PhoneBridge setup of a Zoho tenant: calltrack integrated
// as the org's provider, PhoneBridge users mapped to CRM users by email, click-to-dial
// registered for the mapped ones, the map stored for the pop-up notifier.
func (a *App) SetupPhoneBridge(ctx context.Context, tenantID, callbackURI string) (popup.SetupReport, error) {
	t, ok := a.Tenants.Get(tenantID)
	if !ok {
		return popup.SetupReport{}, fmt.Errorf("%w: %s", ErrNoSuchTenant, tenantID)
	}
	if t.CRM.Kind != call.CRMZoho {
		return popup.SetupReport{}, fmt.Errorf("%w: tenant %s's CRM is %s; PhoneBridge is Zoho's", ErrNotZoho, tenantID, t.CRM.Kind)
	}
	z, err := a.zohoAdapter(t, nil, crm.LeadPolicy{})
	if err != nil {
		return popup.SetupReport{}, err
	}
	if callbackURI == "" {
		callbackURI = a.ClickToDialURI(t)
	}
	return popup.SetupPhoneBridge(ctx, z, z, a.phoneBridgeStore(t), callbackURI, t.CRM.Zoho.ClickToDialAuth.Reveal())
}

// Errors of SetupPhoneBridge a caller answers as bad input.
var (
	ErrNoSuchTenant = errors.New("no such tenant")
	ErrNotZoho      = errors.New("not a Zoho tenant")
)

// RegisterCRM mounts the tenant CRM admin routes: the PhoneBridge setup (Zoho), the
// CRM's users (for a console dropdown) and a connection test. Exported for
// schemas/openapi_test.go, which checks every route against openapi.yaml.
func (a *App) RegisterCRM(e *echo.Echo, adm interface {
	RequireAdmin(echo.HandlerFunc) echo.HandlerFunc
}) {
	g := e.Group("/admin/v1", adm.RequireAdmin)
	g.POST("/tenants/:tenant/phonebridge/setup", func(c echo.Context) error {
		r, err := a.SetupPhoneBridge(c.Request().Context(), c.Param("tenant"), "")
		switch {
		case errors.Is(err, ErrNoSuchTenant):
			return echo.NewHTTPError(http.StatusNotFound, err.Error())
		case errors.Is(err, ErrNotZoho):
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		case err != nil:
			return c.JSON(http.StatusBadGateway, map[string]any{"error": map[string]string{"code": "phonebridge_setup_failed", "message": err.Error()}, "report": r})
		}
		return c.JSON(http.StatusOK, r)
	})
	g.GET("/tenants/:tenant/crm/users", func(c echo.Context) error {
		src, status, err := a.tenantCRMUsers(c.Param("tenant"))
		if err != nil {
			return echo.NewHTTPError(status, err.Error())
		}
		users, err := src.Users(c.Request().Context())
		if err != nil {
			return c.JSON(http.StatusBadGateway, map[string]any{"error": map[string]string{"code": "crm_unavailable", "message": err.Error()}})
		}
		return c.JSON(http.StatusOK, map[string]any{"users": users})
	})
	g.POST("/tenants/:tenant/crm/test", func(c echo.Context) error {
		src, status, err := a.tenantCRMUsers(c.Param("tenant"))
		if err != nil {
			return echo.NewHTTPError(status, err.Error())
		}
		p, ok := src.(interface{ Ping(context.Context) error })
		if !ok {
			return echo.NewHTTPError(http.StatusBadRequest, "this CRM has no connection test")
		}
		if err := p.Ping(c.Request().Context()); err != nil {
			return c.JSON(http.StatusOK, map[string]any{"ok": false, "error": err.Error()})
		}
		return c.JSON(http.StatusOK, map[string]any{"ok": true})
	})
}

// tenantCRMUsers returns a tenant's CRM adapter as a users source (and Ping), with
// the HTTP status of a failure.
func (a *App) tenantCRMUsers(tenantID string) (directory.Source, int, error) {
	t, ok := a.Tenants.Get(tenantID)
	if !ok {
		return nil, http.StatusNotFound, fmt.Errorf("%w: %s", ErrNoSuchTenant, tenantID)
	}
	src, err := a.crmUsers(t) // console.go
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	return src, 0, nil
}

// Dev tenant on the Zoho sandbox (docs/architecture.md, "Dev mode and sandboxes").
const (
	DevZohoTenant = "demo-zoho"
	DevZohoToken  = "demo-zoho-token"
	// DevZohoMyOperatorToken is demo-zoho's sandbox MyOperator account: a call log of its
	// own, so neither tenant's backfill finds the other's calls (one MyOperator account
	// per tenant, as tenant.Load requires).
	DevZohoMyOperatorToken = "demo-zoho-myoperator-token"
	DevZohoUserID          = "5725767000000411001" // a sandbox Zoho user: Sumit Arya, the sample call's agent
	// DevPhoneBridgeUser is Sumit's PhoneBridge user id (callnotify's zohouser).
	DevPhoneBridgeUser = "pb-5725767000000411001"
)

// devZoho starts the Zoho sandbox (served under /sandbox/zoho/) and returns the
// tenant that writes to it.
func (d *Dev) devZoho() *tenant.Tenant {
	d.Zoho = sandbox.NewZoho(sandbox.ZohoOptions{APIDomain: d.Base + "/sandbox/zoho",
		Users: []sandbox.ZohoUser{{ID: DevZohoUserID, FullName: "Sumit Arya", Email: "sumit.arya@example.com",
			Role: &sandbox.ZohoRef{ID: "5725767000000026005", Name: "Sales"}, Mobile: "+918586848544"}},
		// Sumit's PhoneBridge user: an id of its own, as in Zoho.
		PhoneBridgeUsers: []sandbox.PhoneBridgeUser{{ZohoUser: DevPhoneBridgeUser, Name: "Sumit Arya", Email: "sumit.arya@example.com"}}})
	base := d.Base + "/sandbox/zoho"
	return &tenant.Tenant{ID: DevZohoTenant, WebhookToken: DevZohoToken, CompanyID: DevCompanyID,
		ClickToCall:   devClickToCall(d.Base, DevZohoOBDSecret), // clicktocall.go
		MyOperatorAPI: d.Base + "/sandbox/myoperator", MyOperatorKey: DevZohoMyOperatorToken,
		CRM: tenant.CRM{Kind: call.CRMZoho, Zoho: tenant.Zoho{AccountsURL: base, APIDomain: base,
			ClientID: sandbox.ZohoClientID, ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken,
			ClickToDialAuth: DevZohoClickToDialAuth}}}
}
