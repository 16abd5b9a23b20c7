// Package clicktocall places calls for CRM users: a user clicks a number in the CRM,
// calltrack finds the MyOperator agent mapped to that user (the reverse of the
// agent → CRM user mapping) and asks MyOperator's outbound API to ring the agent and
// then the customer. The call then comes back through MyOperator's webhooks as an
// outgoing call of that agent and is logged once, owned by the user who clicked, as
// every other call. Two ways in: calltrack's API (POST /api/v1/tenants/{t}/calls,
// http.go) and Zoho PhoneBridge's click-to-dial callback (zoho.go).
package clicktocall

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/phone"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

// Agents finds the MyOperator agents mapped to a CRM user (*mapping.Store).
type Agents interface {
	ByCRMUser(ctx context.Context, tenant, crmUserID string) ([]call.Mapping, error)
}

// Dialer asks a tenant's MyOperator account to place a call; it returns MyOperator's
// unique_id (moapi.OBD per tenant).
type Dialer interface {
	Place(ctx context.Context, t *tenant.Tenant, d moapi.Dial) (string, error)
}

// Limiter spends one request of a per-minute budget; it returns 0 when allowed, else
// how long until the next one is (RedisLimiter).
type Limiter interface {
	Allow(ctx context.Context, key string, perMinute int) (time.Duration, error)
}

// Error codes, each with the HTTP status the API answers.
const (
	CodeInvalidRequest   = "invalid_request"              // 400: body or fields missing/malformed
	CodeInvalidNumber    = "invalid_number"               // 400: not a phone number, or too short/long for its country code
	CodeInvalidCRMUserID = "invalid_crm_user_id"          // 400: crm_user_id is not of the form of the tenant's CRM's user ids
	CodeNotConfigured    = "click_to_call_not_configured" // 409: the tenant has no click_to_call settings
	CodeUnmappedUser     = "unmapped_user"                // 422: no MyOperator agent is mapped to the CRM user
	CodeAgentDisabled    = "agent_disabled"               // 409: the agent's mapping is suspended
	CodeMappingPending   = "mapping_pending"              // 409: the agent's mapping awaits an admin's approval
	CodeAmbiguous        = "ambiguous_mapping"            // 409: several active agents are mapped to the CRM user
	CodeRateLimited      = "rate_limited"                 // 429: the user's per-minute budget is spent
	CodeRefused          = "myoperator_refused"           // 409: MyOperator refused the request (its details said)
	CodeUnavailable      = "myoperator_unavailable"       // 502/503: MyOperator (or calltrack's Redis) did not answer
)

// Error is a request that placed no call: Code and Status say why, Message in words a
// CRM user or admin can act on (no secret, no full phone number).
type Error struct {
	Code       string
	Status     int
	Message    string
	RetryAfter time.Duration // with rate_limited and some myoperator_unavailable
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func fail(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// Request is one click.
type Request struct {
	Tenant    *tenant.Tenant
	CRMUserID string // who clicked
	Number    string // what they clicked, as the CRM has it
	Via       string // ViaAPI, ViaZoho (metrics and logs)
}

// Placed is a call MyOperator accepted to place.
type Placed struct {
	ReferenceID string `json:"reference_id"` // calltrack's; sent to MyOperator as reference_id
	AgentID     string `json:"myoperator_user_id"`
	AgentPhone  string `json:"-"`      // the agent's first known phone (Zoho's clicktodialerror wants it)
	Number      string `json:"number"` // the customer, E.164
	UniqueID    string `json:"myoperator_unique_id,omitempty"`
}

// Service places calls. Build it once at start-up.
type Service struct {
	Agents   Agents
	Dialer   Dialer
	Limiter  Limiter
	Log      zerolog.Logger
	Outcomes *prometheus.CounterVec // tenant, via, outcome (calltrack_click_to_call_requests_total); optional
	// NewReference makes reference ids; default "c2c-" + 16 random hex digits.
	NewReference func() string
}

// Outcome "placed" counts accepted requests; the rest are the codes of the errors
// answered, those of requests refused before Place too (Refused).
const OutcomePlaced = "placed"

// The ways in (Request.Via, the metric's via).
const (
	ViaAPI  = "api"  // POST /api/v1/tenants/{t}/calls
	ViaZoho = "zoho" // Zoho PhoneBridge's click-to-dial callback
)

// NewOutcomes registers calltrack_click_to_call_requests_total.
func NewOutcomes(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calltrack_click_to_call_requests_total",
		Help: "Click-to-call requests by tenant, way in (api, zoho) and outcome (placed, or the error code answered: unauthorized, invalid_request, ...).",
	}, []string{"tenant", "via", "outcome"})
	reg.MustRegister(c)
	return c
}

// Place checks the request, picks the agent and asks MyOperator to call. Errors are
// *Error.
func (s *Service) Place(ctx context.Context, r Request) (Placed, error) {
	p, err := s.place(ctx, r)
	s.count(r.Tenant, r.Via, err)
	log := s.Log.With().Str("tenant", tenantID(r.Tenant)).Str("via", r.Via).Str("crm_user_id", r.CRMUserID).
		Str("number", phone.Mask(r.Number)).Logger()
	if err != nil {
		log.Info().Err(err).Msg("click-to-call refused")
		return p, err
	}
	log.Info().Str("reference_id", p.ReferenceID).Str("agent", p.AgentID).Msg("click-to-call placed")
	return p, nil
}

// Refused counts a request refused before Place ran (a wrong token, a bad body, a
// Zoho user not mapped), under the code it is answered with, and returns err, a
// *web.Error or an *Error. t is nil for a tenant name no tenant has.
func (s *Service) Refused(t *tenant.Tenant, via string, err error) error {
	s.count(t, via, err)
	return err
}

// count adds a request to Outcomes: OutcomePlaced for no error, else its code. A
// tenant name no tenant has is counted as "unknown", so that guessed names add no series.
func (s *Service) count(t *tenant.Tenant, via string, err error) {
	if s.Outcomes == nil {
		return
	}
	outcome := OutcomePlaced
	var e *Error
	var we *web.Error
	switch {
	case errors.As(err, &e):
		outcome = e.Code
	case errors.As(err, &we):
		outcome = we.Code
	case err != nil:
		outcome = CodeUnavailable // not expected: every refusal has a code
	}
	label := "unknown"
	if t != nil {
		label = t.ID
	}
	s.Outcomes.WithLabelValues(label, via, outcome).Inc()
}

func tenantID(t *tenant.Tenant) string {
	if t == nil {
		return ""
	}
	return t.ID
}

func (s *Service) place(ctx context.Context, r Request) (Placed, error) {
	t := r.Tenant
	if !t.ClickToCall.Enabled() {
		return Placed{}, fail(CodeNotConfigured, http.StatusConflict, "click-to-call is not configured for tenant %s (click_to_call in the tenants file)", t.ID)
	}
	user := r.CRMUserID
	if strings.TrimSpace(user) == "" {
		return Placed{}, fail(CodeInvalidRequest, http.StatusBadRequest, "crm_user_id is required")
	}
	// Checked as sent, not trimmed or read as a number: " 7" or "1e3" is no user id, and
	// answering it 422 unmapped_user would send the caller looking for a mapping.
	if err := call.ValidateCRMUserID(t.CRM.Kind, user); err != nil {
		return Placed{}, fail(CodeInvalidCRMUserID, http.StatusBadRequest, "%v", err)
	}
	number := phone.E164(r.Number, t.DefaultCountry)
	if strings.TrimSpace(r.Number) == "" {
		return Placed{}, fail(CodeInvalidRequest, http.StatusBadRequest, "number is required")
	}
	if number == "" {
		return Placed{}, fail(CodeInvalidNumber, http.StatusBadRequest, "number %s is not a phone number (E.164, e.g. +919711636496, or a national number)", phone.Mask(r.Number))
	}
	// Checked here, not left to MyOperator: it refuses such a number, and its refusal
	// (409 myoperator_refused) would not say the number was at fault.
	if err := phone.Possible(number); err != nil {
		return Placed{}, fail(CodeInvalidNumber, http.StatusBadRequest, "number %s cannot be dialled: %v", phone.Mask(r.Number), err)
	}
	// The budget is spent before the mapping is read: a client probing for mapped
	// users pays for each try.
	if s.Limiter != nil {
		wait, err := s.Limiter.Allow(ctx, t.ID+":"+user, t.ClickToCall.PerUserPerMinute)
		if err != nil {
			return Placed{}, &Error{Code: CodeUnavailable, Status: http.StatusServiceUnavailable, Message: "rate limiter unavailable; try again", Err: err}
		}
		if wait > 0 {
			// Whole seconds, up: the message and the Retry-After header say the same wait.
			wait = (wait + time.Second - 1).Truncate(time.Second)
			e := fail(CodeRateLimited, http.StatusTooManyRequests, "at most %d click-to-call requests a minute per user; try again in %s",
				t.ClickToCall.PerUserPerMinute, wait)
			e.RetryAfter = wait
			return Placed{}, e
		}
	}
	agent, err := s.agent(ctx, t.ID, user)
	if err != nil {
		return Placed{}, err
	}
	ref := s.reference()
	p := Placed{ReferenceID: ref, AgentID: agent.MyOperatorUserID, Number: number}
	if len(agent.Phones) > 0 {
		p.AgentPhone = agent.Phones[0]
	}
	p.UniqueID, err = s.Dialer.Place(ctx, t, moapi.Dial{UserID: agent.MyOperatorUserID, Number: number, ReferenceID: ref})
	if err != nil {
		return p, dialError(err)
	}
	return p, nil
}

// agent picks the one active agent mapped to the CRM user.
func (s *Service) agent(ctx context.Context, tenantID, user string) (call.Mapping, error) {
	ms, err := s.Agents.ByCRMUser(ctx, tenantID, user)
	if err != nil {
		return call.Mapping{}, &Error{Code: CodeUnavailable, Status: http.StatusServiceUnavailable, Message: "agent mappings unavailable; try again", Err: err}
	}
	var active []call.Mapping
	var pending, suspended bool
	for _, m := range ms {
		switch m.Status {
		case call.MappingActive:
			active = append(active, m)
		case call.MappingPending:
			pending = true
		case call.MappingSuspended:
			suspended = true
		}
	}
	switch {
	case len(active) == 1:
		return active[0], nil
	case len(active) > 1:
		ids := make([]string, 0, len(active))
		for _, m := range active {
			ids = append(ids, m.MyOperatorUserID)
		}
		slices.Sort(ids)
		// Ringing the wrong phone is worse than none: an admin keeps one mapping.
		return call.Mapping{}, fail(CodeAmbiguous, http.StatusConflict, "CRM user %s is mapped to several MyOperator agents (%s); keep one mapping", user, strings.Join(ids, ", "))
	case suspended:
		return call.Mapping{}, fail(CodeAgentDisabled, http.StatusConflict, "the MyOperator agent of CRM user %s is disabled (its mapping is suspended)", user)
	case pending:
		return call.Mapping{}, fail(CodeMappingPending, http.StatusConflict, "the mapping of CRM user %s to a MyOperator agent awaits an admin's approval", user)
	}
	return call.Mapping{}, fail(CodeUnmappedUser, http.StatusUnprocessableEntity, "no MyOperator agent is mapped to CRM user %s", user)
}

// dialError turns MyOperator's answer into an Error: a refusal (4xx, or status error)
// is the request's fault or the account's setup, and MyOperator's details say which;
// anything else is MyOperator not answering.
func dialError(err error) error {
	var me *moapi.Error
	if errors.As(err, &me) {
		switch {
		case me.Status == http.StatusTooManyRequests:
			e := &Error{Code: CodeUnavailable, Status: http.StatusServiceUnavailable, Message: "MyOperator is rate limiting the account; try again", Err: err}
			e.RetryAfter = me.RetryAfter
			return e
		case me.Permanent:
			msg := me.Message
			if msg == "" {
				msg = "no reason given"
			}
			return &Error{Code: CodeRefused, Status: http.StatusConflict, Message: "MyOperator refused the call: " + msg, Err: err}
		}
	}
	return &Error{Code: CodeUnavailable, Status: http.StatusBadGateway, Message: "MyOperator did not accept the call request; try again", Err: err}
}

func (s *Service) reference() string {
	if s.NewReference != nil {
		return s.NewReference()
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "c2c-" + hex.EncodeToString(b)
}

// OBDDialer places calls through each tenant's MyOperator outbound API.
type OBDDialer struct {
	HTTP *http.Client // optional
}

// Place implements Dialer.
func (d OBDDialer) Place(ctx context.Context, t *tenant.Tenant, dial moapi.Dial) (string, error) {
	c := t.ClickToCall
	o := &moapi.OBD{URL: c.OBDURL, APIKey: c.APIKey.Reveal(), SecretToken: c.SecretToken.Reveal(), CompanyID: t.CompanyID,
		PublicIVRID: c.PublicIVRID, CallerID: c.CallerID, MaxCallDuration: c.MaxCallDuration, HTTP: d.HTTP}
	return o.Place(ctx, dial)
}
