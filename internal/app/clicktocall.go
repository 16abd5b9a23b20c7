package app

import (
	"context"
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/clicktocall"
	"github.com/calltrack/calltrack/internal/crm"
	mosandbox "github.com/calltrack/calltrack/internal/myoperator/sandbox"
	"github.com/calltrack/calltrack/internal/tenant"
)

// Dev click-to-call settings: tenant demo's API token, and the sandbox MyOperator
// accounts' outbound-API credentials (tenants demo and demo-zoho each have one).
const (
	DevAPIToken            = "demo-api-token"
	DevCompanyID           = "5cd40f6554442586" // the samples' company
	DevOBDAPIKey           = "demo-obd-api-key"
	DevOBDSecret           = "demo-obd-secret"
	DevZohoOBDSecret       = "demo-zoho-obd-secret"
	DevOBDPublicIVRID      = "demo-obd-ivr"
	DevZohoClickToDialAuth = "demo-zoho-clicktodial"
)

// devOBDAccounts are the sandbox MyOperator's outbound-API accounts: a placed call's
// webhooks go to the tenant it was placed for.
func devOBDAccounts(base string) []mosandbox.OBDAccount {
	hook := func(tenantID, token, kind string) string {
		return base + "/webhooks/myoperator/" + tenantID + "/" + kind + "?token=" + token
	}
	return []mosandbox.OBDAccount{
		{CompanyID: DevCompanyID, APIKey: DevOBDAPIKey, SecretToken: DevOBDSecret, PublicIVRID: DevOBDPublicIVRID,
			InCallWebhook: hook(DevTenant, DevToken, "incall"), AfterCallWebhook: hook(DevTenant, DevToken, "aftercall")},
		{CompanyID: DevCompanyID, APIKey: DevOBDAPIKey, SecretToken: DevZohoOBDSecret, PublicIVRID: DevOBDPublicIVRID,
			APIToken:      DevZohoMyOperatorToken, // its calls join demo-zoho's call log, not demo's
			InCallWebhook: hook(DevZohoTenant, DevZohoToken, "incall"), AfterCallWebhook: hook(DevZohoTenant, DevZohoToken, "aftercall")},
	}
}

// devClickToCall is a dev tenant's click-to-call through the sandbox MyOperator.
func devClickToCall(base, secret string) tenant.ClickToCall {
	return tenant.ClickToCall{OBDURL: base + "/sandbox/myoperator/obd-api-v1", APIKey: DevOBDAPIKey, SecretToken: tenant.Secret(secret),
		PublicIVRID: DevOBDPublicIVRID, PerUserPerMinute: tenant.DefaultClickToCallPerMinute}
}

// wireClickToCall builds the click-to-call service: the reverse mapping from the
// mapping store, MyOperator's outbound API per tenant, a per-user budget in Redis.
func (a *App) wireClickToCall() {
	a.clickToCall = &clicktocall.Service{Agents: a.Mappings, Dialer: clicktocall.OBDDialer{},
		Limiter: clicktocall.NewRedisLimiter(a.Redis, a.Cfg.RedisPrefix), Log: a.Log.With().Str("role", "clicktocall").Logger(),
		Outcomes: clicktocall.NewOutcomes(a.Metrics.Registry)}
}

// mountClickToCall mounts POST /api/v1/tenants/{tenant}/calls and Zoho PhoneBridge's
// click-to-dial callback, POST /webhooks/zoho/{tenant}/clicktodial.
func (a *App) mountClickToCall(e *echo.Echo) {
	(&clicktocall.API{Service: a.clickToCall, Tenants: a.Tenants, Attempts: a.attempts}).Register(e)
	(&clicktocall.ZohoDial{Service: a.clickToCall, Tenants: a.Tenants, Attempts: a.attempts, Log: a.Log,
		Users: func(t *tenant.Tenant) clicktocall.ZohoUsers { return phoneBridgeUsers{a, t} },
		Errors: func(t *tenant.Tenant) (clicktocall.ZohoErrors, error) {
			return a.zohoAdapter(t, nil, crm.LeadPolicy{})
		}}).Register(e)
}

// phoneBridgeUsers reads the PhoneBridge setup's map backwards: the CRM user of a
// PhoneBridge user.
type phoneBridgeUsers struct {
	a *App
	t *tenant.Tenant
}

func (p phoneBridgeUsers) CRMUser(ctx context.Context, zohouser string) (string, bool, error) {
	m, err := p.a.phoneBridgeStore(p.t).All(ctx)
	if err != nil {
		return "", false, fmt.Errorf("phonebridge map: %w", err)
	}
	for crmUser, pb := range m {
		if pb == zohouser {
			return crmUser, true, nil
		}
	}
	return "", false, nil
}
