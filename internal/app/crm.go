package app

import (
	"context"
	"fmt"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/kylas"
	"github.com/calltrack/calltrack/internal/crm/partycache"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/tenant"
)

// crmAdapter builds a tenant's CRM adapter: number lookups cached in Redis for every
// replica, the tenant's unknown-caller policy, its rate limiter and counted client,
// and the requests-per-call metric around it.
func (a *App) crmAdapter(t *tenant.Tenant) (crm.Adapter, error) {
	parties := partycache.New(a.Redis, a.Cfg.RedisPrefix, t.ID)
	leads := crm.LeadPolicy{Create: t.CRM.Policy.CreateLeads(), Source: t.CRM.Policy.LeadSource, Tag: t.CRM.Policy.LeadTag}
	var ad crm.Adapter
	switch t.CRM.Kind {
	case call.CRMKylas:
		k, err := kylas.New(kylas.Config{BaseURL: t.CRM.BaseURL, APIKey: t.CRM.APIKey.Reveal(),
			BearerToken: t.CRM.BearerToken.Reveal(), DefaultCountry: t.DefaultCountry,
			Limiter: a.Limiter(t), HTTPClient: a.CRMClient(t), Parties: parties, Leads: leads})
		if err != nil {
			return nil, err
		}
		ad = k
	case call.CRMZoho:
		z, err := a.zohoAdapter(t, parties, leads) // zoho.go
		if err != nil {
			return nil, err
		}
		ad = z
	default:
		return nil, fmt.Errorf("crm kind %q is not supported", t.CRM.Kind)
	}
	return metered{Adapter: ad, m: a.Metrics, tenant: t.ID, crm: t.CRM.Kind}, nil
}

// metered counts the CRM requests each call operation costs.
type metered struct {
	crm.Adapter
	m           *metrics.Metrics
	tenant, crm string
}

func (m metered) CreateCall(ctx context.Context, c crm.Call) (string, error) {
	ctx, n := crm.WithRequestCounts(ctx, crm.RequestCreate)
	id, err := m.Adapter.CreateCall(ctx, c)
	total, byOp := n()
	m.m.CRMRequestsPerCall.WithLabelValues(m.tenant, m.crm).Observe(total)
	m.count(byOp)
	return id, err
}

func (m metered) UpdateCall(ctx context.Context, recordID string, c crm.Call) error {
	ctx, n := crm.WithRequestCounts(ctx, crm.RequestUpdate)
	err := m.Adapter.UpdateCall(ctx, recordID, c)
	_, byOp := n()
	m.count(byOp)
	return err
}

func (m metered) FindCall(ctx context.Context, c crm.Call) (string, bool, error) {
	ctx, n := crm.WithRequestCounts(ctx, crm.RequestFind)
	id, found, err := m.Adapter.FindCall(ctx, c)
	_, byOp := n()
	m.count(byOp)
	return id, found, err
}

// count adds one call operation's requests to calltrack_crm_call_requests_total by
// what each request was (the call's create, update or find, a lead/contact search,
// a lead create, field metadata).
func (m metered) count(byOp map[string]float64) {
	for op, n := range byOp {
		m.m.CRMCallRequests.WithLabelValues(m.tenant, m.crm, op).Add(n)
	}
}

// Unwrap returns the adapter measured (for its other roles: users, pop-ups).
func (m metered) Unwrap() crm.Adapter { return m.Adapter }
