package tenant_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/tenant"
)

// loadCRM loads one tenant acme with the crm block given.
func loadCRM(t *testing.T, crm string) (*tenant.Registry, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	require.NoError(t, os.WriteFile(path, []byte("tenants:\n  acme:\n    webhook_token_env: ACME_TOKEN\n    crm:\n"+crm), 0o600))
	env := map[string]string{"ACME_TOKEN": "t", "KEY": "k", "TOK": "tok", "ZOHO_SECRET": "s", "ZOHO_REFRESH": "r"}
	return tenant.Load(path, func(k string) string { return env[k] })
}

func TestKylasAuthAndUnknownCallers(t *testing.T) {
	t.Parallel()
	load := func(crm string) (*tenant.Registry, error) {
		t.Helper()
		return loadCRM(t, "      kind: kylas\n      api_key_env: KEY\n"+crm)
	}
	reg, err := load("      bearer_token_env: TOK\n")
	require.NoError(t, err)
	a, _ := reg.Get("acme")
	assert.Equal(t, tenant.KylasAuthOAuth, a.CRM.Policy.KylasAuth, "a token means the OAuth route")
	assert.Equal(t, tenant.UnknownCallerCreateLead, a.CRM.Policy.UnknownCaller, "the default")
	assert.Empty(t, reg.Warnings())

	reg, err = load("      unknown_caller: none\n      lead_source: \"12\"\n")
	require.NoError(t, err)
	a, _ = reg.Get("acme")
	assert.Equal(t, tenant.KylasAuthAPIKey, a.CRM.Policy.KylasAuth)
	assert.False(t, a.CRM.Policy.CreateLeads())
	require.Len(t, reg.Warnings(), 2, "the owner limitation, and unrelated calls dead-lettered")
	assert.Contains(t, strings.Join(reg.Warnings(), "\n"), "owns every call log by the API key's user")
	assert.Contains(t, reg.Warnings()[1], "internal calls and, with crm.unknown_caller none, calls from numbers with no lead or contact are dead-lettered")

	// Internal calls relate to no lead or contact whatever unknown_caller says: the
	// api-key route dead-letters them with create_lead (the default) too.
	reg, err = load("")
	require.NoError(t, err)
	a, _ = reg.Get("acme")
	assert.Equal(t, tenant.KylasAuthAPIKey, a.CRM.Policy.KylasAuth)
	assert.True(t, a.CRM.Policy.CreateLeads())
	require.Len(t, reg.Warnings(), 2, "the owner limitation, and internal calls dead-lettered")
	assert.Contains(t, reg.Warnings()[1], "requires relatedTo, so internal calls")
	assert.NotContains(t, reg.Warnings()[1], "unknown_caller none")

	for want, crm := range map[string]string{
		"crm.auth oauth needs crm.bearer_token_env": "      auth: oauth\n",
		"remove the token":                          "      auth: api_key\n      bearer_token_env: TOK\n",
		`crm.auth "basic"`:                          "      auth: basic\n",
		`crm.unknown_caller "ignore"`:               "      unknown_caller: ignore\n",
		`crm.lead_source "Phone"`:                   "      lead_source: Phone\n",
		"crm.lead_tag":                              "      lead_tag: calltrack\n",
	} {
		_, err := load(crm)
		require.Error(t, err, want)
		assert.Contains(t, err.Error(), want)
	}
}

func TestZohoLeadPolicy(t *testing.T) {
	t.Parallel()
	base := "      kind: zoho\n      data_centre: in\n      client_id: x\n      client_secret_env: ZOHO_SECRET\n      refresh_token_env: ZOHO_REFRESH\n"
	reg, err := loadCRM(t, base+"      lead_source: Cold Call\n      lead_tag: calltrack\n")
	require.NoError(t, err)
	a, _ := reg.Get("acme")
	assert.Equal(t, tenant.CRMPolicy{UnknownCaller: tenant.UnknownCallerCreateLead, LeadSource: "Cold Call", LeadTag: "calltrack"}, a.CRM.Policy)
	_, err = loadCRM(t, base+"      lead_tag: a-tag-name-longer-than-25-chars\n")
	assert.ErrorContains(t, err, "at most 25 characters")
	_, err = loadCRM(t, base+"      auth: oauth\n")
	assert.ErrorContains(t, err, "crm.auth is a Kylas setting")
}
