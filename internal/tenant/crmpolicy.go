package tenant

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/calltrack/calltrack/internal/call"
)

// How calltrack authenticates to Kylas (crm.auth).
const (
	KylasAuthOAuth  = "oauth"   // a marketplace app's OAuth token: POST /v1/call-logs/sync, owned by the mapped user
	KylasAuthAPIKey = "api_key" // an api-key alone: POST /v1/call-logs, owned by the key's user
)

// What to do for a caller who matches no lead or contact (crm.unknown_caller).
const (
	// UnknownCallerCreateLead is the default, as MyOperator's own CRM integrations do
	// for incoming calls: https://support.myoperator.com/portal/en/kb/articles/how-are-leads-and-activities-managed-in-kylas-crm-during-calls
	// (Kylas), https://support.myoperator.com/portal/en/kb/articles/what-data-is-logged-in-each-call-activity-field-when-zoho-is-integrated-with-myoperator
	// (Zoho: "a new Lead named 'Inbound <number>'").
	UnknownCallerCreateLead = "create_lead"
	UnknownCallerNone       = "none"
)

// CRMPolicy is how calltrack uses a tenant's CRM beyond connecting to it.
type CRMPolicy struct {
	KylasAuth     string // KylasAuthOAuth or KylasAuthAPIKey (kind kylas)
	UnknownCaller string // UnknownCallerCreateLead or UnknownCallerNone
	LeadSource    string // Kylas: the lead source's picklist option id; Zoho: a Lead_Source value
	LeadTag       string // Zoho: a tag on the leads calltrack creates
}

// CreateLeads reports whether an unknown caller gets a lead.
func (p CRMPolicy) CreateLeads() bool { return p.UnknownCaller != UnknownCallerNone }

// crmPolicyYAML is the policy part of a tenant's crm block.
type crmPolicyYAML struct {
	Auth          string `yaml:"auth"`
	UnknownCaller string `yaml:"unknown_caller"`
	LeadSource    string `yaml:"lead_source"`
	LeadTag       string `yaml:"lead_tag"`
}

// parse validates the policy of a tenant whose CRM is kind; hasBearer: a Kylas
// OAuth token is configured. Warnings are what an operator must know and accept
// (logged at start-up).
func (y crmPolicyYAML) parse(id, kind string, hasBearer bool) (CRMPolicy, []string, error) {
	bad := func(format string, args ...any) (CRMPolicy, []string, error) {
		return CRMPolicy{}, nil, fmt.Errorf("tenants file: tenant %s: "+format, append([]any{id}, args...)...)
	}
	p := CRMPolicy{KylasAuth: y.Auth, UnknownCaller: y.UnknownCaller, LeadSource: strings.TrimSpace(y.LeadSource),
		LeadTag: strings.TrimSpace(y.LeadTag)}
	var warnings []string
	switch p.UnknownCaller {
	case "":
		p.UnknownCaller = UnknownCallerCreateLead
	case UnknownCallerCreateLead, UnknownCallerNone:
	default:
		return bad("crm.unknown_caller %q: use create_lead (the default) or none", p.UnknownCaller)
	}
	switch kind {
	case call.CRMKylas:
		switch {
		case p.KylasAuth == "" && hasBearer, p.KylasAuth == KylasAuthOAuth && hasBearer:
			p.KylasAuth = KylasAuthOAuth
		case p.KylasAuth == KylasAuthOAuth:
			return bad("crm.auth oauth needs crm.bearer_token_env: the OAuth token of the tenant's Kylas marketplace app installation")
		case p.KylasAuth == "" || p.KylasAuth == KylasAuthAPIKey:
			if hasBearer {
				return bad("crm.auth api_key with crm.bearer_token_env: remove the token or use crm.auth: oauth")
			}
			p.KylasAuth = KylasAuthAPIKey
			warnings = append(warnings, fmt.Sprintf("tenant %s: crm.auth api_key: Kylas owns every call log by the API key's user "+
				"(POST /v1/call-logs has no owner field), so calls are not attributed to the mapped users; "+
				"for attribution install calltrack as a Kylas marketplace app and set crm.bearer_token_env", id))
			// POST /v1/call-logs requires relatedTo: an internal call (agent to agent)
			// relates to no lead or contact whatever unknown_caller says, so it is
			// dead-lettered (internal/crm/kylas); with unknown_caller none so is a call
			// from a number with no lead or contact.
			unrelated := "internal calls (agent to agent: no lead or contact to relate)"
			if !p.CreateLeads() {
				unrelated = "internal calls and, with crm.unknown_caller none, calls from numbers with no lead or contact"
			}
			warnings = append(warnings, fmt.Sprintf("tenant %s: crm.auth api_key: POST /v1/call-logs requires relatedTo, so %s "+
				"are dead-lettered", id, unrelated))
		default:
			return bad("crm.auth %q: use oauth (a marketplace app's token) or api_key", p.KylasAuth)
		}
		if p.LeadSource != "" {
			if n, err := strconv.ParseInt(p.LeadSource, 10, 64); err != nil || n <= 0 {
				return bad("crm.lead_source %q: Kylas takes the lead source's picklist option id (a number)", p.LeadSource)
			}
		}
		if p.LeadTag != "" {
			return bad("crm.lead_tag: Kylas's lead API documents no tags; use crm.lead_source")
		}
	case call.CRMZoho:
		if p.KylasAuth != "" {
			return bad("crm.auth is a Kylas setting; Zoho authenticates with its OAuth client (client_id, refresh_token_env)")
		}
		if utf8.RuneCountInString(p.LeadTag) > 25 {
			return bad("crm.lead_tag %q: a Zoho tag name has at most 25 characters", p.LeadTag)
		}
	}
	return p, warnings, nil
}
