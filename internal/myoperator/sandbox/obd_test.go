package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/internal/myoperator/sandbox"
)

var obdAccount = sandbox.OBDAccount{CompanyID: "c1", APIKey: "x-key", SecretToken: "s3cret", PublicIVRID: "ivr1"}

func obdBody(over map[string]any) string {
	b := map[string]any{"company_id": "c1", "secret_token": "s3cret", "type": "1", "user_id": "u1",
		"number": "+919711636496", "public_ivr_id": "ivr1", "reference_id": "ref-1"}
	for k, v := range over {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	raw, _ := json.Marshal(b)
	return string(raw)
}

func postOBD(t *testing.T, srv *httptest.Server, key, ct, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/obd-api-v1", strings.NewReader(body))
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	req.Header.Set("Content-Type", ct)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
	return res.StatusCode, m
}

// Each rule of the outbound API (docs/myoperator-api.md, "Outbound calls").
func TestOBDRefusals(t *testing.T) {
	s := sandbox.New(sandbox.Options{OBDAccounts: []sandbox.OBDAccount{obdAccount}})
	s.PutUser(sandbox.User{ID: "u-off", Name: "Off", Enabled: false})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	const js = "application/json"
	for _, tc := range []struct {
		name, key, ct, body string
		status              int
		details             string
	}{
		{"no api key", "", js, obdBody(nil), 403, "invalid credentials (x-api-key, company_id, secret_token)"},
		{"wrong api key", "nope", js, obdBody(nil), 403, "invalid credentials (x-api-key, company_id, secret_token)"},
		{"wrong secret", "x-key", js, obdBody(map[string]any{"secret_token": "x"}), 403, "invalid credentials (x-api-key, company_id, secret_token)"},
		{"wrong company", "x-key", js, obdBody(map[string]any{"company_id": "c2"}), 403, "invalid credentials (x-api-key, company_id, secret_token)"},
		{"wrong ivr", "x-key", js, obdBody(map[string]any{"public_ivr_id": "ivr2"}), 403, "invalid public_ivr_id"},
		{"form body", "x-key", "application/x-www-form-urlencoded", "company_id=c1", 400, "body must be JSON (Content-Type: application/json)"},
		{"type 2", "x-key", js, obdBody(map[string]any{"type": "2"}), 400, `type must be "1" (peer to peer); IVR campaigns are not simulated`},
		{"type as a number", "x-key", js, obdBody(map[string]any{"type": 1}), 400, "type must be a string"},
		{"national number", "x-key", js, obdBody(map[string]any{"number": "9711636496"}), 400, "number must be in E.164 form (+<country code><number>)"},
		{"user_id and number_2", "x-key", js, obdBody(map[string]any{"number_2": "+918586848544"}), 403, "user_id and number_2 are mutually exclusive"},
		{"neither", "x-key", js, obdBody(map[string]any{"user_id": nil}), 400, "user_id or number_2 is required"},
		{"no reference", "x-key", js, obdBody(map[string]any{"reference_id": nil}), 400, "reference_id is required"},
		{"duration as a string", "x-key", js, obdBody(map[string]any{"max_call_duration": "300"}), 400, "max_call_duration must be an integer between 1 and 5400"},
		{"duration too long", "x-key", js, obdBody(map[string]any{"max_call_duration": 5401}), 400, "max_call_duration must be an integer between 1 and 5400"},
		{"disabled user", "x-key", js, obdBody(map[string]any{"user_id": "u-off"}), 403, "user is disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m := postOBD(t, srv, tc.key, tc.ct, tc.body)
			assert.Equal(t, tc.status, st)
			assert.Equal(t, map[string]any{"status": "error", "code": strconv.Itoa(tc.status), "details": tc.details}, m)
		})
	}
	assert.Empty(t, s.OBDCalls(), "nothing placed")
}

// An accepted request answers MyOperator's success shape; a repeated reference_id is
// refused; the call rings the agent (inCall ringing, answered) and ends (afterCall:
// an outgoing call of the agent, _ns 2, our reference as _cri), logged for the search.
func TestOBDPlacesCallAndDeliversWebhooks(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]string{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		v, _ := url.ParseQuery(string(b))
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], v.Get("myoperator"))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(hook.Close)
	acct := obdAccount
	acct.InCallWebhook, acct.AfterCallWebhook = hook.URL+"/incall", hook.URL+"/aftercall"
	s := sandbox.New(sandbox.Options{})
	s.AddOBDAccount(acct)
	s.PutUser(sandbox.User{ID: "u1", Name: "Sumit", Email: "sumit@example.com", ContactNumber: "8586848544", Enabled: true})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	st, m := postOBD(t, srv, "x-key", "application/json", obdBody(nil))
	require.Equal(t, http.StatusOK, st, "%v", m)
	assert.Equal(t, "success", m["status"])
	assert.Equal(t, "200", m["code"])
	assert.Equal(t, "ref-1", m["reference_id"])
	assert.NotEmpty(t, m["unique_id"])
	st, m = postOBD(t, srv, "x-key", "application/json", obdBody(nil))
	assert.Equal(t, http.StatusForbidden, st)
	assert.Equal(t, "duplicate reference_id", m["details"])

	s.WaitOBD()
	calls := s.OBDCalls()
	require.Len(t, calls, 1)
	assert.Equal(t, "ended", calls[0].State)
	assert.Equal(t, []string{"ringing", "answered", "ended"}, calls[0].Delivered)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got["/incall"], 2)
	ring, err := myoperator.ParseInCall("acme", []byte(got["/incall"][0]), time.Now())
	require.NoError(t, err)
	assert.Equal(t, calls[0].CallID, ring.CallID)
	assert.Equal(t, "outgoing", string(ring.Direction), "placed through the API: the agent's dialled call")
	require.Len(t, got["/aftercall"], 1)
	l, err := myoperator.ParseAfterCall("acme", []byte(got["/aftercall"][0]), time.Now())
	require.NoError(t, err)
	assert.Equal(t, calls[0].CallID, l.CallID)
	assert.Equal(t, "outgoing", string(l.Direction))
	assert.True(t, l.ClickToCall)
	require.NotNil(t, l.Agent)
	assert.Equal(t, "u1", l.Agent.ID)
	assert.Equal(t, "+919711636496", l.CallerNumber)
	require.Len(t, s.Calls(), 1, "in the call log, as the search finds it")
}
