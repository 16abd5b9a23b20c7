package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

// runDev starts `calltrack dev` on free ports and waits until it is ready; it stops
// with the test.
func runDev(t *testing.T) *Dev {
	t.Helper()
	return runDevLogging(t, io.Discard, "warn")
}

// runDevLogging is runDev with its log to logw at level.
func runDevLogging(t *testing.T, logw io.Writer, level string) *Dev {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := StartDev(ctx, DevOptions{Addr: "127.0.0.1:0", KafkaAddr: "127.0.0.1:0", RedisAddr: "127.0.0.1:0", LogLevel: level}, logw)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		d.Close()
	})
	testenv.Eventually(t, 30*time.Second, "dev ready", func() bool {
		res, err := http.Get(d.Base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return d
}

// `calltrack dev` does not warn about its own embedded Redis, which has no
// maxmemory-policy to read (only a real server's matters), in its log or in /readyz's
// details; and its first start logs no zero-date epoch.
func TestDevStartsWithoutRedisWarnings(t *testing.T) {
	var logs testenv.LogBuffer
	d := runDevLogging(t, &logs, "info")
	testenv.Eventually(t, 30*time.Second, "the Redis guard's first check done", func() bool {
		n, err := d.App.Redis.Exists(t.Context(), d.App.Cfg.RedisPrefix+":redisguard:marker").Result()
		return err == nil && n == 1
	})
	testenv.Eventually(t, 30*time.Second, "the new call-state epoch logged", func() bool {
		return strings.Contains(logs.String(), "call-state epoch")
	})
	out := logs.String()
	assert.NotContains(t, out, "maxmemory-policy")
	assert.NotContains(t, out, "0001-01-01")

	req, _ := http.NewRequest(http.MethodGet, d.Base+"/readyz", nil)
	req.Header.Set("Authorization", "Bearer "+DevAdminToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	require.Contains(t, string(body), `"checks"`, "the operator sees the checks")
	assert.NotContains(t, string(body), "maxmemory-policy")
}

// `calltrack dev` as a newcomer uses it: ready quickly, the printed commands work.
func TestDevModeEndToEnd(t *testing.T) {
	start := time.Now()
	d := runDev(t)
	t.Logf("dev ready in %s", time.Since(start).Round(time.Millisecond))
	banner := d.Banner()
	assert.Contains(t, banner, d.Base+"/webhooks/myoperator/demo/aftercall?token=demo-token")

	req, _ := http.NewRequest(http.MethodPut, d.Base+"/admin/v1/tenants/demo/mappings/5cd40f6556f2f124",
		strings.NewReader(`{"crm_user_id":"1001","email":"sumit.arya@example.com"}`))
	req.Header.Set("Authorization", "Bearer demo-admin")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	sample, err := http.Get(d.Base + "/sandbox/myoperator/samples/aftercall.json")
	require.NoError(t, err)
	payload, _ := io.ReadAll(sample.Body)
	sample.Body.Close()
	res, err = http.PostForm(d.Base+"/webhooks/myoperator/demo/aftercall?token=demo-token", url.Values{"myoperator": {string(payload)}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	var list struct {
		Content []struct {
			Owner struct{ ID int64 } `json:"owner"`
		} `json:"content"`
		TotalElements int `json:"totalElements"`
	}
	testenv.Eventually(t, 5*time.Second, "the call in the sandbox CRM", func() bool {
		req, _ := http.NewRequest(http.MethodGet, d.Base+"/sandbox/kylas/v1/call-logs", nil)
		req.Header.Set("api-key", "demo-crm-key")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		return json.NewDecoder(res.Body).Decode(&list) == nil && list.TotalElements == 1
	})
	assert.EqualValues(t, 1001, list.Content[0].Owner.ID)
}

// The admin API checks a mapping's CRM user against the tenant's CRM (its adapter's
// users API, here the dev sandboxes): one it does not have is refused.
func TestDevMappingCRMUserChecked(t *testing.T) {
	d := runDev(t)
	cases := []struct {
		tenant, crmUser string
		status          int
		code            string
	}{
		{DevTenant, "1001", http.StatusOK, ""},
		{DevTenant, "999999", http.StatusUnprocessableEntity, "unknown_crm_user"},
		{DevTenant, "-5", http.StatusBadRequest, "invalid_mapping"},                    // no Kylas user id's form: refused unasked
		{DevTenant, DevZohoUserID, http.StatusUnprocessableEntity, "unknown_crm_user"}, // a Zoho id on the Kylas tenant
		{DevZohoTenant, "1001", http.StatusUnprocessableEntity, "unknown_crm_user"},    // a Kylas id on the Zoho tenant
		{DevZohoTenant, DevZohoUserID, http.StatusOK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.tenant+"/"+tc.crmUser, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPut, d.Base+"/admin/v1/tenants/"+tc.tenant+"/mappings/aaaabbbbccccdddd",
				strings.NewReader(`{"crm_user_id":"`+tc.crmUser+`"}`))
			req.Header.Set("Authorization", "Bearer "+DevAdminToken)
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			require.Equal(t, tc.status, res.StatusCode, "%s", b)
			if tc.status != http.StatusOK {
				assert.Contains(t, string(b), `"code":"`+tc.code+`"`)
			} else {
				assert.NotContains(t, string(b), `"warning"`, "checked, not merely stored")
			}
		})
	}
}
