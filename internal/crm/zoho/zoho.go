// Package zoho writes calltrack's call logs to Zoho CRM's Calls module, owned by
// the mapped Zoho user and related to the contact or lead who called; it also
// lists the CRM's users (for user sync) and posts PhoneBridge call notifications
// (for live pop-ups).
//
// Zoho specifics handled here: OAuth access tokens shared by every replica
// through a TokenStore (Zoho grants at most 10 per refresh token in 10 minutes);
// inserts gathered into batches of up to 100 records per request, each caller
// getting its own record's result; lead/contact search by every form a number may
// have been typed in (Zoho matches as typed).
package zoho

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/phone"
)

// Limiter paces requests; the writer passes the per-credential limiter shared by
// all replicas so that every API request the adapter makes is paced.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Config of one tenant's Zoho CRM connection. AccountsURL and APIDomain depend on
// the account's data centre (.com, .eu, .in, .com.au, .jp, .ca, ...).
type Config struct {
	AccountsURL  string // OAuth server, e.g. https://accounts.zoho.in
	APIDomain    string // API root, e.g. https://www.zohoapis.in (paths start with /crm/v8)
	ClientID     string
	ClientSecret string
	RefreshToken string
	HTTPClient   *http.Client
	// DefaultCountry is the calling code ("91") for numbers stored without one.
	DefaultCountry string
	// TimeZone of Call_Start_Time as written (Zoho shows it in each user's zone
	// anyway); default India Standard Time.
	TimeZone   *time.Location
	Limiter    Limiter    // optional; waited on before every API request
	TokenStore TokenStore // where access tokens are shared; default an in-process MemoryTokenStore
	// Linger is how long an insert waits for batch-mates (default DefaultLinger);
	// MaxLinger the longest it waits when inserts arrive steadily (adaptive: long
	// enough to gather 8 records at the recent rate; default DefaultMaxLinger; at
	// or below Linger the wait is always Linger). See batcher.
	Linger    time.Duration
	MaxLinger time.Duration
	MaxBatch  int // records per insert request, 1..100; default 100
	// CallIDField is a single-line custom field of the Calls module (API name, e.g.
	// Calltrack_Call_ID) that gets our call id, for FindCall; "" = the Subject suffix.
	CallIDField string
	// SearchSettle is how long after a write a COQL query is trusted to show it
	// (FindCall, and a lead whose create had an unknown outcome); default
	// crm.DefaultSearchSettle.
	SearchSettle time.Duration
	// Parties caches number → lead/contact lookups and lead-creation claims, shared
	// by replicas (partycache.Redis); default in-process.
	Parties crm.PartyCache
	Leads   crm.LeadPolicy // what to do for a caller who matches no lead or contact
}

// Defaults.
const (
	DefaultLinger    = 200 * time.Millisecond // how long an insert waits for batch-mates
	DefaultMaxLinger = 2 * time.Second        // the longest, while inserts arrive steadily
	MaxBatch         = 100                    // Zoho's limit of records per insert
	DefaultTimeZone  = "Asia/Kolkata"
)

// ist is India Standard Time without needing tzdata.
var ist = time.FixedZone("IST", 5*3600+1800)

// String hides the secrets so a Config can be logged.
func (c Config) String() string {
	return fmt.Sprintf("zoho.Config{AccountsURL: %q, APIDomain: %q, ClientID: %q, ClientSecret: %s, RefreshToken: %s, DefaultCountry: %q}",
		c.AccountsURL, c.APIDomain, c.ClientID, redact(c.ClientSecret), redact(c.RefreshToken), c.DefaultCountry)
}

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

func (c Config) withDefaults() Config {
	c.AccountsURL = strings.TrimRight(c.AccountsURL, "/")
	c.APIDomain = strings.TrimSuffix(strings.TrimRight(c.APIDomain, "/"), "/crm/v8")
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 20 * time.Second}
	}
	if c.DefaultCountry == "" {
		c.DefaultCountry = phone.DefaultCountryCode
	}
	if c.TimeZone == nil {
		c.TimeZone = ist
	}
	if c.Linger <= 0 {
		c.Linger = DefaultLinger
	}
	if c.MaxLinger <= 0 {
		c.MaxLinger = DefaultMaxLinger
	}
	if c.MaxBatch <= 0 || c.MaxBatch > MaxBatch {
		c.MaxBatch = MaxBatch
	}
	if c.SearchSettle <= 0 {
		c.SearchSettle = crm.DefaultSearchSettle
	}
	return c
}

// Validate names the first bad field (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, u := range []struct{ name, v string }{{"AccountsURL", c.AccountsURL}, {"APIDomain", c.APIDomain}} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("zoho: %s %q is not an http(s) URL", u.name, u.v)
		}
	}
	switch {
	case strings.TrimSpace(c.ClientID) == "":
		return errors.New("zoho: ClientID is empty")
	case strings.TrimSpace(c.ClientSecret) == "":
		return errors.New("zoho: ClientSecret is empty")
	case strings.TrimSpace(c.RefreshToken) == "":
		return errors.New("zoho: RefreshToken is empty")
	case strings.Trim(c.DefaultCountry, "+0123456789") != "":
		return fmt.Errorf("zoho: DefaultCountry %q is not a calling code like 91", c.DefaultCountry)
	case c.CallIDField != "" && !apiNameRE.MatchString(c.CallIDField):
		return fmt.Errorf("zoho: CallIDField %q is not a field API name", c.CallIDField)
	}
	return nil
}

// apiNameRE is a Zoho field API name (letters, digits, underscores).
var apiNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,99}$`)

// LoadTimeZone returns the location of an IANA zone name ("Asia/Kolkata"); ""
// gives India Standard Time. The binary embeds tzdata (see tzdata.go).
func LoadTimeZone(name string) (*time.Location, error) {
	if name == "" {
		return ist, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("zoho: time zone %q: %w", name, err)
	}
	return loc, nil
}

// Adapter implements crm.Adapter for Zoho CRM, and directory.Source for its users.
// It is safe for concurrent use; concurrent CreateCall calls share insert requests.
type Adapter struct {
	cfg      Config
	tokens   TokenStore
	tokenKey string // names the refresh token in the store without revealing it
	parties  *crm.Parties
	batch    *batcher
	fields   fieldCache // the Calls module's field metadata (Call_Result's picklist)
}

var _ crm.Adapter = (*Adapter)(nil)

// New returns an adapter for cfg.
func New(cfg Config) (*Adapter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(cfg.AccountsURL + "\x00" + cfg.ClientID + "\x00" + cfg.RefreshToken))
	if cfg.Parties == nil {
		cfg.Parties = &crm.MemoryPartyCache{}
	}
	a := &Adapter{cfg: cfg, tokens: cfg.TokenStore, tokenKey: hex.EncodeToString(sum[:12]),
		parties: &crm.Parties{Cache: cfg.Parties, Policy: cfg.Leads, Settle: cfg.SearchSettle}}
	if a.tokens == nil {
		a.tokens = &MemoryTokenStore{}
	}
	a.batch = &batcher{linger: cfg.Linger, maxLinger: cfg.MaxLinger, max: cfg.MaxBatch, send: a.insert}
	return a, nil
}

// --- OAuth ---

// refresh asks the accounts server for an access token. The credentials go in the
// form body, not the query, so that no transport error (which quotes the URL)
// can carry them into a log.
func (a *Adapter) refresh(ctx context.Context) (Token, error) {
	const op = "zoho: refresh access token"
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {a.cfg.ClientID},
		"client_secret": {a.cfg.ClientSecret}, "refresh_token": {a.cfg.RefreshToken}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.AccountsURL+"/oauth/v2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, &crm.Error{Op: op, Err: err, Permanent: true}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "calltrack")
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return Token{}, crm.TransportError(op, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		APIDomain   string `json:"api_domain"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(data, &body)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return Token{}, crm.StatusError(op, resp, body.Error, body.Description)
	case body.Error == "Access Denied" || strings.Contains(body.Description, "too many requests"):
		// Zoho's own refresh throttle (HTTP 400): wait, do not give up on the call.
		e := crm.StatusError(op, resp, body.Error, body.Description)
		e.Permanent, e.RetryAfter = false, max(e.RetryAfter, time.Minute)
		return Token{}, e
	case body.Error != "":
		// invalid_client, invalid_code (revoked or wrong refresh token): Zoho answers
		// these with HTTP 200. Nothing succeeds until someone fixes the credentials.
		e := crm.StatusError(op, resp, body.Error, "the token endpoint refused the tenant's client id, secret or refresh token")
		e.Permanent = true
		return Token{}, e
	case resp.StatusCode >= 400:
		return Token{}, crm.StatusError(op, resp, "", http.StatusText(resp.StatusCode))
	case body.AccessToken == "":
		return Token{}, &crm.Error{Op: op, Status: resp.StatusCode, Message: "response has no access_token", Permanent: true}
	}
	return Token{AccessToken: body.AccessToken, ExpiresIn: time.Duration(body.ExpiresIn) * time.Second, APIDomain: body.APIDomain}, nil
}

// --- API requests ---

// reply is an API answer of any status.
type reply struct {
	resp *http.Response // body already read and closed
	data []byte
}

// send makes one API request with the shared access token; if Zoho refuses the
// token (401 INVALID_TOKEN: expired early, revoked), it drops the token from the
// store and tries once more with a fresh one. It returns an error only when no
// answer came (transport, context, token); any HTTP status is the caller's to read.
func (a *Adapter) send(ctx context.Context, op, method, path, contentType string, body []byte) (reply, error) {
	for attempt := 0; ; attempt++ {
		if a.cfg.Limiter != nil {
			if err := a.cfg.Limiter.Wait(ctx); err != nil {
				return reply{}, &crm.Error{Op: op, Message: "rate limiter", Err: err}
			}
		}
		tok, err := a.tokens.Token(ctx, a.tokenKey, a.refresh)
		if err != nil {
			return reply{}, err
		}
		req, err := http.NewRequestWithContext(ctx, method, a.cfg.APIDomain+path, bytes.NewReader(body))
		if err != nil {
			return reply{}, &crm.Error{Op: op, Err: err, Permanent: true}
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "calltrack")
		req.Header.Set("Authorization", "Zoho-oauthtoken "+tok)
		crm.CountRequest(ctx, 1)
		resp, err := a.cfg.HTTPClient.Do(req)
		if err != nil {
			return reply{}, crm.TransportError(op, err) // transport error or ctx: worth retrying
		}
		data, readErr := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			if code, _ := parseError(data); code == "INVALID_TOKEN" {
				if err := a.tokens.Invalidate(ctx, a.tokenKey, tok); err != nil {
					return reply{}, err
				}
				continue
			}
		}
		if readErr != nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			// Zoho answered 2xx: a write it may have applied.
			return reply{}, &crm.Error{Op: op, Status: resp.StatusCode, Message: "reading response", Err: readErr, Unknown: method != http.MethodGet}
		}
		return reply{resp: resp, data: data}, nil
	}
}

// sendJSON sends in as JSON.
func (a *Adapter) sendJSON(ctx context.Context, op, method, path string, in any) (reply, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return reply{}, &crm.Error{Op: op, Message: "encoding request", Err: err, Permanent: true}
	}
	return a.send(ctx, op, method, path, "application/json", body)
}

// apiError is the crm.Error of a non-2xx answer.
func apiError(op string, r reply) *crm.Error {
	code, msg := parseError(r.data)
	if msg == "" {
		msg = http.StatusText(r.resp.StatusCode)
	}
	return crm.StatusError(op, r.resp, code, msg)
}

// parseError reads Zoho's {"code","details","message","status"}.
func parseError(data []byte) (code, msg string) {
	var e struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	}
	if json.Unmarshal(data, &e) != nil {
		return "", ""
	}
	return e.Code, e.Message + detailText(e.Details)
}

// detailText names the field (and what Zoho expected) of a validation error.
func detailText(d map[string]any) string {
	var parts []string
	for _, k := range []string{"api_name", "expected_data_type", "expected_format", "param", "id"} {
		if v, ok := d[k]; ok && fmt.Sprint(v) != "" {
			parts = append(parts, k+"="+fmt.Sprint(v))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// CallNotify posts a PhoneBridge call notification (POST /phonebridge/v3/callnotify,
// form-encoded) with the shared access token; popup.PhoneBridge builds the form.
func (a *Adapter) CallNotify(ctx context.Context, form url.Values) error {
	const op = "zoho: phonebridge callnotify"
	r, err := a.send(ctx, op, http.MethodPost, "/phonebridge/v3/callnotify", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if err != nil {
		return err
	}
	if r.resp.StatusCode < 200 || r.resp.StatusCode > 299 {
		return apiError(op, r)
	}
	var body struct {
		Status string `json:"status"`
		Code   string `json:"code"`
	}
	if json.Unmarshal(r.data, &body) == nil && body.Status != "" && body.Status != "success" {
		return &crm.Error{Op: op, Status: r.resp.StatusCode, Code: body.Code, Message: "status " + body.Status, Permanent: true}
	}
	return nil
}
