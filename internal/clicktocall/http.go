package clicktocall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/authlimit"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

// API serves POST /api/v1/tenants/{tenant}/calls: {"crm_user_id","number"} with the
// tenant's API token (Authorization: Bearer <api_token_env>) → 202 with calltrack's
// reference id; errors are {"error":{"code","message"}} with the status of their code.
type API struct {
	Service *Service
	Tenants *tenant.Registry
	// Attempts refuses a client after too many wrong API tokens; nil: no limit.
	Attempts Attempts
}

// Attempts counts failed authentications per client address (authlimit.Limiter, the
// admin API's and the console's too), here in a budget per tenant: AttemptIn
// says how long the client is refused, 0 when it is not.
type Attempts interface {
	AttemptIn(ctx context.Context, surface authlimit.Surface, tenant, client string, ok bool) time.Duration
}

// Register mounts the route.
func (a *API) Register(e *echo.Echo) {
	e.POST("/api/v1/tenants/:tenant/calls", a.create)
}

// callRequest is the body. Unknown fields are refused: a misspelt field ("phone") must
// not place a call to nowhere or be silently ignored.
type callRequest struct {
	CRMUserID json.RawMessage `json:"crm_user_id"`
	Number    string          `json:"number"`
}

func (a *API) create(c echo.Context) error {
	req, err := a.read(c)
	if err != nil {
		known, _ := a.Tenants.Get(c.Param("tenant"))
		return a.Service.Refused(known, ViaAPI, err)
	}
	p, err := a.Service.Place(c.Request().Context(), req)
	if err != nil {
		return asWebError(c, err)
	}
	return c.JSON(http.StatusAccepted, map[string]any{"status": "dialing", "reference_id": p.ReferenceID,
		"tenant": req.Tenant.ID, "crm_user_id": req.CRMUserID, "myoperator_user_id": p.AgentID, "number": p.Number})
}

// read authenticates the request and reads its body into the click; the error is the
// *web.Error to answer.
func (a *API) read(c echo.Context) (Request, error) {
	token, ok := bearer(c.Request().Header.Get("Authorization"))
	if !ok {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="calltrack"`)
		return Request{}, web.Errorf(http.StatusUnauthorized, "unauthorized", "Authorization: Bearer <the tenant's API token> is required")
	}
	t, err := a.Tenants.AuthenticateAPI(c.Param("tenant"), token)
	if a.Attempts != nil {
		if wait := a.Attempts.AttemptIn(c.Request().Context(), authlimit.ClickToCall, c.Param("tenant"), c.RealIP(), err == nil); wait > 0 {
			return Request{}, authlimit.Refuse(c, wait)
		}
	}
	if err != nil {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="calltrack", error="invalid_token"`)
		return Request{}, web.Errorf(http.StatusUnauthorized, "unauthorized", "unknown tenant or wrong API token")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	if err != nil {
		return Request{}, web.Errorf(http.StatusRequestEntityTooLarge, "payload_too_large", "request body is larger than 64 KiB")
	}
	var body callRequest
	if err := web.DecodeJSON(bytes.NewReader(raw), &body); err != nil {
		return Request{}, web.Errorf(http.StatusBadRequest, CodeInvalidRequest, `body must be JSON {"crm_user_id":"...","number":"+91..."}: `+err.Error())
	}
	user, ok := userID(body.CRMUserID)
	if !ok {
		return Request{}, web.Errorf(http.StatusBadRequest, CodeInvalidRequest, "crm_user_id must be a string (or a number)")
	}
	return Request{Tenant: t, CRMUserID: user, Number: body.Number, Via: ViaAPI}, nil
}

// asWebError answers an *Error with its status and code (Retry-After when it has one).
func asWebError(c echo.Context, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	if e.RetryAfter > 0 {
		web.RetryAfter(c, e.RetryAfter)
	}
	return web.Errorf(e.Status, e.Code, e.Message)
}

// userID reads crm_user_id as a string; Kylas user ids are numbers, so a JSON number
// is taken as its text.
func userID(raw json.RawMessage) (string, bool) {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "" || s == "null":
		return "", true // Place says it is required
	case strings.HasPrefix(s, `"`):
		var v string
		err := json.Unmarshal(raw, &v)
		return v, err == nil
	default:
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", false
		}
		return n.String(), true
	}
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
