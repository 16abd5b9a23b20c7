package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	mosandbox "github.com/calltrack/calltrack/internal/myoperator/sandbox"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
)

// Click-to-call credentials of the e2e tenant (stackOpts.clickToCall).
const (
	apiToken  = "acme-api-token"
	obdAPIKey = "e2e-obd-api-key"
	obdSecret = "e2e-obd-secret"
	obdIVR    = "e2e-obd-ivr"
)

// postCall posts POST /api/v1/tenants/acme/calls with the Authorization header auth.
func (s *stack) postCall(auth, body string) response {
	req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/api/v1/tenants/"+tenantID+"/calls", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return s.do(req)
}

// obdCall waits until the sandbox MyOperator has played the placed call to its end.
func (s *stack) obdCall(ref string) mosandbox.OBDCall { return s.obdCallOf(s.mo, ref) }

func (s *stack) obdCallOf(mo *mosandbox.Server, ref string) mosandbox.OBDCall {
	s.t.Helper()
	var got mosandbox.OBDCall
	testenv.Eventually(s.t, within, "the sandbox plays call "+ref, func() bool {
		for _, c := range mo.OBDCalls() {
			if c.ReferenceID == ref && c.State == "ended" && len(c.Delivered)+len(c.Errors) == 3 {
				got = c
				return true
			}
		}
		return false
	})
	return got
}

// Click-to-call as the issue checks it: a mapped CRM user's request makes MyOperator
// ring that user's agent and then the number, and the resulting call lands once in
// the CRM, owned by that user; unmapped users, disabled agents, bad numbers and bad
// tokens get clear 4xx errors and ring no one; a user's requests are rate-limited.
func TestClickToCall(t *testing.T) {
	s := newStack(t, stackOpts{clickToCall: true})
	s.mo.PutUser(mosandbox.User{ID: sumit.id, Name: sumit.name, Email: sumit.email, ContactNumber: sumit.phone10, Extension: sumit.ext, Enabled: true})
	s.mapAgent(sumit.id, "1001", sumit.email, "+91"+sumit.phone10)
	bearer := "Bearer " + apiToken

	t.Run("mapped user: agent rung, then the number; one record owned by the user", func(t *testing.T) {
		r := s.postCall(bearer, `{"crm_user_id":"1001","number":"+919711636496"}`)
		require.Equal(t, http.StatusAccepted, r.Status, "%v", r.Body)
		assert.Equal(t, "dialing", r.Body["status"])
		assert.Equal(t, sumit.id, r.Body["myoperator_user_id"])
		assert.Equal(t, "+919711636496", r.Body["number"])
		ref, _ := r.Body["reference_id"].(string)
		require.Regexp(t, `^c2c-[0-9a-f]{16}$`, ref)

		c := s.obdCall(ref)
		assert.Equal(t, sumit.id, c.UserID, "MyOperator asked to ring the clicking user's agent")
		assert.Equal(t, "+919711636496", c.Number)
		assert.Equal(t, []string{"ringing", "answered", "ended"}, c.Delivered, "inCall ringing, answered, then the afterCall: %v", c.Errors)

		recs := s.waitRecords(c.CallID, 1, within)
		s.waitStatus(c.CallID, "written", within)
		tr := s.waitStage(c.CallID, "click_to_call", within) // the call's trace names the click it came from
		assert.Contains(t, details(tr), "reference "+ref, "support follows the click's reference to its call")
		assert.EqualValues(t, 1001, recs[0].Owner.ID, "owned by the user who clicked")
		assert.Equal(t, "outgoing", recs[0].CallType)
		assert.Equal(t, "+919711636496", recs[0].PhoneNumber)
		assert.Len(t, s.records(c.CallID), 1, "logged once")
	})

	noRing := func(t *testing.T, before int) {
		t.Helper()
		assert.Len(t, s.mo.OBDCalls(), before, "MyOperator asked to ring no one")
	}
	errBody := func(code string) map[string]any {
		return map[string]any{"code": code}
	}
	code := func(r response) map[string]any {
		e, _ := r.Body["error"].(map[string]any)
		return map[string]any{"code": e["code"]}
	}

	t.Run("unmapped user: 422 unmapped_user", func(t *testing.T) {
		n := len(s.mo.OBDCalls())
		r := s.postCall(bearer, `{"crm_user_id":"9999","number":"+919711636496"}`)
		assert.Equal(t, http.StatusUnprocessableEntity, r.Status)
		assert.Equal(t, map[string]any{"error": map[string]any{"code": "unmapped_user", "message": "no MyOperator agent is mapped to CRM user 9999"}}, r.Body)
		noRing(t, n)
	})

	t.Run("disabled agent: 409 agent_disabled", func(t *testing.T) {
		require.NoError(t, s.app.Mappings.Put(context.Background(), tenantID, call.Mapping{MyOperatorUserID: priya.id, CRMUserID: "1002",
			Email: priya.email, Source: call.MappingManual, Status: call.MappingSuspended}))
		n := len(s.mo.OBDCalls())
		r := s.postCall(bearer, `{"crm_user_id":1002,"number":"+919711636496"}`)
		assert.Equal(t, http.StatusConflict, r.Status)
		assert.Equal(t, errBody("agent_disabled"), code(r), "%v", r.Body)
		noRing(t, n)
	})

	t.Run("agent disabled in MyOperator: 409 myoperator_refused with its reason", func(t *testing.T) {
		s.mapAgent(ravi.id, "1003", ravi.email)
		s.mo.PutUser(mosandbox.User{ID: ravi.id, Name: ravi.name, Email: ravi.email, ContactNumber: ravi.phone10, Enabled: false})
		r := s.postCall(bearer, `{"crm_user_id":"1003","number":"+919711636496"}`)
		assert.Equal(t, http.StatusConflict, r.Status)
		assert.Equal(t, map[string]any{"error": map[string]any{"code": "myoperator_refused", "message": "MyOperator refused the call: user is disabled"}}, r.Body)
	})

	t.Run("bad input: 400 with what is wrong", func(t *testing.T) {
		n := len(s.mo.OBDCalls())
		for body, want := range map[string]string{
			`{"crm_user_id":"1001","number":"call me maybe"}`: "invalid_number",
			`{"crm_user_id":"1001","number":"+1900555"}`:      "invalid_number", // too short for +1: MyOperator would refuse it
			`{"crm_user_id":"1001"}`:                          "invalid_request",
			`{"number":"+919711636496"}`:                      "invalid_request",
			`{"crm_user_id":"1001","phone":"+919711636496"}`:  "invalid_request",
			`not json`: "invalid_request",
			`{"crm_user_id":["1001"],"number":"+919711636496"}`: "invalid_request",
		} {
			r := s.postCall(bearer, body)
			assert.Equal(t, http.StatusBadRequest, r.Status, body)
			assert.Equal(t, errBody(want), code(r), "%s: %v", body, r.Body)
		}
		noRing(t, n)
	})

	t.Run("bad token: 401", func(t *testing.T) {
		n := len(s.mo.OBDCalls())
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + token, apiToken, "Basic " + apiToken} {
			r := s.postCall(auth, `{"crm_user_id":"1001","number":"+919711636496"}`)
			assert.Equal(t, http.StatusUnauthorized, r.Status, auth)
			assert.Equal(t, errBody("unauthorized"), code(r))
		}
		noRing(t, n)
	})

	t.Run("a user's requests are rate-limited (3 a minute here); others are not", func(t *testing.T) {
		s.mapAgent(nobody.id, "1009", nobody.email)
		for i := range 3 {
			r := s.postCall(bearer, `{"crm_user_id":"1009","number":"+919711636496"}`)
			require.Equal(t, http.StatusAccepted, r.Status, "request %d: %v", i+1, r.Body)
		}
		r := s.postCall(bearer, `{"crm_user_id":"1009","number":"+919711636496"}`)
		assert.Equal(t, http.StatusTooManyRequests, r.Status)
		assert.Equal(t, errBody("rate_limited"), code(r))
		assert.NotEmpty(t, r.Header.Get("Retry-After"))
		r = s.postCall(bearer, `{"crm_user_id":"1001","number":"+919711636497"}`)
		assert.Equal(t, http.StatusAccepted, r.Status, "another user: %v", r.Body)
	})

	t.Run("metrics count the outcomes", func(t *testing.T) {
		res, err := http.Get(s.api.URL + "/metrics")
		require.NoError(t, err)
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		body := string(raw)
		assert.Contains(t, body, `calltrack_click_to_call_requests_total{outcome="placed",tenant="acme",via="api"} 5`)
		assert.Contains(t, body, `calltrack_click_to_call_requests_total{outcome="unmapped_user",tenant="acme",via="api"} 1`)
		// Refused before the click is looked at, and counted all the same: the wrong tokens
		// and the bodies that are not the API's.
		assert.Contains(t, body, `calltrack_click_to_call_requests_total{outcome="unauthorized",tenant="acme",via="api"} 5`)
		assert.Contains(t, body, `calltrack_click_to_call_requests_total{outcome="invalid_request",tenant="acme",via="api"} 5`)
	})
}

// Zoho: a click in Zoho reaches the click-to-dial URI the PhoneBridge setup
// registered; the PhoneBridge user's CRM user's agent is rung, and the call lands once
// in Zoho's Calls, owned by that user. A PhoneBridge user whose CRM user has no agent
// gets Zoho's clicktodialerror (notavailable); a wrong token rings no one.
func TestZohoClickToDial(t *testing.T) {
	const (
		sumitZoho, priyaZoho = "5725767000000411001", "5725767000000411002"
		c2dToken             = "zoho-clicktodial-token"
	)
	mo := mosandbox.New(mosandbox.Options{})
	moSrv := httptest.NewServer(mo)
	t.Cleanup(moSrv.Close)
	s, zs := newZohoStackWith(t, func(tn *tenant.Tenant, _ *config.Config) {
		tn.CRM.Zoho.ClickToDialAuth = c2dToken
		tn.ClickToCall = tenant.ClickToCall{OBDURL: moSrv.URL + "/obd-api-v1", APIKey: obdAPIKey, SecretToken: obdSecret,
			PublicIVRID: obdIVR, PerUserPerMinute: 5}
	})
	hook := func(kind string) string {
		return s.api.URL + "/webhooks/myoperator/" + tenantID + "/" + kind + "?token=" + token
	}
	mo.AddOBDAccount(mosandbox.OBDAccount{CompanyID: companyID, APIKey: obdAPIKey, SecretToken: obdSecret, PublicIVRID: obdIVR,
		InCallWebhook: hook("incall"), AfterCallWebhook: hook("aftercall")})
	t.Cleanup(mo.WaitOBD)
	mo.PutUser(mosandbox.User{ID: sumit.id, Name: sumit.name, Email: sumit.email, ContactNumber: sumit.phone10, Enabled: true})
	s.mapAgent(sumit.id, sumitZoho, sumit.email, "+91"+sumit.phone10)
	for _, u := range []struct{ id, pb, name, email string }{{sumitZoho, "pb-1", "Sumit", sumit.email}, {priyaZoho, "pb-2", "Priya", priya.email}} {
		zs.AddUser(sandbox.ZohoUser{ID: u.id, FullName: u.name, Email: u.email})
		zs.AddPhoneBridgeUser(sandbox.PhoneBridgeUser{ZohoUser: u.pb, Name: u.name, Email: u.email})
	}
	rep, err := s.app.SetupPhoneBridge(context.Background(), tenantID, s.api.URL+"/webhooks/zoho/"+tenantID+"/clicktodial")
	require.NoError(t, err)
	require.Equal(t, 2, rep.Mapped, "%+v", rep)

	t.Run("mapped user: the agent is rung; one Calls record owned by the user", func(t *testing.T) {
		res, err := zs.Click(context.Background(), "pb-1", "+919711636496")
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, res.Status, "%s%s", res.Body, res.Text)
		var ans map[string]any
		require.NoError(t, json.Unmarshal(res.Body, &ans))
		assert.Equal(t, sumitZoho, ans["crm_user_id"])
		c := s.obdCallOf(mo, ans["reference_id"].(string))
		assert.Equal(t, sumit.id, c.UserID)
		s.waitStatus(c.CallID, "written", within)
		recs := zohoRecords(zs, c.CallID)
		require.Len(t, recs, 1, "logged once")
		assert.Equal(t, sumitZoho, recs[0].Owner.ID)
		assert.Equal(t, "Outbound", recs[0].CallType)
		assert.Empty(t, zs.ClickToDialErrors())
	})

	t.Run("PhoneBridge user without an agent: 422 and clicktodialerror notavailable", func(t *testing.T) {
		n := len(mo.OBDCalls())
		res, err := zs.Click(context.Background(), "pb-2", "+919711636496")
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnprocessableEntity, res.Status)
		assert.JSONEq(t, `{"error":{"code":"unmapped_user","message":"no MyOperator agent is mapped to CRM user `+priyaZoho+`"}}`, string(res.Body))
		errs := zs.ClickToDialErrors()
		require.Len(t, errs, 1)
		assert.Equal(t, "notavailable", errs[0].Code)
		assert.Equal(t, "pb-2", errs[0].ZohoUser)
		assert.Equal(t, "+919711636496", errs[0].To)
		assert.Len(t, mo.OBDCalls(), n, "no one rung")
	})

	t.Run("a clicked number that is no phone number: 400, not sent to Zoho to be refused", func(t *testing.T) {
		const report = "POST /phonebridge/v3/clicktodialerror"
		n, sent := len(mo.OBDCalls()), zs.Stats().ByEndpoint[report]
		res, err := zs.Click(context.Background(), "pb-1", "abc")
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, res.Status)
		assert.Contains(t, string(res.Body), `"code":"invalid_number"`)
		assert.Equal(t, sent, zs.Stats().ByEndpoint[report], "Zoho takes only E.164 numbers: no report it would refuse")
		assert.Len(t, mo.OBDCalls(), n, "no one rung")
	})

	t.Run("wrong or missing token: 401, no one rung", func(t *testing.T) {
		n := len(mo.OBDCalls())
		for _, tok := range []string{"", "wrong", token} {
			form := url.Values{"tonumber": {"+919711636496"}, "zohouser": {"pb-1"}}
			if tok != "" {
				form.Set("token", tok)
			}
			req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/webhooks/zoho/"+tenantID+"/clicktodial", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r := s.do(req)
			assert.Equal(t, http.StatusUnauthorized, r.Status, tok)
		}
		assert.Len(t, mo.OBDCalls(), n)
	})

	t.Run("guessing: 429 after 10 wrong tokens in a minute, the right one too", func(t *testing.T) {
		post := func(tok string) response {
			form := url.Values{"tonumber": {"+919711636496"}, "zohouser": {"pb-1"}, "token": {tok}}
			req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/webhooks/zoho/"+tenantID+"/clicktodial", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return s.do(req)
		}
		status := 0
		for i := 0; i < 20 && status != http.StatusTooManyRequests; i++ {
			status = post(fmt.Sprintf("guess-%d", i)).Status
		}
		require.Equal(t, http.StatusTooManyRequests, status, "refused within 20 guesses")
		r := post(c2dToken)
		assert.Equal(t, http.StatusTooManyRequests, r.Status, "the guesser's right token too")
		assert.Equal(t, "rate_limited", r.Body["error"].(map[string]any)["code"])
	})
}
