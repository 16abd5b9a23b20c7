// Package recording serves durable call-recording links. MyOperator gives a call's
// recording as a file name whose download link expires after 24 h; a link pasted
// into a CRM would die the next day. calltrack writes its own link instead,
//
//	GET /recordings/{tenant}/{call_id}?file=<file name>&sig=<HMAC>
//
// signed with a process secret so it cannot be guessed or altered, and on each click
// exchanges the file name for a fresh MyOperator link (with the tenant's API token)
// and redirects there. The link carries everything it needs, so it works as long as
// the signing key and MyOperator keep the recording: no state to expire.
package recording

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

// MinKeyLength is the shortest signing key accepted (CALLTRACK_RECORDING_SIGNING_KEY).
const MinKeyLength = 16

// Signer makes and checks the links. The zero value signs nothing.
type Signer struct {
	BaseURL string        // calltrack's public base URL (CALLTRACK_PUBLIC_URL), no trailing slash
	Key     tenant.Secret // CALLTRACK_RECORDING_SIGNING_KEY
}

// Enabled reports whether links can be made: a base URL and a long enough key.
func (s Signer) Enabled() bool {
	return s.BaseURL != "" && len(s.Key.Reveal()) >= MinKeyLength
}

// Sign returns the signature of one call's recording file: base64url HMAC-SHA256 over
// the tenant, call id and file name (each length-prefixed, so fields cannot shift).
func (s Signer) Sign(tenantID, callID, file string) string {
	m := hmac.New(sha256.New, []byte(s.Key.Reveal()))
	for _, f := range []string{"calltrack recording v1", tenantID, callID, file} {
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
		m.Write([]byte(f))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks sig in constant time.
func (s Signer) Verify(tenantID, callID, file, sig string) bool {
	if len(s.Key.Reveal()) < MinKeyLength || sig == "" {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(s.Sign(tenantID, callID, file)))
}

// URL is the durable link of a call's recording file.
func (s Signer) URL(tenantID, callID, file string) string {
	q := url.Values{"file": {file}, "sig": {s.Sign(tenantID, callID, file)}}
	return strings.TrimRight(s.BaseURL, "/") + "/recordings/" + url.PathEscape(tenantID) + "/" + url.PathEscape(callID) + "?" + q.Encode()
}

// Link is the writer's RecordingLinker: the durable link when the recording has a
// file name and links can be signed, else MyOperator's own URL.
func (s Signer) Link(tenantID, callID string, rec call.Recording) string {
	if rec.FileName == "" || !s.Enabled() {
		return rec.URL
	}
	return s.URL(tenantID, callID, rec.FileName)
}

// Exchanger turns a recording file name into a fresh download link (moapi.Client).
type Exchanger interface {
	RecordingLink(ctx context.Context, file string) (moapi.Link, error)
}

// Handler serves GET /recordings/{tenant}/{call_id}.
type Handler struct {
	Signer  Signer
	Tenants *tenant.Registry
	// Exchanger returns the tenant's MyOperator API client; default moapi.New with
	// the tenant's MyOperatorAPI and MyOperatorKey.
	Exchanger func(t *tenant.Tenant) Exchanger
	Log       zerolog.Logger
}

// Register mounts the route (GET, and HEAD for link checkers).
func (h *Handler) Register(e *echo.Echo) {
	e.GET("/recordings/:tenant/:call", h.redirect)
	e.HEAD("/recordings/:tenant/:call", h.redirect)
}

func (h *Handler) exchanger(t *tenant.Tenant) Exchanger {
	if h.Exchanger != nil {
		return h.Exchanger(t)
	}
	return moapi.New(t.MyOperatorAPI, t.MyOperatorKey.Reveal())
}

func (h *Handler) redirect(c echo.Context) error {
	tenantID, callID := param(c, "tenant"), param(c, "call")
	file, sig := c.QueryParam("file"), c.QueryParam("sig")
	// One answer for every bad link: a wrong signature, a changed call or file, a
	// link of another deployment.
	if !h.Signer.Verify(tenantID, callID, file, sig) {
		return web.Errorf(http.StatusForbidden, "forbidden", "missing or wrong recording link signature")
	}
	log := h.Log.With().Str("tenant", tenantID).Str("call_id", callID).Logger()
	t, ok := h.Tenants.Get(tenantID)
	if !ok {
		return web.Errorf(http.StatusNotFound, "unknown_tenant", "the tenant of this recording is no longer served")
	}
	if t.MyOperatorKey.Reveal() == "" {
		log.Warn().Msg("recording link clicked but the tenant has no MyOperator API token")
		return web.Errorf(http.StatusServiceUnavailable, "recording_unavailable", "recordings are not set up for this tenant")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 15*time.Second)
	defer cancel()
	link, err := h.exchanger(t).RecordingLink(ctx, file)
	switch {
	case errors.Is(err, moapi.ErrRecordingNotFound):
		log.Info().Msg("MyOperator has no such recording")
		return web.Errorf(http.StatusNotFound, "recording_not_found", "MyOperator has no recording for this call")
	case err != nil:
		log.Warn().Err(err).Msg("recording link exchange failed")
		return web.Errorf(http.StatusBadGateway, "recording_unavailable", "MyOperator did not give a link for the recording; try again")
	}
	// The fresh link expires: never let a browser or proxy keep the redirect.
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	return c.Redirect(http.StatusFound, link.URL)
}

// param returns a path parameter, unescaped (the router may hand it over raw).
func param(c echo.Context, name string) string {
	v := c.Param(name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}
