package tenant

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tenants file's click_to_call block and api_token_env, each rule tested.
func TestClickToCallConfig(t *testing.T) {
	env := map[string]string{"WH": "wh", "KEY": "crm", "API": "api-token", "OBDKEY": "x-key", "OBDSECRET": "s3cret"}
	base := "tenants:\n  acme:\n    webhook_token_env: WH\n    crm: {kind: kylas, api_key_env: KEY}\n"
	for _, tc := range []struct {
		name, yaml, err string
		check           func(*testing.T, *Tenant)
	}{
		{name: "off by default", check: func(t *testing.T, tn *Tenant) {
			if tn.ClickToCall.Enabled() || tn.APIToken != "" {
				t.Errorf("click-to-call on without settings: %+v", tn.ClickToCall)
			}
		}},
		{name: "full", yaml: "    company_id: c1\n    api_token_env: API\n    click_to_call: {api_key_env: OBDKEY, secret_token_env: OBDSECRET, public_ivr_id: ivr1, max_call_duration: 600}\n",
			check: func(t *testing.T, tn *Tenant) {
				c := tn.ClickToCall
				if !c.Enabled() || c.OBDURL != DefaultOBDURL || c.PerUserPerMinute != DefaultClickToCallPerMinute ||
					c.APIKey.Reveal() != "x-key" || c.SecretToken.Reveal() != "s3cret" || c.MaxCallDuration != 600 || tn.APIToken.Reveal() != "api-token" ||
					tn.APITokenEnv != "API" {
					t.Errorf("parsed %+v, token %q", c, tn.APIToken.Reveal())
				}
			}},
		{name: "partial", yaml: "    company_id: c1\n    click_to_call: {api_key_env: OBDKEY}\n", err: "together"},
		{name: "no company id", yaml: "    click_to_call: {api_key_env: OBDKEY, secret_token_env: OBDSECRET, public_ivr_id: ivr1}\n", err: "company_id"},
		{name: "duration too long", yaml: "    click_to_call: {max_call_duration: 5401}\n", err: "max_call_duration"},
		{name: "bad url", yaml: "    click_to_call: {obd_url: 'ftp://x'}\n", err: "obd_url"},
		{name: "empty token variable", yaml: "    api_token_env: NOPE\n", err: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "tenants.yaml")
			if err := os.WriteFile(p, []byte(base+tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Load(p, func(k string) string { return env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Load: %v, want an error about %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tn, _ := r.Get("acme")
			if tc.check != nil {
				tc.check(t, tn)
			}
		})
	}
}

// AuthenticateAPI: the tenant's own token only; no token configured, an unknown
// tenant or a webhook token all fail the same way.
func TestAuthenticateAPI(t *testing.T) {
	r := NewRegistry(&Tenant{ID: "acme", WebhookToken: "wh", APIToken: "api"}, &Tenant{ID: "beta", WebhookToken: "wh2"})
	if tn, err := r.AuthenticateAPI("acme", "api"); err != nil || tn.ID != "acme" {
		t.Fatalf("acme: %v", err)
	}
	for _, c := range [][2]string{{"acme", "wh"}, {"acme", ""}, {"beta", ""}, {"beta", "wh2"}, {"nope", "api"}} {
		if _, err := r.AuthenticateAPI(c[0], c[1]); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%v: %v, want ErrUnauthorized", c, err)
		}
	}
}
