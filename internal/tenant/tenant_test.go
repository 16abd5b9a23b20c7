package tenant

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuthenticate(t *testing.T) {
	r := NewRegistry(&Tenant{ID: "acme", WebhookToken: "s3cret"})
	got, err := r.Authenticate("acme", "s3cret")
	require.NoError(t, err)
	assert.Equal(t, "acme", got.ID)
	for _, c := range []struct{ id, secret string }{{"acme", "wrong"}, {"acme", ""}, {"other", "s3cret"}, {"", ""}} {
		_, err := r.Authenticate(c.id, c.secret)
		assert.True(t, errors.Is(err, ErrUnauthorized), "%+v", c)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("s3cret")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %+v %#v", s, s, s, s), fmt.Sprintf("%+v", Tenant{WebhookToken: s})} {
		assert.NotContains(t, out, "s3cret")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tenants.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
tenants:
  acme:
    company_id: "5cd40f6554442586"
    webhook_token_env: ACME_TOKEN
    fallback_owner: "42"
    crm:
      kind: kylas
      api_key_env: ACME_KEY
      rate_limit: 3
`), 0o600))
	env := map[string]string{"ACME_TOKEN": "tok", "ACME_KEY": "key"}
	r, err := Load(path, func(k string) string { return env[k] })
	require.NoError(t, err)
	a, ok := r.Get("acme")
	require.True(t, ok)
	assert.Equal(t, "tok", a.WebhookToken.Reveal())
	assert.Equal(t, "key", a.CRM.APIKey.Reveal())
	assert.Equal(t, "https://api.kylas.io", a.CRM.BaseURL)
	assert.Equal(t, 3.0, a.CRM.RateLimit)
	assert.Equal(t, "91", a.DefaultCountry)
	assert.True(t, a.AcceptsCompany("5cd40f6554442586"))
	assert.False(t, a.AcceptsCompany("ffffffffffffffff"))

	_, err = Load(path, func(string) string { return "" })
	assert.ErrorContains(t, err, "ACME_TOKEN")
	_, err = Load(filepath.Join(dir, "missing.yaml"), os.Getenv)
	assert.Error(t, err)
}

// Two tenants reading one MyOperator account would each backfill the other's calls
// into their own CRM: the file is refused, naming both tenants and not the token.
func TestLoadRefusesASharedMyOperatorAccount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	tenantYAML := func(id, tokenEnv string) string {
		return fmt.Sprintf(`
  %s:
    webhook_token_env: %s_HOOK
    myoperator_api_token_env: %s
    crm:
      kind: kylas
      api_key_env: KEY
`, id, id, tokenEnv)
	}
	env := map[string]string{"a_HOOK": "h1", "b_HOOK": "h2", "c_HOOK": "h3", "KEY": "k", "MO_1": "mo-secret", "MO_2": "mo-secret", "MO_3": "other"}
	for _, c := range []struct {
		name    string
		tenants string
		wantErr string
	}{
		{"own accounts", tenantYAML("a", "MO_1") + tenantYAML("c", "MO_3"), ""},
		{"no account", tenantYAML("a", "NONE") + tenantYAML("b", "NONE"), ""},
		{"one account, two variables", tenantYAML("a", "MO_1") + tenantYAML("b", "MO_2"), "tenants a and b have the same MyOperator API token"},
		{"one account, one variable", tenantYAML("b", "MO_1") + tenantYAML("a", "MO_1") + tenantYAML("c", "MO_3"), "tenants a and b have the same MyOperator API token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, []byte("tenants:"+c.tenants), 0o600))
			_, err := Load(path, func(k string) string { return env[k] })
			if c.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.wantErr)
			assert.NotContains(t, err.Error(), "mo-secret")
		})
	}
}
