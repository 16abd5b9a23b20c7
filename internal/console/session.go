package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/authlimit"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

// Sessions: signing in turns an admin token into a random session id in a cookie
// (HttpOnly, SameSite=Lax, Secure outside dev); the session itself is in Redis, so any
// replica serves it and signing out ends it everywhere. It keeps the admin's name and
// token fingerprint (a rotated or removed token ends its sessions) and the session's
// CSRF token, which every form and fetch must send back — always: a same-origin
// Sec-Fetch-Site header alone is not taken as proof.

// Cookie names and lifetimes.
const (
	SessionCookie = "ct_session"
	signInCookie  = "ct_signin" // the sign-in form's CSRF token (double submit: there is no session yet)
	SessionTTL    = 12 * time.Hour
	// CSRFField is the form field (and X-CSRF-Token the header) carrying the token.
	CSRFField = "csrf"
)

// session is what Redis keeps of a signed-in admin.
type session struct {
	Admin       string    `json:"admin"`
	Fingerprint string    `json:"fp"`
	CSRF        string    `json:"csrf"`
	Created     time.Time `json:"created"`
	Flash       *flash    `json:"flash,omitempty"` // shown once, on the next page
}

// flash is a message for the next page (the result of a form post).
type flash struct {
	Kind  string   `json:"kind"` // ok, error
	Text  string   `json:"text"`
	Lines []string `json:"lines,omitempty"`
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Console) sessionKey(id string) string {
	h := sha256.Sum256([]byte(id)) // Redis never holds a usable session id
	return c.Prefix + ":console:session:" + hex.EncodeToString(h[:])
}

func (c *Console) loadSession(ctx context.Context, id string) (*session, error) {
	raw, err := c.Redis.Get(ctx, c.sessionKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("console: session: %w", err)
	}
	var s session
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, nil
	}
	return &s, nil
}

func (c *Console) saveSession(ctx context.Context, id string, s *session) error {
	raw, _ := json.Marshal(s)
	ttl := time.Until(s.Created.Add(SessionTTL))
	if ttl <= 0 {
		return nil
	}
	return c.Redis.Set(ctx, c.sessionKey(id), raw, ttl).Err()
}

func (c *Console) cookie(name, value, path string, maxAge int, sameSite http.SameSite) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: !c.Dev, SameSite: sameSite}
}

// current is the request's session and admin, nil when not signed in (or the token
// behind the session is no longer valid).
func (c *Console) current(e echo.Context) (string, *session, *tenant.Admin) {
	ck, err := e.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return "", nil, nil
	}
	s, err := c.loadSession(e.Request().Context(), ck.Value)
	if err != nil {
		c.Log.Warn().Err(err).Msg("console: session not read")
		return "", nil, nil
	}
	if s == nil {
		return "", nil, nil
	}
	ad := c.Auth.Current(s.Admin, s.Fingerprint)
	if ad == nil {
		return "", nil, nil
	}
	return ck.Value, s, ad
}

// Operator reports whether the request comes from a signed-in operator (for /readyz).
func (c *Console) Operator(e echo.Context) bool {
	_, _, ad := c.current(e)
	return ad != nil && ad.Operator()
}

// signInPage shows the sign-in form with a fresh form token.
func (c *Console) signInPage(e echo.Context) error {
	if _, _, ad := c.current(e); ad != nil {
		return e.Redirect(http.StatusSeeOther, c.home(ad))
	}
	return c.renderSignIn(e, http.StatusOK, "")
}

func (c *Console) renderSignIn(e echo.Context, status int, problem string) error {
	tok := randomToken()
	e.SetCookie(c.cookie(signInCookie, tok, "/console/sign-in", 3600, http.SameSiteStrictMode))
	next := safeNext(e.QueryParam("next"))
	if next == "" {
		next = safeNext(e.FormValue("next"))
	}
	return c.render(e, status, "signin", &page{Title: "Sign in", CSRF: tok, Problem: problem, Data: map[string]string{"Next": next}})
}

// signIn checks the form token and the admin token (within the limit of failed
// authentications, admin.Auth's), then starts a session.
func (c *Console) signIn(e echo.Context) error {
	ctx := e.Request().Context()
	ck, err := e.Cookie(signInCookie)
	if err != nil || !equal(ck.Value, e.FormValue(CSRFField)) {
		return c.fail(e, http.StatusForbidden, "This sign-in form has expired or did not come from the console. Reload the page and sign in again.")
	}
	ad, wait, err := c.Auth.AuthenticateFrom(ctx, authlimit.Console, e.RealIP(), strings.TrimSpace(e.FormValue("token")))
	if wait > 0 {
		s := web.RetryAfter(e, wait)
		return c.renderSignIn(e, http.StatusTooManyRequests,
			fmt.Sprintf("Too many failed sign-ins from your address. Wait %d seconds and try again.", s))
	}
	if err != nil {
		c.Log.Info().Str("client", e.RealIP()).Msg("console: sign-in refused (wrong token)")
		return c.renderSignIn(e, http.StatusUnauthorized, "That token is not valid. Use your operator or tenant-admin token.")
	}
	id := randomToken()
	s := &session{Admin: ad.Name, Fingerprint: admin.Fingerprint(ad.Token), CSRF: randomToken(), Created: time.Now().UTC()}
	if err := c.saveSession(ctx, id, s); err != nil {
		c.Log.Error().Err(err).Msg("console: session not saved")
		return c.fail(e, http.StatusServiceUnavailable, "Signing in is not possible right now (storage unavailable). Try again in a minute.")
	}
	e.SetCookie(c.cookie(SessionCookie, id, "/", int(SessionTTL.Seconds()), http.SameSiteLaxMode))
	e.SetCookie(c.cookie(signInCookie, "", "/console/sign-in", -1, http.SameSiteStrictMode))
	c.Log.Info().Str("admin", ad.Name).Str("role", ad.Role()).Str("client", e.RealIP()).Msg("console: signed in")
	next := safeNext(e.FormValue("next"))
	if next == "" {
		next = c.home(ad)
	}
	return e.Redirect(http.StatusSeeOther, next)
}

func (c *Console) signOut(e echo.Context) error {
	if id, _ := e.Get(ctxSessionID).(string); id != "" {
		_ = c.Redis.Del(e.Request().Context(), c.sessionKey(id)).Err()
	}
	e.SetCookie(c.cookie(SessionCookie, "", "/", -1, http.SameSiteLaxMode))
	return e.Redirect(http.StatusSeeOther, "/console/sign-in")
}

// requireSession lets signed-in admins through (with their session's CSRF token
// checked on every state-changing request) and sends others to sign in.
func (c *Console) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(e echo.Context) error {
		id, s, ad := c.current(e)
		if ad == nil {
			if e.Request().Method == http.MethodGet {
				return e.Redirect(http.StatusSeeOther, "/console/sign-in?next="+url.QueryEscape(e.Request().URL.RequestURI()))
			}
			return c.fail(e, http.StatusUnauthorized, "Your session has ended. Sign in again.")
		}
		if !safeMethod(e.Request().Method) {
			got := e.Request().Header.Get("X-CSRF-Token")
			if got == "" {
				got = e.FormValue(CSRFField)
			}
			if !equal(got, s.CSRF) {
				c.Log.Warn().Str("admin", ad.Name).Str("path", e.Request().URL.Path).Msg("console: form post without a valid CSRF token refused")
				return c.fail(e, http.StatusForbidden, "This form did not come from your console session (its security token is missing or wrong), so nothing was changed. Reload the page and try again.")
			}
		}
		admin.WithAdmin(e, ad)
		e.Set(ctxSession, s)
		e.Set(ctxSessionID, id)
		return next(e)
	}
}

const (
	ctxSession   = "console.session"
	ctxSessionID = "console.session_id"
)

// setFlash keeps a message for the next page of this session.
func (c *Console) setFlash(e echo.Context, f flash) {
	s, _ := e.Get(ctxSession).(*session)
	id, _ := e.Get(ctxSessionID).(string)
	if s == nil {
		return
	}
	s.Flash = &f
	if err := c.saveSession(e.Request().Context(), id, s); err != nil {
		c.Log.Warn().Err(err).Msg("console: flash not kept")
	}
}

// takeFlash returns and clears the session's message.
func (c *Console) takeFlash(e echo.Context) *flash {
	s, _ := e.Get(ctxSession).(*session)
	id, _ := e.Get(ctxSessionID).(string)
	if s == nil || s.Flash == nil {
		return nil
	}
	f := s.Flash
	s.Flash = nil
	_ = c.saveSession(e.Request().Context(), id, s)
	return f
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/console/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") {
		return next
	}
	return ""
}
