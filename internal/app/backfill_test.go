package app

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
)

// In `calltrack dev`, as the banner says: a call recorded only in the sandbox
// MyOperator's call log reaches the sandbox CRM through the backfill endpoint, once;
// the dry run counts it without writing. The tenants file for the CLIs loads.
func TestDevBackfill(t *testing.T) {
	d := runDev(t)
	do := func(method, path, body string, auth bool) (int, map[string]any) {
		req, _ := http.NewRequest(method, d.Base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "Bearer "+DevAdminToken)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	st, _ := do(http.MethodPut, "/admin/v1/tenants/demo/mappings/5cd40f6556f2f124", `{"crm_user_id":"1001","email":"sumit.arya@example.com"}`, true)
	require.Equal(t, http.StatusOK, st)

	const uid = "n2.1700000000.4242"
	st, rec := do(http.MethodPost, "/sandbox/myoperator/calls?at=now&call_id="+uid, string(sampleAfterCall), false)
	require.Equal(t, http.StatusCreated, st, "%v", rec)

	st, r := do(http.MethodPost, "/admin/v1/tenants/demo/backfill", `{"since":"1h","dry_run":true}`, true)
	require.Equal(t, http.StatusOK, st, "%v", r)
	assert.Equal(t, 1.0, r["would_publish"])
	assert.Equal(t, 0.0, r["published"])
	assert.Empty(t, d.Kylas.Records())

	st, r = do(http.MethodPost, "/admin/v1/tenants/demo/backfill", `{"since":"1h"}`, true)
	require.Equal(t, http.StatusOK, st, "%v", r)
	assert.Equal(t, 1.0, r["published"], "%v", r)
	testenv.Eventually(t, 30*time.Second, "the call in the sandbox CRM", func() bool { return len(d.Kylas.Records()) == 1 })
	assert.Equal(t, uid, d.Kylas.Records()[0].RemoteID)
	assert.EqualValues(t, 1001, d.Kylas.Records()[0].Owner.ID)

	// The console shows the backfilled call's facts as a webhook-delivered call's.
	page := consolePage(t, d.Base, "/console/tenants/demo/calls/"+uid)
	for id, want := range map[string]string{"call-direction": "incoming", "call-outcome": "answered", "call-duration": "39s"} {
		m := regexp.MustCompile(`id="` + id + `">([^<]*)<`).FindStringSubmatch(page)
		if assert.NotNil(t, m, "%s in the call's page", id) {
			assert.Equal(t, want, m[1], id)
		}
	}
	assert.False(t, strings.Contains(page, "not known yet (no call log has come)"), "the call's start is shown")

	st, r = do(http.MethodPost, "/admin/v1/tenants/demo/backfill", `{"since":"1h"}`, true)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, 1.0, r["known"])
	assert.Equal(t, 0.0, r["published"])
	assert.Len(t, d.Kylas.Records(), 1)

	// The banner's CLI environment loads the tenants file it names.
	env := map[string]string{}
	for _, kv := range strings.Fields(d.CLIEnv()) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	assert.Contains(t, d.Banner(), "export "+d.CLIEnv())
	reg, err := tenant.Load(env["CALLTRACK_TENANTS_FILE"], func(k string) string { return env[k] })
	require.NoError(t, err)
	demo, ok := reg.Get(DevTenant)
	require.True(t, ok)
	assert.Equal(t, d.MyOp.Token(), demo.MyOperatorKey.Reveal())
	// It is demo as dev runs it: the CLIs write and decide as dev's writer does, and
	// warn of nothing (an api-key-only Kylas tenant is warned that calls are not
	// attributed — not so of demo, which has the marketplace app's token).
	assert.Empty(t, reg.Warnings())
	running, ok := d.App.Tenants.Get(DevTenant)
	require.True(t, ok)
	assert.Equal(t, running.WebhookToken, demo.WebhookToken)
	assert.Equal(t, running.CompanyID, demo.CompanyID)
	assert.Equal(t, running.MyOperatorAPI, demo.MyOperatorAPI)
	assert.Equal(t, running.APIToken, demo.APIToken)
	assert.Equal(t, running.ClickToCall, demo.ClickToCall)
	assert.Equal(t, running.CRM.Kind, demo.CRM.Kind)
	assert.Equal(t, running.CRM.BaseURL, demo.CRM.BaseURL)
	assert.Equal(t, running.CRM.APIKey, demo.CRM.APIKey)
	assert.Equal(t, running.CRM.BearerToken, demo.CRM.BearerToken)
	assert.Equal(t, running.CRM.RateLimit, demo.CRM.RateLimit)
	assert.Equal(t, tenant.KylasAuthOAuth, demo.CRM.Policy.KylasAuth)
	assert.Equal(t, running.Calls.Actions, demo.Calls.Actions)
	assert.Equal(t, running.Calls.Departments, demo.Calls.Departments)
	assert.Equal(t, running.Calls.TaskDue, demo.Calls.TaskDue)
	require.NotNil(t, demo.Calls.BusinessHours)
	assert.Equal(t, running.Calls.BusinessHours.Days, demo.Calls.BusinessHours.Days)
	assert.Equal(t, running.Calls.BusinessHours.Location.String(), demo.Calls.BusinessHours.Location.String())
}

// consolePage signs in to dev's console as its operator and returns the page at path.
func consolePage(t *testing.T, base, path string) string {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}
	get := func(u string) string {
		res, err := c.Get(u)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", u, b)
		return string(b)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(get(base + "/console/sign-in"))
	require.NotNil(t, m, "the sign-in form's CSRF field")
	res, err := c.PostForm(base+"/console/sign-in", url.Values{"csrf": {m[1]}, "token": {DevAdminToken}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "signed in (the redirect followed)")
	return get(base + path)
}
