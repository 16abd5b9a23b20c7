package app

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/kylas"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/crm/zoho"
	"github.com/calltrack/calltrack/internal/metrics"
)

// callRequests reads calltrack_crm_call_requests_total{tenant="acme",crm,op} for
// each op.
func callRequests(m *metrics.Metrics, crmKind string, ops ...string) map[string]float64 {
	got := map[string]float64{}
	for _, op := range ops {
		got[op] = testutil.ToFloat64(m.CRMCallRequests.WithLabelValues("acme", crmKind, op))
	}
	return got
}

// calltrack_crm_call_requests_total labels each request by what it is — the call's
// create, update or find, a lead/contact search, a lead create, field metadata —
// not every request of a create as "create".
func TestCRMCallRequestsByOp(t *testing.T) {
	t.Parallel()
	ops := []string{crm.RequestCreate, crm.RequestUpdate, crm.RequestFind, crm.RequestSearch, crm.RequestLeadCreate, crm.RequestFields}
	const unknown = "+919711636496"

	t.Run("kylas", func(t *testing.T) {
		t.Parallel()
		sb := sandbox.NewKylas(sandbox.KylasOptions{Seed: 1, Users: []sandbox.KylasUser{{ID: 7, FirstName: "Asha", LastName: "Rao", Active: true}}})
		srv := httptest.NewServer(sb)
		t.Cleanup(srv.Close)
		k, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key", BearerToken: "demo-kylas-oauth",
			SearchSettle: time.Millisecond, Leads: crm.LeadPolicy{Create: true}})
		require.NoError(t, err)
		m := metrics.New()
		ad := metered{Adapter: k, m: m, tenant: "acme", crm: "kylas"}

		// An unknown caller: a search per entity (contacts, leads), the lead, the call.
		c := crmtest.NewCall("c-1", unknown, "7", call.Incoming, call.Answered)
		id, err := ad.CreateCall(t.Context(), c)
		require.NoError(t, err)
		require.Len(t, sb.Leads(), 1)
		assert.Equal(t, map[string]float64{crm.RequestCreate: 1, crm.RequestUpdate: 0, crm.RequestFind: 0,
			crm.RequestSearch: 2, crm.RequestLeadCreate: 1, crm.RequestFields: 0}, callRequests(m, "kylas", ops...))
		assert.Equal(t, 1, testutil.CollectAndCount(m.CRMRequestsPerCall), "one call observed")
		assert.Equal(t, 4, sb.Stats().Requests, "the counts are the sandbox's requests")

		// A repeat caller: the write alone (the lead is cached); an update; a find.
		_, err = ad.CreateCall(t.Context(), crmtest.NewCall("c-2", unknown, "7", call.Incoming, call.Answered))
		require.NoError(t, err)
		require.NoError(t, ad.UpdateCall(t.Context(), id, c))
		found, ok, err := ad.FindCall(t.Context(), c)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, id, found)
		assert.Equal(t, map[string]float64{crm.RequestCreate: 2, crm.RequestUpdate: 1, crm.RequestFind: 1,
			crm.RequestSearch: 2, crm.RequestLeadCreate: 1, crm.RequestFields: 0}, callRequests(m, "kylas", ops...))
		assert.Equal(t, 7, sb.Stats().Requests)
	})

	t.Run("zoho", func(t *testing.T) {
		t.Parallel()
		const owner = "5725767000000411001"
		sb := sandbox.NewZoho(sandbox.ZohoOptions{Seed: 1})
		sb.AddUser(sandbox.ZohoUser{ID: owner, FullName: "Asha Rao", Email: "asha@example.com", Status: "active"})
		srv := httptest.NewServer(sb)
		t.Cleanup(srv.Close)
		z, err := zoho.New(zoho.Config{AccountsURL: srv.URL, APIDomain: srv.URL, ClientID: sandbox.ZohoClientID,
			ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken,
			Linger: 10 * time.Millisecond, Leads: crm.LeadPolicy{Create: true}})
		require.NoError(t, err)
		m := metrics.New()
		ad := metered{Adapter: z, m: m, tenant: "acme", crm: "zoho"}

		// An unknown caller with a recording: the Calls field metadata (read once for
		// Voice_Recording__s's length), a COQL query per module (Contacts, Leads), the
		// lead, the insert.
		c := crmtest.NewCall("c-1", unknown, owner, call.Incoming, call.Answered)
		c.RecordingURL = "https://rec.example/c-1"
		_, err = ad.CreateCall(t.Context(), c)
		require.NoError(t, err)
		require.Len(t, sb.Leads(), 1)
		assert.Equal(t, map[string]float64{crm.RequestCreate: 1, crm.RequestUpdate: 0, crm.RequestFind: 0,
			crm.RequestSearch: 2, crm.RequestLeadCreate: 1, crm.RequestFields: 1}, callRequests(m, "zoho", ops...))
	})
}
