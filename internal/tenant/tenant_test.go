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
