package tenant

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Zoho is a tenant's Zoho CRM connection (crm.kind zoho).
type Zoho struct {
	AccountsURL  string // OAuth server of the account's data centre, e.g. https://accounts.zoho.in
	APIDomain    string // API root of the data centre, e.g. https://www.zohoapis.in
	ClientID     string
	ClientSecret Secret
	RefreshToken Secret
	TimeZone     string // IANA zone of the call times written; "" = Asia/Kolkata
	// CallIDField is a single-line custom field of the Calls module that gets the call
	// id (found again with COQL); "" = the call id ends the Subject.
	CallIDField string
	// ClickToDialURI is what the PhoneBridge setup registers for each mapped user (the
	// click-to-call callback); "" = <CALLTRACK_PUBLIC_URL>/webhooks/zoho/<tenant>/clicktodial.
	ClickToDialURI string
	// ClickToDialAuth is sent back by Zoho with each click (authorizationparam).
	ClickToDialAuth Secret
	// OrgDomain is the org's domain_name from GET /crm/v8/org ("org74822955"), the
	// segment of its web app's record links; "" = the console shows record ids.
	OrgDomain string
}

// ZohoDataCentres maps the tenants file's crm.data_centre to the accounts server
// and API domain of each Zoho data centre.
var ZohoDataCentres = map[string]struct{ AccountsURL, APIDomain string }{
	"com":    {"https://accounts.zoho.com", "https://www.zohoapis.com"},
	"eu":     {"https://accounts.zoho.eu", "https://www.zohoapis.eu"},
	"in":     {"https://accounts.zoho.in", "https://www.zohoapis.in"},
	"com.au": {"https://accounts.zoho.com.au", "https://www.zohoapis.com.au"},
	"jp":     {"https://accounts.zoho.jp", "https://www.zohoapis.jp"},
	"ca":     {"https://accounts.zohocloud.ca", "https://www.zohoapis.ca"},
	"sa":     {"https://accounts.zoho.sa", "https://www.zohoapis.sa"},
	"cn":     {"https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"},
}

// zohoYAML is the Zoho part of a tenant's crm block. accounts_url / api_domain
// override what data_centre gives.
type zohoYAML struct {
	DataCentre      string `yaml:"data_centre"`
	AccountsURL     string `yaml:"accounts_url"`
	APIDomain       string `yaml:"api_domain"`
	ClientID        string `yaml:"client_id"`
	ClientSecretEnv string `yaml:"client_secret_env"`
	RefreshTokenEnv string `yaml:"refresh_token_env"`
	TimeZone        string `yaml:"time_zone"`
	CallIDField     string `yaml:"call_id_field"`
	ClickToDialURI  string `yaml:"clicktodial_uri"`
	ClickToDialEnv  string `yaml:"clicktodial_auth_env"`
	OrgDomain       string `yaml:"org_domain"`
}

func (y zohoYAML) parse(id string, secret func(field, name string, required bool) (Secret, error)) (Zoho, error) {
	bad := func(format string, args ...any) (Zoho, error) {
		return Zoho{}, fmt.Errorf("tenants file: tenant %s: "+format, append([]any{id}, args...)...)
	}
	z := Zoho{AccountsURL: y.AccountsURL, APIDomain: y.APIDomain, ClientID: strings.TrimSpace(y.ClientID), TimeZone: y.TimeZone,
		CallIDField: strings.TrimSpace(y.CallIDField), OrgDomain: strings.TrimSpace(y.OrgDomain)}
	if y.DataCentre != "" {
		dc, ok := ZohoDataCentres[y.DataCentre]
		if !ok {
			names := make([]string, 0, len(ZohoDataCentres))
			for k := range ZohoDataCentres {
				names = append(names, k)
			}
			slices.Sort(names)
			return bad("crm.data_centre %q: use one of %s", y.DataCentre, strings.Join(names, ", "))
		}
		z.AccountsURL = cmpOr(z.AccountsURL, dc.AccountsURL)
		z.APIDomain = cmpOr(z.APIDomain, dc.APIDomain)
	}
	for _, u := range []struct{ field, v string }{{"crm.accounts_url", z.AccountsURL}, {"crm.api_domain", z.APIDomain}} {
		if u.v == "" {
			return bad("%s is required (or crm.data_centre)", u.field)
		}
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return bad("%s %q is not an http(s) URL", u.field, u.v)
		}
	}
	if z.ClientID == "" {
		return bad("crm.client_id is required")
	}
	if z.ClickToDialURI = strings.TrimSpace(y.ClickToDialURI); z.ClickToDialURI != "" {
		if p, err := url.Parse(z.ClickToDialURI); err != nil || p.Scheme != "https" || p.Host == "" {
			return bad("crm.clicktodial_uri %q is not an https URL", z.ClickToDialURI)
		}
	}
	if z.OrgDomain != "" && !zohoOrgDomainRE.MatchString(z.OrgDomain) {
		return bad("crm.org_domain %q is not an org's domain_name as GET /crm/v8/org answers it (e.g. org74822955)", z.OrgDomain)
	}
	if z.CallIDField != "" && !zohoAPINameRE.MatchString(z.CallIDField) {
		return bad("crm.call_id_field %q is not a field API name (letters, digits, _)", z.CallIDField)
	}
	if z.TimeZone != "" {
		if _, err := time.LoadLocation(z.TimeZone); err != nil {
			return bad("crm.time_zone %q: %v", z.TimeZone, err)
		}
	}
	var err error
	if z.ClientSecret, err = secret("crm.client_secret_env", y.ClientSecretEnv, true); err != nil {
		return Zoho{}, err
	}
	if z.RefreshToken, err = secret("crm.refresh_token_env", y.RefreshTokenEnv, true); err != nil {
		return Zoho{}, err
	}
	if z.ClickToDialAuth, err = secret("crm.clicktodial_auth_env", y.ClickToDialEnv, false); err != nil {
		return Zoho{}, err
	}
	return z, nil
}

// zohoAPINameRE is a Zoho field API name.
var zohoAPINameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,99}$`)

// zohoOrgDomainRE: a URL path segment of letters, digits, '-' and '_' (Zoho's samples
// show "org" and the org's zgid; nothing says a domain_name is never custom).
var zohoOrgDomainRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
