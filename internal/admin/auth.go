package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/authlimit"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

// Auth says who an admin token belongs to: an admin of the tenants file (an operator,
// or a tenant admin of one tenant), or the operator token of CALLTRACK_ADMIN_TOKEN.
// The console signs in with it too.
type Auth struct {
	Tenants *tenant.Registry
	// Token is CALLTRACK_ADMIN_TOKEN: an operator token, named "admin".
	Token tenant.Secret
	// Attempts refuses a client after too many failed authentications; nil: no limit.
	Attempts Attempts
}

// Attempts counts failed authentications per client address (authlimit.Limiter):
// Attempt says how long the client is refused, 0 when it is not.
type Attempts interface {
	Attempt(ctx context.Context, surface authlimit.Surface, client string, ok bool) time.Duration
}

// OperatorName is the admin name of CALLTRACK_ADMIN_TOKEN.
const OperatorName = "admin"

// Authenticate returns the admin whose token is secret, or tenant.ErrUnauthorized.
func (a *Auth) Authenticate(secret string) (*tenant.Admin, error) {
	ad, err := a.Tenants.AuthenticateAdmin(secret)
	if a.Token.Reveal() != "" && a.Token.Equal(secret) {
		return &tenant.Admin{Name: OperatorName, Token: a.Token}, nil
	}
	return ad, err
}

// AuthenticateFrom is Authenticate for a request from client on surface, within the
// limit of failed authentications: wait > 0 when the client is refused (429), whatever
// the token.
func (a *Auth) AuthenticateFrom(ctx context.Context, surface authlimit.Surface, client, secret string) (ad *tenant.Admin, wait time.Duration, err error) {
	ad, err = a.Authenticate(secret)
	if a.Attempts != nil {
		if wait = a.Attempts.Attempt(ctx, surface, client, err == nil); wait > 0 {
			return nil, wait, tenant.ErrUnauthorized
		}
	}
	return ad, 0, err
}

// Current returns the admin a still-valid session or token names: nil when the admin
// is gone from the tenants file or the token changed (rotating a token ends the
// sessions signed in with it).
func (a *Auth) Current(name, tokenFingerprint string) *tenant.Admin {
	var ad *tenant.Admin
	if name == OperatorName && a.Token.Reveal() != "" {
		ad = &tenant.Admin{Name: OperatorName, Token: a.Token}
	} else if found, ok := a.Tenants.Admin(name); ok {
		ad = found
	}
	if ad == nil || Fingerprint(ad.Token) != tokenFingerprint {
		return nil
	}
	return ad
}

// contextKey holds the signed-in admin in an echo.Context.
const contextKey = "calltrack.admin"

// FromContext returns the admin RequireAdmin (or the console's session) let in.
func FromContext(c echo.Context) *tenant.Admin {
	ad, _ := c.Get(contextKey).(*tenant.Admin)
	return ad
}

// WithAdmin records the admin acting in this request.
func WithAdmin(c echo.Context, ad *tenant.Admin) { c.Set(contextKey, ad) }

// Bearer authenticates the request's bearer token on surface; nil when there is none,
// it is wrong, or the client is refused for failing too often.
func (a *Auth) Bearer(c echo.Context, surface authlimit.Surface) *tenant.Admin {
	ad, _ := a.bearer(c, surface)
	return ad
}

// bearer authenticates the request's bearer token: the admin, or a *web.Error (401;
// 429 with Retry-After for a refused client). A request without one is no attempt.
func (a *Auth) bearer(c echo.Context, surface authlimit.Surface) (*tenant.Admin, error) {
	got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
	if !ok {
		return nil, web.Errorf(http.StatusUnauthorized, "unauthorized", "missing or wrong admin bearer token")
	}
	ad, wait, err := a.AuthenticateFrom(c.Request().Context(), surface, c.RealIP(), got)
	if wait > 0 {
		return nil, authlimit.Refuse(c, wait)
	}
	if err != nil {
		return nil, web.Errorf(http.StatusUnauthorized, "unauthorized", "missing or wrong admin bearer token")
	}
	return ad, nil
}

// RequireAdmin is the admin API's auth, and the hook for admin routes other packages
// mount (user sync, backfill, PhoneBridge setup): a bearer token of an admin (401
// otherwise; 429 once the client failed too often); on routes with a :tenant
// parameter, an admin of that tenant (403 for a tenant admin on another tenant, 404 for
// an operator on an unknown one). Handlers get the admin with FromContext.
func (a *Auth) RequireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ad, err := a.bearer(c, authlimit.AdminAPI)
		if err != nil {
			return err
		}
		if err := Allow(ad, a.Tenants, tenantOf(c)); err != nil {
			return err
		}
		WithAdmin(c, ad)
		return next(c)
	}
}

// tenantsPrefix is where the admin API's per-tenant routes live.
const tenantsPrefix = "/admin/v1/tenants/"

// tenantOf is the tenant a request acts on: its route's :tenant, or — on the group's
// catch-all, which a wrong method reaches (answered 405 by web's error handler) — the
// path's tenant segment, so that such a request meets the same 403/404 as the right
// method would and learns nothing of another tenant's routes.
func tenantOf(c echo.Context) string {
	if id := c.Param("tenant"); id != "" || !strings.HasSuffix(c.Path(), "*") {
		return id
	}
	rest, ok := strings.CutPrefix(c.Request().URL.EscapedPath(), tenantsPrefix)
	if !ok {
		return ""
	}
	seg, _, _ := strings.Cut(rest, "/")
	id, err := url.PathUnescape(seg)
	if err != nil {
		return seg
	}
	return id
}

// Allow checks that ad may act on tenant id ("" allows any admin): 403 for a tenant
// admin on another tenant, whether it exists or not; 404 for an operator on an
// unknown tenant.
func Allow(ad *tenant.Admin, tenants *tenant.Registry, id string) error {
	if id == "" {
		return nil
	}
	if !ad.CanAccess(id) {
		return web.Errorf(http.StatusForbidden, "forbidden", "your token is for tenant "+ad.Tenant+" only")
	}
	if _, ok := tenants.Get(id); !ok {
		return web.Errorf(http.StatusNotFound, "unknown_tenant", "no tenant "+id)
	}
	return nil
}

// Fingerprint identifies a token without revealing it (sessions keep it to notice a
// rotated token).
func Fingerprint(s tenant.Secret) string {
	return fingerprint(s.Reveal())
}

func fingerprint(s string) string {
	h := sha256.Sum256([]byte("calltrack-admin-token\x00" + s))
	return hex.EncodeToString(h[:12])
}
