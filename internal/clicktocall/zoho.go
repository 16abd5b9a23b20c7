package clicktocall

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/authlimit"
	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/phone"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

// ZohoUsers names the CRM user of a PhoneBridge user (the map the PhoneBridge setup
// stored; a PhoneBridge user id is not the CRM user id).
type ZohoUsers interface {
	CRMUser(ctx context.Context, zohouser string) (string, bool, error)
}

// ZohoErrors reports a click that placed no call to Zoho
// (POST /phonebridge/v3/clicktodialerror; *zoho.Adapter).
type ZohoErrors interface {
	ClickToDialError(ctx context.Context, code, from, to, zohouser, message string) error
}

// Zoho's clicktodialerror codes (Zoho PhoneBridge v3, "Click to Dial Error API").
const (
	ZohoBusy         = "busy"
	ZohoInvalid      = "invalid"
	ZohoBlocked      = "blocked"
	ZohoNotAvailable = "notavailable"
	ZohoNoAnswer     = "noanswer"
	ZohoRejected     = "rejected"
)

// Parameters of the click-to-dial callback: what the PhoneBridge setup registers as
// clicktodialparam ([{"name":"tonumber","value":"$to"},{"name":"zohouser","value":"$zohouser"}])
// and authorizationparam ({"name":"token","value":<crm.clicktodial_auth_env>}).
const (
	ZohoParamTo    = "tonumber"
	ZohoParamUser  = "zohouser"
	ZohoParamToken = "token"
)

// ZohoDial serves Zoho PhoneBridge's click-to-dial callback,
// POST /webhooks/zoho/{tenant}/clicktodial: the URI the PhoneBridge setup registers
// for every mapped user. A click that places no call is reported to Zoho's
// clicktodialerror (the user sees why in Zoho) and answered with the same 4xx JSON
// error as the API.
type ZohoDial struct {
	Service *Service
	Tenants *tenant.Registry
	Users   func(t *tenant.Tenant) ZohoUsers
	Errors  func(t *tenant.Tenant) (ZohoErrors, error)
	// Attempts refuses a client after too many wrong tokens, in a budget per tenant (Zoho
	// calls from servers many tenants share: one tenant's wrong token must not lock the
	// others out); nil: no limit.
	Attempts Attempts
	Log      zerolog.Logger
}

// Register mounts the route.
func (z *ZohoDial) Register(e *echo.Echo) {
	e.POST("/webhooks/zoho/:tenant/clicktodial", z.click)
}

// param reads a callback parameter from the form body or the query, else a header
// (Zoho's docs do not say which it uses; authorizationparam may name a header).
func param(c echo.Context, name string) string {
	if v := c.FormValue(name); v != "" {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(c.Request().Header.Get(name))
}

func (z *ZohoDial) click(c echo.Context) error {
	t, ok := z.Tenants.Get(c.Param("tenant"))
	open := ok && t.CRM.Kind == call.CRMZoho && t.CRM.Zoho.ClickToDialAuth != ""
	want := "\x00closed"
	if open {
		want = t.CRM.Zoho.ClickToDialAuth.Reveal()
	}
	got := param(c, ZohoParamToken)
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	authentic := subtle.ConstantTimeCompare(a[:], b[:]) == 1 && open && got != ""
	if z.Attempts != nil && got != "" { // no token is no guess
		if wait := z.Attempts.AttemptIn(c.Request().Context(), authlimit.ZohoClickToDial, c.Param("tenant"), c.RealIP(), authentic); wait > 0 {
			return z.Service.Refused(t, ViaZoho, authlimit.Refuse(c, wait))
		}
	}
	if !authentic {
		// Without crm.clicktodial_auth_env the callback stays closed: anyone could
		// otherwise make calltrack ring agents.
		return z.Service.Refused(t, ViaZoho, web.Errorf(http.StatusUnauthorized, "unauthorized", "unknown tenant or wrong click-to-dial token (crm.clicktodial_auth_env)"))
	}
	to, zuser := param(c, ZohoParamTo), param(c, ZohoParamUser)
	if to == "" || zuser == "" {
		return z.Service.Refused(t, ViaZoho, web.Errorf(http.StatusBadRequest, CodeInvalidRequest, "tonumber and zohouser are required"))
	}
	ctx := c.Request().Context()
	user, found, err := z.Users(t).CRMUser(ctx, zuser)
	var p Placed
	switch {
	case err != nil:
		err = z.Service.Refused(t, ViaZoho, &Error{Code: CodeUnavailable, Status: http.StatusServiceUnavailable, Message: "PhoneBridge user map unavailable; try again", Err: err})
	case !found:
		err = z.Service.Refused(t, ViaZoho, fail(CodeUnmappedUser, http.StatusUnprocessableEntity, "PhoneBridge user %s is not mapped to a CRM user (run the PhoneBridge setup)", zuser))
	default:
		p, err = z.Service.Place(ctx, Request{Tenant: t, CRMUserID: user, Number: to, Via: ViaZoho})
	}
	if err != nil {
		z.report(ctx, t, p, to, zuser, err)
		return asWebError(c, err)
	}
	return c.JSON(http.StatusAccepted, map[string]any{"status": "dialing", "reference_id": p.ReferenceID,
		"tenant": t.ID, "crm_user_id": user, "myoperator_user_id": p.AgentID, "number": p.Number})
}

// report tells Zoho why the click placed no call. Zoho asks the agent's number as
// `from` (mandatory): the mapped agent's phone, else the tenant's caller id, else —
// when calltrack knows no number of the user at all — the customer's number again.
// `to` must be E.164 too (Zoho's click-to-dial error page): a clicked "number" that is
// no phone number cannot be reported, and is not sent to be refused.
func (z *ZohoDial) report(ctx context.Context, t *tenant.Tenant, p Placed, to, zuser string, cause error) {
	var e *Error
	if !errors.As(cause, &e) {
		return
	}
	customer := p.Number
	if customer == "" {
		customer = phone.E164(to, t.DefaultCountry)
	}
	if customer == "" {
		z.Log.Info().Str("tenant", t.ID).Str("zohouser", zuser).Str("code", e.Code).
			Msg("click not reported to zoho's clicktodialerror: the clicked number is not a phone number, and Zoho takes only E.164")
		return
	}
	from := p.AgentPhone
	if from == "" {
		from = t.ClickToCall.CallerID
	}
	if from == "" {
		from = customer
	}
	api, err := z.Errors(t)
	if err == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = api.ClickToDialError(rctx, ZohoCode(e.Code), from, customer, zuser, e.Message)
	}
	if err != nil {
		z.Log.Warn().Err(err).Str("tenant", t.ID).Str("zohouser", zuser).Msg("zoho clicktodialerror not reported")
	}
}

// ZohoCode is the clicktodialerror code of an Error code.
func ZohoCode(code string) string {
	switch code {
	case CodeInvalidNumber, CodeInvalidRequest:
		return ZohoInvalid
	case CodeRateLimited:
		return ZohoBusy
	case CodeRefused:
		return ZohoRejected
	default: // unmapped, disabled, pending, ambiguous, not configured, unavailable, a malformed CRM user id (the setup's map: not the user's doing)
		return ZohoNotAvailable
	}
}
