package tenant_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/tenant"
)

func loadYAML(t *testing.T, crm string) (*tenant.Registry, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	doc := "tenants:\n  acme:\n    webhook_token_env: ACME_TOKEN\n    crm:\n" + crm
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	env := map[string]string{"ACME_TOKEN": "t", "ZOHO_SECRET": "s3cret", "ZOHO_REFRESH": "1000.r"}
	return tenant.Load(path, func(k string) string { return env[k] })
}

func TestLoadZoho(t *testing.T) {
	t.Parallel()
	reg, err := loadYAML(t, `      kind: zoho
      data_centre: in
      client_id: 1000.ABC
      client_secret_env: ZOHO_SECRET
      refresh_token_env: ZOHO_REFRESH
      time_zone: Asia/Kolkata
      org_domain: org74822955
`)
	require.NoError(t, err)
	a, _ := reg.Get("acme")
	assert.Equal(t, tenant.Zoho{AccountsURL: "https://accounts.zoho.in", APIDomain: "https://www.zohoapis.in",
		ClientID: "1000.ABC", ClientSecret: "s3cret", RefreshToken: "1000.r", TimeZone: "Asia/Kolkata", OrgDomain: "org74822955"}, a.CRM.Zoho)

	reg, err = loadYAML(t, `      kind: zoho
      data_centre: eu
      api_domain: https://crm.example.eu
      client_id: x
      client_secret_env: ZOHO_SECRET
      refresh_token_env: ZOHO_REFRESH
`)
	require.NoError(t, err, "explicit URLs override the data centre's")
	a, _ = reg.Get("acme")
	assert.Equal(t, "https://accounts.zoho.eu", a.CRM.Zoho.AccountsURL)
	assert.Equal(t, "https://crm.example.eu", a.CRM.Zoho.APIDomain)

	for want, crm := range map[string]string{
		`crm.data_centre "mars"`:       "      kind: zoho\n      data_centre: mars\n",
		"crm.accounts_url is required": "      kind: zoho\n      api_domain: https://www.zohoapis.in\n",
		"crm.client_id is required":    "      kind: zoho\n      data_centre: in\n",
		"ZOHO_MISSING":                 "      kind: zoho\n      data_centre: in\n      client_id: x\n      client_secret_env: ZOHO_MISSING\n      refresh_token_env: ZOHO_REFRESH\n",
		"crm.refresh_token_env":        "      kind: zoho\n      data_centre: in\n      client_id: x\n      client_secret_env: ZOHO_SECRET\n",
		`crm.call_id_field "Call ID"`:  "      kind: zoho\n      data_centre: in\n      client_id: x\n      client_secret_env: ZOHO_SECRET\n      refresh_token_env: ZOHO_REFRESH\n      call_id_field: Call ID\n",
		`crm.org_domain "org/1"`:       "      kind: zoho\n      data_centre: in\n      client_id: x\n      client_secret_env: ZOHO_SECRET\n      refresh_token_env: ZOHO_REFRESH\n      org_domain: org/1\n",
		`crm.time_zone "Mars/Base"`:    "      kind: zoho\n      data_centre: in\n      client_id: x\n      client_secret_env: ZOHO_SECRET\n      refresh_token_env: ZOHO_REFRESH\n      time_zone: Mars/Base\n",
	} {
		_, err := loadYAML(t, crm)
		require.Error(t, err, want)
		assert.Contains(t, err.Error(), want)
		assert.NotContains(t, err.Error(), "s3cret")
	}
}
