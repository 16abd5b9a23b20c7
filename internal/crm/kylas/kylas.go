// Package kylas writes calltrack's call logs to Kylas CRM as call-log records
// related to the lead/contact who called.
//
// Two routes, chosen by how the tenant authenticates (Config.Route): with a
// marketplace app's OAuth token, POST /v1/call-logs/sync, whose body names the owner
// (ownerId) and carries our call id (remoteId) — records are owned by the mapped
// user; with an api-key alone, POST /v1/call-logs, which has no owner field: Kylas
// owns every record by the key's user (the limitation config validation states;
// unconfirmed, no public source found — the stricter reading of a body with no owner
// field, docs/crm-contracts.md).
package kylas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/phone"
)

// DefaultBaseURL is the Kylas API root (paths below it start with /v1).
const DefaultBaseURL = "https://api.kylas.io"

// Limiter paces requests; the writer passes the per-key limiter shared by all
// replicas so that every HTTP request the adapter makes (searches included) is paced.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Routes of a call-log create.
const (
	RouteSync  = "sync"  // POST /v1/call-logs/sync: ownerId + remoteId; needs BearerToken
	RoutePlain = "plain" // POST /v1/call-logs: owned by the api-key's user
)

// Config of one tenant's Kylas connection.
type Config struct {
	// BaseURL is the API root without /v1: https://api.kylas.io, or in dev
	// http://127.0.0.1:8080/sandbox/kylas. A trailing /v1 is tolerated.
	BaseURL     string
	APIKey      string // sent as api-key
	BearerToken string // OAuth token of a marketplace app (Authorization: Bearer): the sync route
	HTTPClient  *http.Client
	// DefaultCountry is the calling code ("91") for numbers stored without one.
	DefaultCountry string
	Limiter        Limiter // optional; waited on before every request
	// SearchSettle is how long after a write Kylas's search is trusted to show it
	// (FindCall, and a lead whose create had an unknown outcome); default
	// crm.DefaultSearchSettle.
	SearchSettle time.Duration
	// Parties caches number → lead/contact lookups and lead-creation claims, shared
	// by replicas (partycache.Redis); default in-process.
	Parties crm.PartyCache
	Leads   crm.LeadPolicy // what to do for a caller who matches no lead or contact
}

// Route is the create route: sync with an OAuth token, else plain.
func (c Config) Route() string {
	if strings.TrimSpace(c.BearerToken) != "" {
		return RouteSync
	}
	return RoutePlain
}

// String hides the secrets so a Config can be logged.
func (c Config) String() string {
	return fmt.Sprintf("kylas.Config{BaseURL: %q, APIKey: %s, BearerToken: %s, DefaultCountry: %q}",
		c.BaseURL, redact(c.APIKey), redact(c.BearerToken), c.DefaultCountry)
}

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

// withDefaults fills the optional fields.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimSuffix(strings.TrimRight(c.BaseURL, "/"), "/v1")
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if c.DefaultCountry == "" {
		c.DefaultCountry = phone.DefaultCountryCode
	}
	if c.SearchSettle <= 0 {
		c.SearchSettle = crm.DefaultSearchSettle
	}
	return c
}

// Validate names the first bad field (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("kylas: BaseURL %q is not an http(s) URL", c.BaseURL)
	case strings.TrimSpace(c.APIKey) == "":
		return errors.New("kylas: APIKey is empty")
	case strings.Trim(c.DefaultCountry, "+0123456789") != "":
		return fmt.Errorf("kylas: DefaultCountry %q is not a calling code like 91", c.DefaultCountry)
	}
	return nil
}

// Adapter implements crm.Adapter for Kylas. It is safe for concurrent use.
type Adapter struct {
	cfg        Config
	parties    *crm.Parties
	taskFields taskFieldsCache // task.go
}

var _ crm.Adapter = (*Adapter)(nil)

// New returns an adapter for cfg.
func New(cfg Config) (*Adapter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Parties == nil {
		cfg.Parties = &crm.MemoryPartyCache{}
	}
	return &Adapter{cfg: cfg, parties: &crm.Parties{Cache: cfg.Parties, Policy: cfg.Leads, Settle: cfg.SearchSettle}}, nil
}

// CreateCall writes the call as a call log and returns the Kylas record id: owned by
// c.OwnerID on the sync route, by the api-key's user on the plain route. A call log
// refused because its relatedTo names a lead or contact Kylas no longer has is
// written once more with the caller resolved again (crm.RetryIfGone).
func (a *Adapter) CreateCall(ctx context.Context, c crm.Call) (string, error) {
	const op = "kylas: create call log"
	return crm.RetryIfGone(ctx, a.parties, func(ctx context.Context) (string, *crm.Used, error) {
		body, err := a.callLog(ctx, op, c)
		if err != nil {
			return "", nil, err
		}
		id, err := a.create(ctx, op, body)
		return id, body.used(), err
	})
}

func (a *Adapter) create(ctx context.Context, op string, body *callLogBody) (string, error) {
	var rec struct {
		ID json.RawMessage `json:"id"`
	}
	path := "/v1/call-logs/sync"
	if a.cfg.Route() == RoutePlain {
		path = "/v1/call-logs"
	}
	if err := a.do(ctx, op, http.MethodPost, path, body, &rec); err != nil {
		return "", err
	}
	id := strings.Trim(string(rec.ID), `"`)
	if id == "" || id == "null" {
		// The record may exist: its fate is for FindCall to settle, not a second create.
		return "", &crm.Error{Op: op, Status: http.StatusCreated, Message: "response has no record id", Unknown: true}
	}
	return id, nil
}

// UpdateCall replaces record recordID with the call's full body (PUT replaces the
// whole record, so relatedTo and notes are sent again — and a relatedTo Kylas no
// longer has is resolved again, as for CreateCall).
func (a *Adapter) UpdateCall(ctx context.Context, recordID string, c crm.Call) error {
	const op = "kylas: update call log"
	if _, err := strconv.ParseInt(recordID, 10, 64); err != nil {
		return &crm.Error{Op: op, Message: fmt.Sprintf("record id %q is not a Kylas id", recordID), Permanent: true}
	}
	_, err := crm.RetryIfGone(ctx, a.parties, func(ctx context.Context) (struct{}, *crm.Used, error) {
		body, err := a.callLog(ctx, op, c)
		if err != nil {
			return struct{}{}, nil, err
		}
		return struct{}{}, body.used(), a.do(ctx, op, http.MethodPut, "/v1/call-logs/"+recordID, body, nil)
	})
	return err
}

// do sends one JSON request (in may be nil: no body) and decodes a 2xx answer into
// out (when non-nil). Every request waits on the credential's shared rate limiter.
func (a *Adapter) do(ctx context.Context, op, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return &crm.Error{Op: op, Message: "encoding request", Err: err, Permanent: true}
		}
		body = bytes.NewReader(b)
	}
	if a.cfg.Limiter != nil {
		if err := a.cfg.Limiter.Wait(ctx); err != nil {
			return &crm.Error{Op: op, Message: "rate limiter", Err: err}
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, a.cfg.BaseURL+path, body)
	if err != nil {
		return &crm.Error{Op: op, Err: err, Permanent: true}
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "calltrack")
	req.Header.Set("api-key", a.cfg.APIKey)
	if a.cfg.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+a.cfg.BearerToken)
	}
	crm.CountRequest(ctx, 1)
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return crm.TransportError(op, err) // transport error or ctx: worth retrying
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		code, msg, fields := parseError(data)
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		e := crm.StatusError(op, resp, code, msg)
		e.PartyGone = resp.StatusCode == http.StatusBadRequest && slices.ContainsFunc(fields, isRelatedID)
		return e
	}
	// A write Kylas accepted but whose answer we cannot read may have been applied.
	write := method == http.MethodPut || (method == http.MethodPost && !strings.Contains(path, "/search"))
	if readErr != nil {
		return &crm.Error{Op: op, Status: resp.StatusCode, Message: "reading response", Err: readErr, Unknown: write}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			// Kylas did what we asked but answered something we cannot read: repeating
			// a read would not change that; a write's record may exist.
			return &crm.Error{Op: op, Status: resp.StatusCode, Message: "decoding response", Err: err, Permanent: !write, Unknown: write}
		}
	}
	return nil
}

// parseError reads Kylas's {code, message, fieldErrors[{field, message}]}; fields
// are the fieldErrors' field names.
func parseError(data []byte) (code, msg string, fields []string) {
	var e struct {
		Code        json.RawMessage `json:"code"` // a string, sometimes a number
		Message     string          `json:"message"`
		FieldErrors []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"fieldErrors"`
	}
	if json.Unmarshal(data, &e) != nil {
		return "", "", nil
	}
	parts := []string{e.Message}
	for _, f := range e.FieldErrors {
		parts = append(parts, f.Field+": "+f.Message)
		fields = append(fields, f.Field)
	}
	return strings.Trim(string(e.Code), `"`), strings.TrimLeft(strings.Join(parts, "; "), "; "), fields
}

// isRelatedID reports whether a field error is on a call log's related record id
// ("relatedTo[0].id", or "relatedTo.id" for the object form): Kylas has no such lead
// or contact (docs/crm-contracts.md, "Ids that name nothing"). Only that field:
// another refusal of relatedTo (missing, wrong shape) is no stale party.
func isRelatedID(field string) bool {
	rest, ok := strings.CutPrefix(field, "relatedTo")
	if !ok {
		return false
	}
	if i, ok := strings.CutPrefix(rest, "["); ok {
		n, tail, found := strings.Cut(i, "]")
		if !found || n == "" || strings.Trim(n, "0123456789") != "" {
			return false
		}
		rest = tail
	}
	return rest == ".id"
}
