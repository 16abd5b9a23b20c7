package recording

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

// Exchanger is what a click needs of the tenant's MyOperator account (moapi.Client):
// a fresh link for a file name, and the call-log search to find a call's file name
// again.
type Exchanger interface {
	RecordingLink(ctx context.Context, file string) (moapi.Link, error)
	Search(ctx context.Context, q moapi.SearchQuery) (moapi.SearchPage, error)
}

// Outcomes of a click (calltrack_recording_link_requests_total).
const (
	OutcomeCached    = "redirected_cached" // a cached fresh link: MyOperator not asked
	OutcomeFresh     = "redirected_fresh"  // MyOperator gave a fresh link
	OutcomeHead      = "head"              // HEAD: the link is valid; MyOperator not asked
	OutcomeForbidden = "forbidden"
	OutcomeExpired   = "expired"
	OutcomeNotFound  = "not_found"
	OutcomeFailed    = "failed"
)

// Handler serves the recording links.
type Handler struct {
	Signer  Signer
	Tenants *tenant.Registry
	Store   *Store
	// MyOperator returns the tenant's MyOperator client (whose requests wait on the
	// account's shared limiter); default moapi.New.
	MyOperator func(t *tenant.Tenant) Exchanger
	// AllowHTTPLoopback lets redirects go to plain http on a loopback host:
	// `calltrack dev`'s sandbox (CALLTRACK_RECORDING_ALLOW_HTTP_LOOPBACK). Otherwise only
	// https links are followed.
	AllowHTTPLoopback bool
	Outcomes          *prometheus.CounterVec // tenant, outcome; optional
	Log               zerolog.Logger
	Now               func() time.Time

	flight singleflight.Group
}

// Register mounts the routes: the short links and the earlier long form, GET and HEAD.
func (h *Handler) Register(e *echo.Echo) {
	e.GET(web.SignedLinks+":tenant/:call/:token", h.short)
	e.HEAD(web.SignedLinks+":tenant/:call/:token", h.short)
	e.GET("/recordings/:tenant/:call", h.legacy)
	e.HEAD("/recordings/:tenant/:call", h.legacy)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) count(tenantID, outcome string) {
	if h.Outcomes != nil {
		if _, ok := h.Tenants.Get(tenantID); !ok {
			tenantID = "unknown"
		}
		h.Outcomes.WithLabelValues(tenantID, outcome).Inc()
	}
}

// One answer for every bad link: a wrong signature, a changed call, a link of another
// deployment or signed with a key no longer configured.
var errForbidden = web.Errorf(http.StatusForbidden, "forbidden", "missing or wrong recording link signature")

func (h *Handler) short(c echo.Context) error {
	tenantID, callID := param(c, "tenant"), param(c, "call")
	expires, ok := h.Signer.VerifyURL(tenantID, callID, c.Param("token"))
	if !ok {
		h.count(tenantID, OutcomeForbidden)
		return errForbidden
	}
	if !expires.IsZero() && h.now().After(expires) {
		h.count(tenantID, OutcomeExpired)
		return web.Errorf(http.StatusGone, "link_expired", "this recording link expired on "+expires.UTC().Format(time.RFC3339))
	}
	return h.serve(c, tenantID, callID, "")
}

func (h *Handler) legacy(c echo.Context) error {
	tenantID, callID := param(c, "tenant"), param(c, "call")
	file := c.QueryParam("file")
	if !h.Signer.VerifyLegacy(tenantID, callID, file, c.QueryParam("sig")) {
		h.count(tenantID, OutcomeForbidden)
		return errForbidden
	}
	return h.serve(c, tenantID, callID, file)
}

// serve answers a verified link: HEAD at once, GET with a redirect to a fresh link.
func (h *Handler) serve(c echo.Context, tenantID, callID, file string) error {
	log := h.Log.With().Str("tenant", tenantID).Str("call_id", callID).Logger()
	t, ok := h.Tenants.Get(tenantID)
	if !ok {
		h.count(tenantID, OutcomeNotFound)
		return web.Errorf(http.StatusNotFound, "unknown_tenant", "the tenant of this recording is no longer served")
	}
	// The redirect target expires: never let a browser or proxy keep the answer.
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	if c.Request().Method == http.MethodHead {
		// Link checkers (CRMs, mail scanners) HEAD every link: the link is valid, and
		// MyOperator's per-account limit is not spent on them.
		h.count(tenantID, OutcomeHead)
		return c.NoContent(http.StatusOK)
	}
	if t.MyOperatorKey.Reveal() == "" {
		log.Warn().Msg("recording link clicked but the tenant has no MyOperator API token")
		h.count(tenantID, OutcomeFailed)
		return web.Errorf(http.StatusServiceUnavailable, "recording_unavailable", "recordings are not set up for this tenant")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 15*time.Second)
	defer cancel()
	ex := h.exchanger(t)
	if file == "" {
		var err error
		if file, err = h.file(ctx, ex, t.ID, callID); err != nil {
			return h.fail(c, tenantID, err, log)
		}
	}
	link, cached, err := h.link(ctx, ex, t.ID, file)
	if err != nil {
		return h.fail(c, tenantID, err, log)
	}
	if cached {
		h.count(tenantID, OutcomeCached)
	} else {
		h.count(tenantID, OutcomeFresh)
	}
	return c.Redirect(http.StatusFound, link)
}

func (h *Handler) exchanger(t *tenant.Tenant) Exchanger {
	if h.MyOperator != nil {
		return h.MyOperator(t)
	}
	return moapi.New(t.MyOperatorAPI, t.MyOperatorKey.Reveal())
}

// Errors of a click, mapped by fail.
var (
	errNoFile   = errors.New("recording: no recording known for the call")
	errInsecure = errors.New("recording: MyOperator gave a link that is not https")
)

// file is the call's recording file name: kept when the link was made, else found in
// MyOperator's call log (and kept again).
func (h *Handler) file(ctx context.Context, ex Exchanger, tenantID, callID string) (string, error) {
	if h.Store != nil {
		f, err := h.Store.File(ctx, tenantID, callID)
		if err != nil {
			h.Log.Warn().Err(err).Msg("recording file name not read; asking MyOperator's call log")
		} else if f != "" {
			return f, nil
		}
	}
	f, err := findFile(ctx, ex, tenantID, callID, h.now())
	if err != nil {
		return "", err
	}
	if h.Store != nil {
		_ = h.Store.PutFile(ctx, tenantID, callID, f, FileTTL)
	}
	return f, nil
}

// uidEpoch reads the Unix time MyOperator's call ids carry ("n2.1596270949.2175190").
var uidEpoch = regexp.MustCompile(`^[A-Za-z0-9]+\.(\d{9,10})\.`)

// findPages bounds the search for a lost file name.
const findPages = 3

// findFile looks a call up in MyOperator's call log around the time its id names.
func findFile(ctx context.Context, ex Exchanger, tenantID, callID string, now time.Time) (string, error) {
	m := uidEpoch.FindStringSubmatch(callID)
	if m == nil {
		return "", errNoFile
	}
	sec, _ := strconv.ParseInt(m[1], 10, 64)
	at := time.Unix(sec, 0)
	q := moapi.SearchQuery{From: at.Add(-time.Hour), To: at.Add(6 * time.Hour), SearchKey: callID, PageSize: moapi.MaxPageSize}
	for range findPages {
		page, err := ex.Search(ctx, q)
		if err != nil {
			return "", err
		}
		for _, hit := range page.Hits {
			l, err := myoperator.ParseSearchHit(tenantID, hit, now)
			if err == nil && l.CallID == callID && !l.Recording.Empty() && l.Recording.FileName != "" {
				return l.Recording.FileName, nil
			}
		}
		q.Offset += len(page.Hits)
		if len(page.Hits) == 0 || q.Offset >= page.Total {
			break
		}
	}
	return "", errNoFile
}

// link returns a fresh MyOperator link of the file: cached when one is, else asked for
// once per process however many clicks wait for it, and cached for the replicas.
func (h *Handler) link(ctx context.Context, ex Exchanger, tenantID, file string) (string, bool, error) {
	if h.Store != nil {
		if l, err := h.Store.Link(ctx, tenantID, file); err == nil && l != "" && h.followable(l) {
			return l, true, nil
		}
	}
	v, err, _ := h.flight.Do(tenantID+"\x00"+file, func() (any, error) {
		l, err := ex.RecordingLink(ctx, file)
		if err != nil {
			return "", err
		}
		if !h.followable(l.URL) {
			return "", errInsecure
		}
		if h.Store != nil {
			if err := h.Store.PutLink(context.WithoutCancel(ctx), tenantID, file, l.URL, cacheFor(l.ExpiresAt, h.now())); err != nil {
				h.Log.Warn().Err(err).Msg("fresh recording link not cached")
			}
		}
		return l.URL, nil
	})
	if err != nil {
		return "", false, err
	}
	return v.(string), false, nil
}

// followable reports whether calltrack redirects to link: https, or plain http to a
// loopback host when AllowHTTPLoopback (the dev sandbox).
func (h *Handler) followable(link string) bool {
	u, err := url.Parse(link)
	if err != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		if !h.AllowHTTPLoopback {
			return false
		}
		host := u.Hostname()
		ip := net.ParseIP(host)
		return host == "localhost" || (ip != nil && ip.IsLoopback())
	}
	return false
}

// fail answers a click that did not get a link.
func (h *Handler) fail(c echo.Context, tenantID string, err error, log zerolog.Logger) error {
	if d, limited := moapi.IsRateLimited(err); limited {
		h.count(tenantID, OutcomeFailed)
		log.Warn().Dur("retry_after", d).Msg("MyOperator rate-limits the account; recording link not exchanged")
		web.RetryAfter(c, d)
		return web.Errorf(http.StatusServiceUnavailable, "rate_limited", "MyOperator asks to wait before more requests; try again shortly")
	}
	switch {
	case errors.Is(err, errNoFile), errors.Is(err, moapi.ErrRecordingNotFound):
		h.count(tenantID, OutcomeNotFound)
		log.Info().Err(err).Msg("no recording for the call")
		return web.Errorf(http.StatusNotFound, "recording_not_found", "MyOperator has no recording for this call")
	case errors.Is(err, errInsecure):
		h.count(tenantID, OutcomeFailed)
		log.Error().Msg("MyOperator gave a recording link that is not https; not followed")
		return web.Errorf(http.StatusBadGateway, "insecure_link", "MyOperator gave a link that is not https; it is not followed")
	case errors.Is(err, context.DeadlineExceeded):
		h.count(tenantID, OutcomeFailed)
		web.RetryAfter(c, 10*time.Second)
		return web.Errorf(http.StatusServiceUnavailable, "busy", "MyOperator's requests for this account are queued; try again shortly")
	}
	h.count(tenantID, OutcomeFailed)
	log.Warn().Err(err).Msg("recording link exchange failed")
	return web.Errorf(http.StatusBadGateway, "recording_unavailable", "MyOperator did not give a link for the recording; try again")
}

// param returns a path parameter, unescaped (the router may hand it over raw).
func param(c echo.Context, name string) string {
	v := c.Param(name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// NewOutcomes registers calltrack_recording_link_requests_total on reg.
func NewOutcomes(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calltrack_recording_link_requests_total",
		Help: "Clicks on calltrack's recording links, by tenant and outcome (redirected_cached, redirected_fresh, head, forbidden, expired, not_found, failed).",
	}, []string{"tenant", "outcome"})
	reg.MustRegister(c)
	return c
}
