package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/route"
)

// One tenant's CRM failing (every write 503, slowly) must not delay another tenant's
// calls; the failing tenant's calls wait on the retry topic and are written once its
// CRM recovers.
func TestFailingTenantDoesNotDelayHealthyTenant(t *testing.T) {
	policy := route.DefaultPolicy()
	policy.Base, policy.Cap = 200*time.Millisecond, time.Second // keep the recovery quick
	s := newStack(t, stackOpts{second: "kylas", retry: &policy})
	s.mapAgent(sumit.id, "1001", sumit.email)
	r := s.do(adminReq(s, http.MethodPut, "beta", "/mappings/"+priya.id, `{"crm_user_id":"2002"}`))
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	require.NoError(t, s.kylas.SetFaults(sandbox.Faults{ErrorRate: 1, Status: 503, LatencyMS: 300}))

	const n = 30
	var failing, healthy []string
	for i := 0; i < n; i++ {
		a := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}}
		require.Equal(t, http.StatusOK, s.postForm("aftercall", afterCall(a), token).Status)
		failing = append(failing, a.uid)
		b := callSpec{uid: newUID(), status: 1, legs: []leg{{agents: []agent{priya}, answered: true}}}
		require.Equal(t, http.StatusOK, s.postAs("beta", "beta-token", afterCall(b)).Status)
		healthy = append(healthy, b.uid)
	}
	// The healthy tenant's calls are all written promptly although acme's CRM fails.
	start := time.Now()
	waitFor(t, fmt.Sprintf("all %d calls of the healthy tenant written", n), func() bool { return len(s.kylasB.Records()) >= n })
	t.Logf("healthy tenant: %d calls written %s after the last webhook", n, time.Since(start).Round(time.Millisecond))
	assert.Empty(t, s.kylas.Records(), "the failing CRM accepted nothing")
	for _, r := range s.kylasB.Records() {
		assert.EqualValues(t, 2002, r.Owner.ID)
	}

	// The failing tenant's CRM recovers: every call is written exactly once.
	require.NoError(t, s.kylas.SetFaults(sandbox.Faults{}))
	testenvEventually(t, 60*time.Second, "the failing tenant's calls written after recovery", func() bool { return len(s.kylas.Records()) >= n })
	per := map[string]int{}
	for _, r := range s.kylas.Records() {
		per[r.RemoteID]++
		assert.EqualValues(t, 1001, r.Owner.ID)
	}
	for _, uid := range failing {
		assert.Equal(t, 1, per[uid], "records of %s", uid)
	}
}

func adminReq(s *stack, method, tenant, path, body string) *http.Request {
	req, _ := http.NewRequest(method, s.api.URL+"/admin/v1/tenants/"+tenant+path, stringsReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	return req
}
