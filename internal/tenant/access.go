package tenant

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"regexp"
	"sort"
)

// Admin is someone allowed into the console and the admin API with a token of their
// own: an operator (every tenant) or a tenant admin (one tenant). The tenants file
// names the token's environment variable, never the token.
type Admin struct {
	Name   string // who, in logs and in the mapping journal's actor
	Tenant string // the one tenant of a tenant admin; "" for an operator
	Token  Secret
}

// Operator reports whether the admin may act on every tenant.
func (a *Admin) Operator() bool { return a.Tenant == "" }

// CanAccess reports whether the admin may read and change tenant id.
func (a *Admin) CanAccess(id string) bool { return a.Operator() || a.Tenant == id }

// Role names the admin's role as the console shows it.
func (a *Admin) Role() string {
	if a.Operator() {
		return "operator"
	}
	return "tenant admin of " + a.Tenant
}

// adminYAML is one entry of the tenants file's `operators:` or a tenant's `admins:`.
type adminYAML struct {
	Name     string `yaml:"name"`
	TokenEnv string `yaml:"token_env"`
}

var adminName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$`)

// parseAdmins resolves the token variables of one list; tenantID is "" for operators.
func parseAdmins(list []adminYAML, tenantID string, getenv func(string) string) ([]Admin, error) {
	where := "operators"
	if tenantID != "" {
		where = "tenant " + tenantID + ": admins"
	}
	out := make([]Admin, 0, len(list))
	for i, y := range list {
		switch {
		case !adminName.MatchString(y.Name):
			return nil, fmt.Errorf("tenants file: %s[%d]: name %q: use letters, digits and . _ @ -", where, i, y.Name)
		case y.TokenEnv == "":
			return nil, fmt.Errorf("tenants file: %s[%d] (%s): token_env is required", where, i, y.Name)
		case getenv(y.TokenEnv) == "":
			return nil, fmt.Errorf("tenants file: %s[%d] (%s): environment variable %s (token_env) is empty", where, i, y.Name, y.TokenEnv)
		}
		out = append(out, Admin{Name: y.Name, Tenant: tenantID, Token: Secret(getenv(y.TokenEnv))})
	}
	return out, nil
}

// WithAdmins adds admins to the registry (at start, before use). Two admins may not
// share a name or a token: a token must say who is acting.
func (r *Registry) WithAdmins(as ...Admin) (*Registry, error) {
	for _, a := range as {
		if a.Token.Reveal() == "" {
			return nil, fmt.Errorf("admin %s: empty token", a.Name)
		}
		if a.Tenant != "" {
			if _, ok := r.byID[a.Tenant]; !ok {
				return nil, fmt.Errorf("admin %s: no tenant %s", a.Name, a.Tenant)
			}
		}
		for _, b := range r.admins {
			if b.Name == a.Name {
				return nil, fmt.Errorf("admin name %s is used twice", a.Name)
			}
			if b.Token.Reveal() == a.Token.Reveal() {
				return nil, fmt.Errorf("admins %s and %s have the same token", b.Name, a.Name)
			}
		}
		r.admins = append(r.admins, a)
	}
	sort.SliceStable(r.admins, func(i, j int) bool { return r.admins[i].Name < r.admins[j].Name })
	return r, nil
}

// Admins lists the admins, by name.
func (r *Registry) Admins() []Admin { return append([]Admin(nil), r.admins...) }

// AuthenticateAdmin returns the admin whose token is secret. Every token is compared,
// in constant time and hashed, so the time taken says nothing about which (or whether
// any) token came close.
func (r *Registry) AuthenticateAdmin(secret string) (*Admin, error) {
	var found *Admin
	for i := range r.admins {
		if r.admins[i].Token.Equal(secret) && found == nil {
			found = &r.admins[i]
		}
	}
	if found == nil || secret == "" {
		return nil, ErrUnauthorized
	}
	return found, nil
}

// Admin returns the admin of that name, if it (still) exists.
func (r *Registry) Admin(name string) (*Admin, bool) {
	for i := range r.admins {
		if r.admins[i].Name == name {
			return &r.admins[i], true
		}
	}
	return nil, false
}

// Equal compares got with the secret in constant time (both hashed, so the time does
// not depend on their lengths either).
func (s Secret) Equal(got string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
