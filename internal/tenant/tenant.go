// Package tenant holds the tenants calltrack serves — read from the tenants YAML file,
// with secrets taken from the environment variables it names — and authenticates
// webhook callers.
package tenant

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/calltrack/calltrack/internal/call"
)

// ErrUnauthorized is returned for an unknown tenant or a wrong secret alike, so a
// caller cannot tell which.
var ErrUnauthorized = errors.New("unauthorized")

// Secret is a string that never prints.
type Secret string

func (Secret) String() string               { return "[redacted]" }
func (Secret) GoString() string             { return "[redacted]" }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }
func (s Secret) Reveal() string             { return string(s) }

// CRM is a tenant's CRM connection.
type CRM struct {
	Kind        string  // kylas, zoho
	RateLimit   float64 // requests per second, shared by every replica; 0: the CRM's default
	BaseURL     string
	APIKey      Secret    // Kylas api-key
	BearerToken Secret    // Kylas OAuth token for the owner-attributing sync route, if any
	Zoho        Zoho      // kind zoho (zoho.go)
	Policy      CRMPolicy // auth route, unknown callers (crmpolicy.go)
}

// Tenant is one company: its MyOperator account and CRM connection.
type Tenant struct {
	ID             string
	CompanyID      string // when set, payloads of another company are refused
	WebhookToken   Secret
	MyOperatorAPI  string // MyOperator API base URL
	MyOperatorKey  Secret // MyOperator API token (users, recordings)
	FallbackOwner  string // CRM user id for unmapped agents; empty: keep unattributed
	DefaultCountry string // calling code for 10-digit numbers; default 91
	CRM            CRM
	Sync           Sync       // user-sync settings (sync.go)
	Backfill       Backfill   // backfill from MyOperator's call log (backfill.go)
	Recordings     Recordings // recording links (recordings.go)
	// Calls is what becomes of each kind of call, business hours, follow-up tasks and
	// department fallback owners (policy.go).
	Calls CallPolicy
	// APIToken authenticates calltrack's tenant API (POST /api/v1/tenants/{t}/calls:
	// Authorization: Bearer); empty: the API is closed for the tenant.
	APIToken    Secret
	APITokenEnv string      // the environment variable APIToken was read from (shown, never the token)
	ClickToCall ClickToCall // click-to-call through MyOperator (clicktocall.go)
}

// AcceptsCompany reports whether a payload of companyID may be accepted for t.
func (t *Tenant) AcceptsCompany(companyID string) bool {
	return t.CompanyID == "" || companyID == "" || companyID == t.CompanyID
}

// Registry is the set of tenants.
type Registry struct {
	warnings []string // what Load wants an operator to know (crmpolicy.go)
	byID     map[string]*Tenant
	admins   []Admin // console and admin API (access.go)
}

// NewRegistry builds a registry from tenants.
func NewRegistry(ts ...*Tenant) *Registry {
	r := &Registry{byID: map[string]*Tenant{}}
	for _, t := range ts {
		if t.DefaultCountry == "" {
			t.DefaultCountry = "91"
		}
		r.byID[t.ID] = t
	}
	return r
}

// Warnings are what loading the tenants found worth an operator's attention.
func (r *Registry) Warnings() []string { return r.warnings }

// Get returns a tenant by id.
func (r *Registry) Get(id string) (*Tenant, bool) {
	t, ok := r.byID[id]
	return t, ok
}

// IDs lists tenant ids, sorted.
func (r *Registry) IDs() []string {
	out := make([]string, 0, len(r.byID))
	for id := range r.byID {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Authenticate checks secret against the tenant's webhook token in constant time.
// Unknown tenants cost the same comparison and fail the same way.
func (r *Registry) Authenticate(id, secret string) (*Tenant, error) {
	t, ok := r.byID[id]
	want := "\x00unknown-tenant"
	if ok {
		want = t.WebhookToken.Reveal()
	}
	// Hash both so the comparison time does not depend on the lengths either.
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(want))
	match := subtle.ConstantTimeCompare(a[:], b[:]) == 1
	if !ok || !match || secret == "" || want == "" {
		return nil, ErrUnauthorized
	}
	return t, nil
}

// file is the YAML shape of the tenants file.
type file struct {
	Operators []adminYAML `yaml:"operators"` // access.go
	Tenants   map[string]struct {
		CompanyID          string          `yaml:"company_id"`
		WebhookTokenEnv    string          `yaml:"webhook_token_env"`
		MyOperatorAPIURL   string          `yaml:"myoperator_api_url"`
		MyOperatorTokenEnv string          `yaml:"myoperator_api_token_env"`
		FallbackOwner      string          `yaml:"fallback_owner"`
		DefaultCountry     string          `yaml:"default_country"`
		Sync               syncYAML        `yaml:"sync"`
		Backfill           backfillYAML    `yaml:"backfill"`
		Recordings         recordingsYAML  `yaml:"recordings"`
		APITokenEnv        string          `yaml:"api_token_env"`
		ClickToCall        clickToCallYAML `yaml:"click_to_call"`
		Calls              policyYAML      `yaml:",inline"` // policy.go
		CRM                struct {
			Kind           string        `yaml:"kind"`
			BaseURL        string        `yaml:"base_url"`
			APIKeyEnv      string        `yaml:"api_key_env"`
			BearerTokenEnv string        `yaml:"bearer_token_env"`
			RateLimit      float64       `yaml:"rate_limit"`
			Zoho           zohoYAML      `yaml:",inline"`
			Policy         crmPolicyYAML `yaml:",inline"`
		} `yaml:"crm"`
		Admins []adminYAML `yaml:"admins"` // access.go
	} `yaml:"tenants"`
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Load reads the tenants file; getenv resolves the secret variables it names.
func Load(path string, getenv func(string) string) (*Registry, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenants file: %w", err)
	}
	var f file
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("tenants file %s: %w", path, err)
	}
	if len(f.Tenants) == 0 {
		return nil, fmt.Errorf("tenants file %s: no tenants", path)
	}
	var ts []*Tenant
	var allWarnings []string
	admins, err := parseAdmins(f.Operators, "", getenv)
	if err != nil {
		return nil, err
	}
	for id, e := range f.Tenants {
		if !idPattern.MatchString(id) {
			return nil, fmt.Errorf("tenants file: tenant id %q: use lowercase letters, digits, - and _", id)
		}
		secret := func(field, name string, required bool) (Secret, error) {
			if name == "" {
				if required {
					return "", fmt.Errorf("tenants file: tenant %s: %s is required", id, field)
				}
				return "", nil
			}
			v := getenv(name)
			if v == "" && required {
				return "", fmt.Errorf("tenants file: tenant %s: environment variable %s (%s) is empty", id, name, field)
			}
			return Secret(v), nil
		}
		t := &Tenant{ID: id, CompanyID: e.CompanyID, FallbackOwner: e.FallbackOwner,
			DefaultCountry: e.DefaultCountry, MyOperatorAPI: e.MyOperatorAPIURL,
			CRM: CRM{Kind: e.CRM.Kind, BaseURL: e.CRM.BaseURL, RateLimit: e.CRM.RateLimit}}
		if t.WebhookToken, err = secret("webhook_token_env", e.WebhookTokenEnv, true); err != nil {
			return nil, err
		}
		if t.MyOperatorKey, err = secret("myoperator_api_token_env", e.MyOperatorTokenEnv, false); err != nil {
			return nil, err
		}
		switch t.CRM.Kind {
		case call.CRMKylas:
			if t.CRM.BaseURL == "" {
				t.CRM.BaseURL = "https://api.kylas.io"
			}
			if t.CRM.APIKey, err = secret("crm.api_key_env", e.CRM.APIKeyEnv, true); err != nil {
				return nil, err
			}
			if t.CRM.BearerToken, err = secret("crm.bearer_token_env", e.CRM.BearerTokenEnv, false); err != nil {
				return nil, err
			}
		case call.CRMZoho:
			if t.CRM.Zoho, err = e.CRM.Zoho.parse(id, secret); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("tenants file: tenant %s: crm.kind %q is not supported (kylas, zoho)", id, t.CRM.Kind)
		}
		var warnings []string
		if t.CRM.Policy, warnings, err = e.CRM.Policy.parse(id, t.CRM.Kind, t.CRM.BearerToken.Reveal() != ""); err != nil {
			return nil, err
		}
		allWarnings = append(allWarnings, warnings...)
		if t.Sync, err = e.Sync.parse(); err != nil {
			return nil, fmt.Errorf("tenants file: tenant %s: %w", id, err)
		}
		if t.Backfill, err = e.Backfill.parse(); err != nil {
			return nil, fmt.Errorf("tenants file: tenant %s: %w", id, err)
		}
		if t.Calls, err = e.Calls.parse(id); err != nil {
			return nil, err
		}
		if t.Recordings, err = e.Recordings.parse(); err != nil {
			return nil, fmt.Errorf("tenants file: tenant %s: %w", id, err)
		}
		if t.MyOperatorAPI == "" {
			t.MyOperatorAPI = "https://developers.myoperator.co"
		}
		if t.APIToken, err = secret("api_token_env", e.APITokenEnv, false); err != nil {
			return nil, err
		}
		if t.APIToken != "" {
			t.APITokenEnv = e.APITokenEnv
		}
		if t.ClickToCall, err = e.ClickToCall.parse(secret); err != nil {
			return nil, fmt.Errorf("tenants file: tenant %s: %w", id, err)
		}
		if t.ClickToCall.Enabled() && t.CompanyID == "" {
			return nil, fmt.Errorf("tenants file: tenant %s: click_to_call needs company_id (MyOperator's outbound API asks for it)", id)
		}
		as, err := parseAdmins(e.Admins, id, getenv)
		if err != nil {
			return nil, err
		}
		admins = append(admins, as...)
		ts = append(ts, t)
	}
	if err := oneAccountEach(ts); err != nil {
		return nil, fmt.Errorf("tenants file %s: %w", path, err)
	}
	r, err := NewRegistry(ts...).WithAdmins(admins...)
	if err != nil {
		return nil, fmt.Errorf("tenants file %s: %w", path, err)
	}
	r.warnings = allWarnings
	return r, nil
}

// oneAccountEach refuses two tenants that read one MyOperator account (the same API
// token): each one's backfill would find the other's calls in the account's call log
// and write them into its own CRM.
func oneAccountEach(ts []*Tenant) error {
	slices.SortFunc(ts, func(a, b *Tenant) int { return strings.Compare(a.ID, b.ID) })
	byToken := map[Secret]string{}
	for _, t := range ts {
		if t.MyOperatorKey == "" {
			continue
		}
		if other, ok := byToken[t.MyOperatorKey]; ok {
			return fmt.Errorf("tenants %s and %s have the same MyOperator API token (myoperator_api_token_env): "+
				"each would backfill the other's calls into its CRM; give each tenant its own MyOperator account", other, t.ID)
		}
		byToken[t.MyOperatorKey] = t.ID
	}
	return nil
}

// Name is the CRM's name for people (pages, error messages): "Kylas", "Zoho CRM".
func (c CRM) Name() string {
	switch c.Kind {
	case call.CRMKylas:
		return "Kylas"
	case call.CRMZoho:
		return "Zoho CRM"
	case "":
		return "the CRM"
	}
	return c.Kind
}
