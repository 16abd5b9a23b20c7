package tenant

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/url"
	"strings"
)

// DefaultOBDURL is MyOperator's outbound-call (OBD / click-to-call) API
// (support.myoperator.com, "Campaigns API"; docs/myoperator-api.md).
const DefaultOBDURL = "https://obd-api.myoperator.co/obd-api-v1"

// DefaultClickToCallPerMinute is how many click-to-call requests one CRM user may make
// a minute: a person clicks a few numbers a minute; a script gone wild should not ring
// an agent's phone in a loop.
const DefaultClickToCallPerMinute = 6

// MaxOBDCallDuration is MyOperator's upper bound of max_call_duration (seconds).
const MaxOBDCallDuration = 5400

// ClickToCall is a tenant's click-to-call settings (the tenants file's
// `click_to_call:`): how calltrack asks MyOperator's outbound API to ring an agent and
// then the customer. The tenant's company_id goes with every request.
type ClickToCall struct {
	OBDURL           string // obd_url; default DefaultOBDURL
	APIKey           Secret // api_key_env: the x-api-key header
	SecretToken      Secret // secret_token_env: the account's secret_token
	PublicIVRID      string // public_ivr_id: the outbound campaign (MyOperator panel, Campaigns)
	CallerID         string // caller_id: optional dedicated number the customer sees
	MaxCallDuration  int    // max_call_duration seconds; 0: MyOperator's default
	PerUserPerMinute int    // per_user_per_minute; default DefaultClickToCallPerMinute
}

// Enabled reports whether the tenant can place calls.
func (c ClickToCall) Enabled() bool {
	return c.APIKey != "" && c.SecretToken != "" && c.PublicIVRID != ""
}

// clickToCallYAML is the tenants file's `click_to_call:` block.
type clickToCallYAML struct {
	OBDURL           string `yaml:"obd_url"`
	APIKeyEnv        string `yaml:"api_key_env"`
	SecretTokenEnv   string `yaml:"secret_token_env"`
	PublicIVRID      string `yaml:"public_ivr_id"`
	CallerID         string `yaml:"caller_id"`
	MaxCallDuration  int    `yaml:"max_call_duration"`
	PerUserPerMinute int    `yaml:"per_user_per_minute"`
}

func (y clickToCallYAML) parse(secret func(field, name string, required bool) (Secret, error)) (ClickToCall, error) {
	c := ClickToCall{OBDURL: strings.TrimSpace(y.OBDURL), PublicIVRID: strings.TrimSpace(y.PublicIVRID),
		CallerID: strings.TrimSpace(y.CallerID), MaxCallDuration: y.MaxCallDuration, PerUserPerMinute: y.PerUserPerMinute}
	if c.OBDURL == "" {
		c.OBDURL = DefaultOBDURL
	}
	if p, err := url.Parse(c.OBDURL); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return c, fmt.Errorf("click_to_call.obd_url %q is not an http(s) URL", c.OBDURL)
	}
	if c.MaxCallDuration < 0 || c.MaxCallDuration > MaxOBDCallDuration {
		return c, fmt.Errorf("click_to_call.max_call_duration %d: between 1 and %d seconds (or unset)", c.MaxCallDuration, MaxOBDCallDuration)
	}
	if c.PerUserPerMinute < 0 {
		return c, fmt.Errorf("click_to_call.per_user_per_minute %d: must be positive", c.PerUserPerMinute)
	}
	if c.PerUserPerMinute == 0 {
		c.PerUserPerMinute = DefaultClickToCallPerMinute
	}
	var err error
	if c.APIKey, err = secret("click_to_call.api_key_env", y.APIKeyEnv, false); err != nil {
		return c, err
	}
	if c.SecretToken, err = secret("click_to_call.secret_token_env", y.SecretTokenEnv, false); err != nil {
		return c, err
	}
	set := 0
	for _, v := range []bool{c.APIKey != "", c.SecretToken != "", c.PublicIVRID != ""} {
		if v {
			set++
		}
	}
	if set != 0 && set != 3 {
		return c, fmt.Errorf("click_to_call needs api_key_env, secret_token_env and public_ivr_id together")
	}
	return c, nil
}

// AuthenticateAPI checks token against the tenant's API token (api_token_env) in
// constant time. An unknown tenant, a tenant without a token and a wrong token fail
// the same way (ErrUnauthorized).
func (r *Registry) AuthenticateAPI(id, token string) (*Tenant, error) {
	t, ok := r.byID[id]
	want := "\x00unknown-tenant"
	if ok {
		want = t.APIToken.Reveal()
	}
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 || !ok || token == "" || want == "" {
		return nil, ErrUnauthorized
	}
	return t, nil
}
