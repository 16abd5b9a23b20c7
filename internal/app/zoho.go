package app

import (
	"fmt"

	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/crm/zoho"
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
		Limiter: a.Limiter(t), HTTPClient: a.CRMClient(t), Parties: parties, Leads: leads}) // limits.go
}

// Notifier returns the live-call pop-up notifier of a tenant's CRM: Zoho's
// PhoneBridge, or a no-op for CRMs without a pop-up API (Kylas). Callers cache it
// per tenant.
func (a *App) Notifier(t *tenant.Tenant) (popup.Notifier, error) {
	switch t.CRM.Kind {
	case "zoho":
		z, err := a.zohoAdapter(t, nil, crm.LeadPolicy{})
		if err != nil {
			return nil, err
		}
		return popup.PhoneBridge{API: z, DefaultCountry: t.DefaultCountry}, nil
	case "kylas":
		return popup.Nop{}, nil
	default:
		return nil, fmt.Errorf("crm kind %q is not supported", t.CRM.Kind)
	}
}

// Dev tenant on the Zoho sandbox (ARCHITECTURE.md, "Dev mode and sandboxes").
const (
	DevZohoTenant = "demo-zoho"
	DevZohoToken  = "demo-zoho-token"
	DevZohoUserID = "5725767000000411001" // a sandbox Zoho user: Sumit Arya, the sample call's agent
)

// devZoho starts the Zoho sandbox (served under /sandbox/zoho/) and returns the
// tenant that writes to it.
func (d *Dev) devZoho() *tenant.Tenant {
	d.Zoho = sandbox.NewZoho(sandbox.ZohoOptions{APIDomain: d.Base + "/sandbox/zoho",
		Users: []sandbox.ZohoUser{{ID: DevZohoUserID, FullName: "Sumit Arya", Email: "sumit.arya@example.com",
			Role: &sandbox.ZohoRef{ID: "5725767000000026005", Name: "Sales"}, Mobile: "+918586848544"}}})
	base := d.Base + "/sandbox/zoho"
	return &tenant.Tenant{ID: DevZohoTenant, WebhookToken: DevZohoToken,
		MyOperatorAPI: d.Base + "/sandbox/myoperator", MyOperatorKey: tenant.Secret(d.MyOp.Token()),
		CRM: tenant.CRM{Kind: "zoho", Zoho: tenant.Zoho{AccountsURL: base, APIDomain: base,
			ClientID: sandbox.ZohoClientID, ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken}}}
}
