package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// inCallWith renders an inCall with extra keys (or replaced ones).
func inCallWith(uid string, state any, extra map[string]any, agents ...agent) string {
	var m map[string]any
	_ = json.Unmarshal([]byte(inCall(uid, 0, agents...)), &m)
	m["call_state"] = state
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// A click-to-call pops up as the agent's dialled call to the customer, not as a call
// received from the customer; users given as a plain string still find the agent; a
// call_state of no known meaning shows nothing and is counted.
func TestInCallDirectionAndStates(t *testing.T) {
	s := newStack(t, stackOpts{second: "zoho", publicURL: "https://calltrack.example"})
	const zohoUser, pbUser = "5725767000000411001", "pb-77"
	s.zohoB.AddUser(sandbox.ZohoUser{ID: zohoUser, FullName: "Sumit", Email: "sumit@example.com"})
	s.zohoB.AddPhoneBridgeUser(sandbox.PhoneBridgeUser{ZohoUser: pbUser, Name: "Sumit", Email: "sumit@example.com"})
	r := s.do(adminReq(s, http.MethodPut, "beta", "/mappings/"+sumit.id, `{"crm_user_id":"`+zohoUser+`","phones":["+91`+sumit.phone10+`"]}`))
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	r = s.do(adminReq(s, http.MethodPost, "beta", "/phonebridge/setup", ""))
	require.Equal(t, http.StatusOK, r.Status, "pop-ups go to PhoneBridge users: %v", r.Body)

	c2c := newUID()
	require.Equal(t, http.StatusOK, s.postInCallAs("beta", "beta-token",
		inCallWith(c2c, "1", map[string]any{"client_ref_id": "crm-click-42"}, sumit)).Status)
	plain := newUID()
	require.Equal(t, http.StatusOK, s.postInCallAs("beta", "beta-token",
		inCallWith(plain, "0", map[string]any{"users": "91" + sumit.phone10}, sumit)).Status)
	odd := newUID()
	r = s.postInCallAs("beta", "beta-token", inCallWith(odd, "6", nil, sumit))
	require.Equal(t, http.StatusOK, r.Status, "answered, so MyOperator does not retry it")
	assert.Equal(t, "ignored", r.Body["status"])
	assert.Contains(t, r.Body["reason"], `call_state "6" has no known meaning`)

	waitFor(t, "two pop-ups", func() bool { return len(s.zohoB.Notifications()) >= 2 })
	byID := map[string]int{}
	for i, n := range s.zohoB.Notifications() {
		byID[n.ID] = i
	}
	n := s.zohoB.Notifications()
	require.Contains(t, byID, c2c)
	out := n[byID[c2c]]
	assert.Equal(t, "dialed", out.Type, "a click-to-call is the agent's outgoing call")
	assert.Equal(t, "+91"+sumit.phone10, out.From, "from the agent")
	assert.Equal(t, "+919711636496", out.To, "to the customer")
	assert.Equal(t, pbUser, out.ZohoUser, "the PhoneBridge user mapped to the owner")
	require.Contains(t, byID, plain)
	in := n[byID[plain]]
	assert.Equal(t, "received", in.Type)
	assert.Equal(t, "+919711636496", in.From)
	assert.Equal(t, pbUser, in.ZohoUser, "users as a plain string")
	assert.NotContains(t, byID, odd, "no pop-up for an unknown state")
	assert.Equal(t, 1.0, testutil.ToFloat64(s.app.Metrics.Webhooks.WithLabelValues("beta", "incall", "ignored")))
	assert.Len(t, s.zohoB.Notifications(), 2)
}
