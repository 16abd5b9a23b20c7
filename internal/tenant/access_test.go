package tenant

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadAdmins(t *testing.T) {
	file := func(t *testing.T, body string) string {
		p := filepath.Join(t.TempDir(), "tenants.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	const good = `
operators:
  - {name: alice, token_env: ALICE_TOKEN}
tenants:
  acme:
    webhook_token_env: ACME_TOKEN
    crm: {kind: kylas, api_key_env: ACME_KEY}
    admins:
      - {name: acme-admin, token_env: ACME_ADMIN_TOKEN}
  beta:
    webhook_token_env: ACME_TOKEN
    crm: {kind: kylas, api_key_env: ACME_KEY}
`
	env := map[string]string{"ACME_TOKEN": "tok", "ACME_KEY": "key", "ALICE_TOKEN": "alice-secret-1", "ACME_ADMIN_TOKEN": "acme-secret-1"}
	r, err := Load(file(t, good), func(k string) string { return env[k] })
	require.NoError(t, err)

	alice, err := r.AuthenticateAdmin("alice-secret-1")
	require.NoError(t, err)
	assert.True(t, alice.Operator())
	assert.True(t, alice.CanAccess("acme") && alice.CanAccess("beta"))

	acme, err := r.AuthenticateAdmin("acme-secret-1")
	require.NoError(t, err)
	assert.Equal(t, "acme-admin", acme.Name)
	assert.True(t, acme.CanAccess("acme"))
	assert.False(t, acme.CanAccess("beta"), "a tenant admin sees one tenant")

	for _, wrong := range []string{"", "tok", "acme-secret", "acme-secret-1 "} {
		_, err := r.AuthenticateAdmin(wrong)
		assert.True(t, errors.Is(err, ErrUnauthorized), "%q", wrong)
	}

	bad := []struct{ name, body, want string }{
		{"empty token variable", `
operators: [{name: bob, token_env: BOB_TOKEN}]
tenants:
  acme: {webhook_token_env: ACME_TOKEN, crm: {kind: kylas, api_key_env: ACME_KEY}}`, "BOB_TOKEN (token_env) is empty"},
		{"no token_env", `
tenants:
  acme: {webhook_token_env: ACME_TOKEN, crm: {kind: kylas, api_key_env: ACME_KEY}, admins: [{name: x}]}`, "token_env is required"},
		{"shared token", `
operators: [{name: alice, token_env: ALICE_TOKEN}]
tenants:
  acme: {webhook_token_env: ACME_TOKEN, crm: {kind: kylas, api_key_env: ACME_KEY}, admins: [{name: x, token_env: ALICE_TOKEN}]}`, "have the same token"},
		{"bad name", `
operators: [{name: "a b", token_env: ALICE_TOKEN}]
tenants:
  acme: {webhook_token_env: ACME_TOKEN, crm: {kind: kylas, api_key_env: ACME_KEY}}`, `name "a b"`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(file(t, c.body), func(k string) string { return env[k] })
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), "alice-secret-1", "errors never carry a token")
		})
	}
}
