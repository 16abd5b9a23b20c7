package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (s *stack) postInCallAs(tenantID, tok, payload string) response {
	req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/webhooks/myoperator/"+tenantID+"/incall?token="+url.QueryEscape(tok),
		strings.NewReader(url.Values{"myoperator": {payload}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.do(req)
}

// A ringing call pops up in Zoho (PhoneBridge callnotify) for the mapped user, once
// the PhoneBridge setup (admin endpoint) integrated calltrack, mapped the
// PhoneBridge user to the CRM user and registered click-to-dial; the pop-up names
// the PhoneBridge user, not the CRM user id.
func TestLivePopupReachesMappedZohoUser(t *testing.T) {
	s := newStack(t, stackOpts{second: "zoho", publicURL: "https://calltrack.example"})
	s.zohoB.AddUser(sandbox.ZohoUser{ID: "5725767000000411001", FullName: "Sumit", Email: "sumit@example.com"})
	s.zohoB.AddPhoneBridgeUser(sandbox.PhoneBridgeUser{ZohoUser: "pb-77", Name: "Sumit", Email: "Sumit@Example.com"})
	r := s.do(adminReq(s, http.MethodPut, "beta", "/mappings/"+sumit.id,
		`{"crm_user_id":"5725767000000411001","phones":["+91`+sumit.phone10+`"]}`))
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)

	// Before the setup the owner has no PhoneBridge user: the pop-up is refused, counted.
	require.Equal(t, http.StatusOK, s.postInCallAs("beta", "beta-token", inCall(newUID(), 0, sumit)).Status)
	waitFor(t, "the pop-up refused before the setup", func() bool {
		return testutil.ToFloat64(s.app.Metrics.Popups.WithLabelValues("beta", "rejected")) >= 1
	})
	assert.Empty(t, s.zohoB.Notifications())
	r = s.do(adminReq(s, http.MethodPost, "beta", "/phonebridge/setup", ""))
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	assert.Equal(t, 1.0, r.Body["mapped"])
	assert.Equal(t, "https://calltrack.example/webhooks/zoho/beta/clicktodial", s.zohoB.ClickToDials()["pb-77"].URI)

	uid := newUID()
	require.Equal(t, http.StatusOK, s.postInCallAs("beta", "beta-token", inCall(uid, 0, sumit)).Status)
	require.Equal(t, http.StatusOK, s.postInCallAs("beta", "beta-token", inCall(uid, 1, sumit)).Status)
	waitFor(t, "two pop-ups in Zoho", func() bool { return len(s.zohoB.Notifications()) >= 2 })
	n := s.zohoB.Notifications()
	assert.Equal(t, uid, n[0].ID)
	assert.Equal(t, "pb-77", n[0].ZohoUser, "the PhoneBridge user id")
	assert.Equal(t, "+919711636496", n[0].From)
	states := []string{n[0].State, n[1].State}
	assert.ElementsMatch(t, []string{"ringing", "answered"}, states)
}

// A pop-up older than the configured age is dropped and counted, not shown late.
func TestLatePopupDropped(t *testing.T) {
	s := newStack(t, stackOpts{second: "zoho", noWriter: true})
	s.app.Cfg.PopupMaxAge = time.Nanosecond // every pop-up is late
	s.startWriter()
	r := s.do(adminReq(s, http.MethodPut, "beta", "/mappings/"+sumit.id,
		`{"crm_user_id":"5725767000000411001","phones":["+91`+sumit.phone10+`"]}`))
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, http.StatusOK, s.postInCallAs("beta", "beta-token", inCall(newUID(), 0, sumit)).Status)
	waitFor(t, "the late pop-up counted as dropped", func() bool {
		return testutil.ToFloat64(s.app.Metrics.Popups.WithLabelValues("beta", "dropped_late")) == 1
	})
	assert.Empty(t, s.zohoB.Notifications())
}
