package sandbox

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Zoho sandbox defaults (docs/architecture.md, "Dev mode and sandboxes").
const (
	ZohoClientID     = "demo-zoho-client"
	ZohoClientSecret = "demo-zoho-secret"
	ZohoRefreshToken = "demo-zoho-refresh"
	ZohoAccessToken  = "demo-zoho-access" // static token the API always accepts
)

// ZohoOptions configure a Zoho sandbox. The zero value is usable.
type ZohoOptions struct {
	// Credentials the token endpoint accepts; defaults ZohoClientID, ZohoClientSecret,
	// ZohoRefreshToken.
	ClientID, ClientSecret, RefreshToken string

	AccessToken string        // static access token; default ZohoAccessToken
	TokenTTL    time.Duration // lifetime of issued access tokens (expires_in); default 1h
	// RefreshLimit is how many tokens one refresh token may get per RefreshWindow
	// (Zoho: 10 per 10 minutes); above it the token endpoint answers "Access Denied".
	// 0 = 10; negative = unlimited.
	RefreshLimit  int
	RefreshWindow time.Duration // default 10 min
	// APIDomain is the token endpoint's api_domain; default: the request's scheme and host.
	APIDomain string
	RateLimit int              // adapter calls accepted per wall-clock second; 0 = unlimited
	Now       func() time.Time // clock for timestamps, tokens and the rate-limit window
	Seed      uint64           // seed of the fault dice; 0 = random
	TimeZone  *time.Location   // zone of Created_Time / Modified_Time; default IST (+05:30)

	// CallResults is Call_Result's picklist; default DefaultCallResults.
	CallResults []string
	// RecordingFieldLength is Voice_Recording__s's maximum length; default 100 (unconfirmed:
	// no public Zoho source found, the stricter reading — docs/crm-contracts.md).
	RecordingFieldLength int
	// PhoneBridgeUsers are the org's PhoneBridge users (GET /phonebridge/v3/users).
	PhoneBridgeUsers []PhoneBridgeUser
	// OtherPhoneBridgeProvider: another provider is enabled for the org.
	OtherPhoneBridgeProvider bool

	// CustomFields are single-line text custom fields of the Calls module (API
	// names, e.g. Calltrack_Call_ID): writable, shown in listings, usable in COQL.
	CustomFields []string

	// Seed data, restored by Reset.
	Users    []ZohoUser
	Leads    []ZohoPerson
	Contacts []ZohoPerson
}

// ZohoRef is Zoho's reference to another record or user: {"id", "name"}.
type ZohoRef struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// ZohoUser is a CRM user as GET /crm/v8/users returns it.
type ZohoUser struct {
	ID        string   `json:"id"`
	FullName  string   `json:"full_name"`
	FirstName string   `json:"first_name,omitempty"`
	LastName  string   `json:"last_name,omitempty"`
	Email     string   `json:"email"`
	Status    string   `json:"status"` // active, disabled, deleted
	Role      *ZohoRef `json:"role,omitempty"`
	Profile   *ZohoRef `json:"profile,omitempty"`
	Phone     string   `json:"phone,omitempty"`
	Mobile    string   `json:"mobile,omitempty"`
}

// ZohoPerson is a lead or contact, reduced to what phone search needs. Numbers are
// kept as typed: Zoho's search matches them as typed.
type ZohoPerson struct {
	ID        string `json:"id"`
	FirstName string `json:"First_Name,omitempty"`
	LastName  string `json:"Last_Name,omitempty"`
	FullName  string `json:"Full_Name,omitempty"`
	Email     string `json:"Email,omitempty"`
	Phone     string `json:"Phone,omitempty"`
	Mobile    string `json:"Mobile,omitempty"`
	// Contacts also have these phone fields.
	HomePhone  string `json:"Home_Phone,omitempty"`
	OtherPhone string `json:"Other_Phone,omitempty"`
	// Leads made through the API.
	LeadSource string   `json:"Lead_Source,omitempty"`
	OwnerID    string   `json:"-"`
	Tags       []string `json:"-"`
}

func (p ZohoPerson) name() string {
	if p.FullName != "" {
		return p.FullName
	}
	return strings.TrimSpace(p.FirstName + " " + p.LastName)
}

// ZohoCall is a stored record of the Calls module, as the listing returns it.
type ZohoCall struct {
	ID             string            `json:"id"`
	Subject        string            `json:"Subject"`
	CallType       string            `json:"Call_Type"`
	CallStartTime  string            `json:"Call_Start_Time"`
	CallDuration   string            `json:"Call_Duration"`
	DurationSecs   int               `json:"Call_Duration_in_seconds"`
	Owner          ZohoRef           `json:"Owner"`
	WhoID          *ZohoRef          `json:"Who_Id"`
	WhatID         *ZohoRef          `json:"What_Id"`
	SEModule       string            `json:"$se_module,omitempty"`
	CallResult     string            `json:"Call_Result,omitempty"`
	Description    string            `json:"Description,omitempty"`
	VoiceRecording string            `json:"Voice_Recording__s,omitempty"`
	CreatedTime    string            `json:"Created_Time"`
	ModifiedTime   string            `json:"Modified_Time"`
	Custom         map[string]string `json:"-"` // custom fields, listed flat beside the standard ones
	stored         time.Time         // when it was stored, to the nanosecond (search lag)
}

// MarshalJSON lists custom fields beside the standard ones, as Zoho does.
func (c ZohoCall) MarshalJSON() ([]byte, error) {
	type plain ZohoCall
	raw, err := json.Marshal(plain(c))
	if err != nil || len(c.Custom) == 0 {
		return raw, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	for k, v := range c.Custom {
		m[k] = v
	}
	return json.Marshal(m)
}

func (c ZohoCall) clone() ZohoCall {
	c.Custom = maps.Clone(c.Custom)
	if c.WhoID != nil {
		r := *c.WhoID
		c.WhoID = &r
	}
	if c.WhatID != nil {
		r := *c.WhatID
		c.WhatID = &r
	}
	return c
}

// ZohoNotification is one PhoneBridge callnotify the sandbox received.
type ZohoNotification struct {
	Type      string     `json:"type"`  // received, dialed
	State     string     `json:"state"` // ringing, answered, ended, missed, ...
	ID        string     `json:"id"`    // the caller's call id
	From      string     `json:"from"`
	To        string     `json:"to"`
	ZohoUser  string     `json:"zohouser,omitempty"`
	StartTime string     `json:"start_time,omitempty"`
	VoiceURI  string     `json:"voiceuri,omitempty"`
	Form      url.Values `json:"form"` // every field as posted
	At        time.Time  `json:"received_at"`
}

// zohoTime is how Zoho writes date-times: ISO-8601 with a numeric offset, no fraction.
const zohoTime = "2006-01-02T15:04:05-07:00"

// ist is India Standard Time, the sandbox's default zone (no tzdata needed).
var ist = time.FixedZone("IST", 5*3600+1800)

// Zoho is an in-memory Zoho CRM API (OAuth token endpoint, Calls, search, users,
// PhoneBridge callnotify). It serves paths without the /sandbox/zoho prefix (dev
// mounts it with http.StripPrefix; tests use httptest.NewServer(z)).
type Zoho struct {
	opts ZohoOptions
	gate *gate
	mux  *http.ServeMux

	mu            sync.Mutex
	records       []*ZohoCall // in id order
	nextID        int64
	byCallID      map[string]int // our call id (Description "Call ID:") → creates
	duplicates    int
	users         map[string]ZohoUser
	leads         map[string]ZohoPerson
	contacts      map[string]ZohoPerson
	tokens        map[string]time.Time // issued access token → expiry
	refreshes     []time.Time          // token grants within the refresh window
	refreshCount  int                  // token grants since reset
	notifications []ZohoNotification
	pbIntegrated  bool                   // calltrack is the org's PhoneBridge provider
	pbUserList    []PhoneBridgeUser      // PhoneBridge users
	pbDial        map[string]ClickToDial // registered click-to-dial URIs by PhoneBridge user
	tasks         []*ZohoTask            // zoho_tasks.go
	pbDialErrors  []ClickToDialError     // clicktodialerror reports (zoho_clicktodial.go)
}

// NewZoho returns a Zoho sandbox with opts' seed data.
func NewZoho(opts ZohoOptions) *Zoho {
	if opts.ClientID == "" {
		opts.ClientID = ZohoClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = ZohoClientSecret
	}
	if opts.RefreshToken == "" {
		opts.RefreshToken = ZohoRefreshToken
	}
	if opts.AccessToken == "" {
		opts.AccessToken = ZohoAccessToken
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.RefreshLimit == 0 {
		opts.RefreshLimit = 10
	}
	if opts.RefreshWindow <= 0 {
		opts.RefreshWindow = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TimeZone == nil {
		opts.TimeZone = ist
	}
	z := &Zoho{opts: opts, gate: newGate(opts.Now, opts.RateLimit, opts.Seed), mux: http.NewServeMux()}
	z.resetData()

	// OAuth (accounts server): shown in by_endpoint, not an API call.
	z.mux.HandleFunc("POST /oauth/v2/token", z.token)
	// Adapter calls: counted, authenticated, rate-limited, faulted.
	z.mux.HandleFunc("POST /crm/v8/Calls", z.adapterWrite(z.insertCalls))
	z.mux.HandleFunc("PUT /crm/v8/Calls/{id}", z.adapterWrite(z.updateCall))
	z.mux.HandleFunc("POST /crm/v8/coql", z.adapterCall(z.coql))
	z.mux.HandleFunc("POST /crm/v8/Leads", z.adapterWrite(z.insertLeads))
	z.mux.HandleFunc("POST /crm/v8/Tasks", z.adapterWrite(z.insertTasks))
	z.mux.HandleFunc("GET /crm/v8/Contacts/search", z.adapterCall(z.search("Contacts")))
	z.mux.HandleFunc("GET /crm/v8/Leads/search", z.adapterCall(z.search("Leads")))
	z.mux.HandleFunc("POST /phonebridge/v3/callnotify", z.adapterCall(z.callNotify))
	z.mux.HandleFunc("POST /phonebridge/v3/integrate", z.adapterCall(z.pbIntegrate))
	z.mux.HandleFunc("GET /phonebridge/v3/users", z.adapterCall(z.pbUsers))
	z.mux.HandleFunc("POST /phonebridge/v3/clicktodial", z.adapterCall(z.pbClickToDial))
	z.routesClickToDial()
	// Reads: authenticated, never faulted or counted.
	z.mux.HandleFunc("GET /crm/v8/Calls", z.api(z.listCalls))
	z.mux.HandleFunc("GET /crm/v8/Tasks", z.api(z.listTasks))
	z.mux.HandleFunc("GET /crm/v8/Calls/{id}", z.api(z.getCall))
	z.mux.HandleFunc("GET /crm/v8/users", z.api(z.listUsers))
	z.mux.HandleFunc("GET /crm/v8/settings/fields", z.adapterCall(z.fieldsMeta))
	z.mux.HandleFunc("GET /crm/v8/Leads", z.api(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"data": z.LeadViews()})
	}))
	// Control: no auth.
	z.mux.HandleFunc("PUT /users/{id}", z.putUser)
	z.mux.HandleFunc("DELETE /users/{id}", z.deleteUser)
	z.mux.HandleFunc("PUT /leads/{id}", z.putPerson("Leads"))
	z.mux.HandleFunc("PUT /contacts/{id}", z.putPerson("Contacts"))
	z.mux.HandleFunc("DELETE /leads/{id}", z.deletePersonHandler("Leads"))
	z.mux.HandleFunc("DELETE /contacts/{id}", z.deletePersonHandler("Contacts"))
	z.mux.HandleFunc("PUT /phonebridge/users/{id}", z.putPBUser)
	z.mux.HandleFunc("GET /phonebridge", func(w http.ResponseWriter, r *http.Request) {
		z.mu.Lock()
		body := map[string]any{"integrated": z.pbIntegrated, "users": slices.Clone(z.pbUserList)}
		z.mu.Unlock()
		body["clicktodial"] = z.ClickToDials()
		writeJSON(w, http.StatusOK, body)
	})
	z.mux.HandleFunc("GET /notifications", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"notifications": z.Notifications()})
	})
	z.mux.HandleFunc("DELETE /tokens", func(w http.ResponseWriter, r *http.Request) { z.ExpireTokens(); w.WriteHeader(http.StatusNoContent) })
	z.mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, z.gate.getFaults()) })
	z.mux.HandleFunc("PUT /faults", z.putFaults)
	z.mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, z.Stats()) })
	z.mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) { z.Reset(); w.WriteHeader(http.StatusNoContent) })
	return z
}

func (z *Zoho) ServeHTTP(w http.ResponseWriter, r *http.Request) { z.mux.ServeHTTP(w, r) }

// Records returns a snapshot of every stored call, in id order.
func (z *Zoho) Records() []ZohoCall {
	z.mu.Lock()
	defer z.mu.Unlock()
	out := make([]ZohoCall, len(z.records))
	for i, r := range z.records {
		out[i] = r.clone()
	}
	return out
}

// Notifications returns the PhoneBridge callnotify requests accepted, in order.
func (z *Zoho) Notifications() []ZohoNotification {
	z.mu.Lock()
	defer z.mu.Unlock()
	out := make([]ZohoNotification, len(z.notifications))
	for i, n := range z.notifications {
		n.Form = cloneValues(n.Form)
		out[i] = n
	}
	return out
}

// Stats returns the adapter-call counters. Token grants show in ByEndpoint as
// "POST /oauth/v2/token" but not in Requests or MaxRPS1s.
func (z *Zoho) Stats() Stats {
	z.mu.Lock()
	d := z.duplicates
	z.mu.Unlock()
	return z.gate.snapshot(d)
}

// Refreshes returns how many access tokens the token endpoint granted since the last reset.
func (z *Zoho) Refreshes() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.refreshCount
}

// ExpireTokens makes every issued access token invalid (the static one stays
// valid), as if they had expired: the next API call answers 401 INVALID_TOKEN.
func (z *Zoho) ExpireTokens() {
	z.mu.Lock()
	clear(z.tokens)
	z.mu.Unlock()
}

// SetFaults replaces the faults; the zero Faults clears them.
func (z *Zoho) SetFaults(f Faults) error { return z.gate.setFaults(f) }

// Faults returns the faults in force.
func (z *Zoho) Faults() Faults { return z.gate.getFaults() }

// Reset drops records, notifications, tokens, stats and faults and restores the seed data.
func (z *Zoho) Reset() {
	z.gate.reset()
	z.resetData()
}

// AddLead stores (or replaces) a lead and returns its id (assigned when p.ID is "").
func (z *Zoho) AddLead(p ZohoPerson) string { return z.addPerson("Leads", p) }

// AddContact stores (or replaces) a contact and returns its id (assigned when p.ID is "").
func (z *Zoho) AddContact(p ZohoPerson) string { return z.addPerson("Contacts", p) }

// DeleteLead removes a lead (as a user deleting, merging or converting it does); it
// reports whether there was one. Calls already related to it stay, and a later write
// naming it is refused (INVALID_DATA, api_name What_Id).
func (z *Zoho) DeleteLead(id string) bool { return z.deletePerson("Leads", id) }

// DeleteContact removes a contact; it reports whether there was one (a later Who_Id
// naming it is refused).
func (z *Zoho) DeleteContact(id string) bool { return z.deletePerson("Contacts", id) }

func (z *Zoho) deletePerson(module, id string) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	m := z.people(module)
	_, ok := m[id]
	delete(m, id)
	return ok
}

// AddUser stores (or replaces) a user; Status defaults to "active".
func (z *Zoho) AddUser(u ZohoUser) {
	if u.Status == "" {
		u.Status = "active"
	}
	if u.FullName == "" {
		u.FullName = strings.TrimSpace(u.FirstName + " " + u.LastName)
	}
	z.mu.Lock()
	z.users[u.ID] = u
	z.mu.Unlock()
}

// HasUser reports whether id is a user.
func (z *Zoho) HasUser(id string) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	_, ok := z.users[id]
	return ok
}

// RemoveUser deletes a user; it reports whether there was one.
func (z *Zoho) RemoveUser(id string) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	_, ok := z.users[id]
	delete(z.users, id)
	return ok
}

// zohoIDBase makes ids look like Zoho's 19-digit record ids.
const zohoIDBase = 5725767000000412000

func (z *Zoho) resetData() {
	z.mu.Lock()
	z.records, z.nextID = nil, zohoIDBase
	z.byCallID, z.duplicates = map[string]int{}, 0
	z.users = map[string]ZohoUser{}
	z.leads, z.contacts = map[string]ZohoPerson{}, map[string]ZohoPerson{}
	z.tokens, z.refreshes, z.refreshCount = map[string]time.Time{}, nil, 0
	z.notifications = nil
	z.tasks = nil
	z.pbIntegrated, z.pbUserList, z.pbDial = false, slices.Clone(z.opts.PhoneBridgeUsers), map[string]ClickToDial{}
	z.pbDialErrors = nil
	z.mu.Unlock()
	for _, u := range z.opts.Users {
		z.AddUser(u)
	}
	for _, p := range z.opts.Leads {
		z.AddLead(p)
	}
	for _, p := range z.opts.Contacts {
		z.AddContact(p)
	}
}

// newID returns a fresh record id; callers hold z.mu. Records, leads and contacts
// share one id space, as in Zoho.
func (z *Zoho) newID() string {
	z.nextID++
	return strconv.FormatInt(z.nextID, 10)
}

func (z *Zoho) addPerson(module string, p ZohoPerson) string {
	z.mu.Lock()
	defer z.mu.Unlock()
	if p.ID == "" {
		p.ID = z.newID()
	} else if n, err := strconv.ParseInt(p.ID, 10, 64); err == nil {
		z.nextID = max(z.nextID, n)
	}
	if p.FullName == "" {
		p.FullName = p.name()
	}
	z.people(module)[p.ID] = p
	return p.ID
}

// people returns the lead or contact table; callers hold z.mu.
func (z *Zoho) people(module string) map[string]ZohoPerson {
	if module == "Leads" {
		return z.leads
	}
	return z.contacts
}

func (z *Zoho) timestamp() string { return z.opts.Now().In(z.opts.TimeZone).Format(zohoTime) }

// --- errors and middleware ---

// zohoError is Zoho's error body, also the shape of one per-record result.
type zohoError struct {
	Code    string         `json:"code"`
	Details map[string]any `json:"details"`
	Message string         `json:"message"`
	Status  string         `json:"status"`
}

func zohoFail(w http.ResponseWriter, status int, code, msg string, details map[string]any) {
	if details == nil {
		details = map[string]any{}
	}
	writeJSON(w, status, zohoError{Code: code, Details: details, Message: msg, Status: "error"})
}

// authorize checks "Authorization: Zoho-oauthtoken <token>": the static token or an
// unexpired issued one. It answers the failure itself.
func (z *Zoho) authorize(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Zoho-oauthtoken ")
	if !ok || strings.TrimSpace(tok) == "" {
		z.gate.reject()
		zohoFail(w, http.StatusUnauthorized, "AUTHENTICATION_FAILURE", "Authentication failed", nil)
		return false
	}
	z.mu.Lock()
	exp, issued := z.tokens[tok]
	valid := tok == z.opts.AccessToken || (issued && z.opts.Now().Before(exp))
	z.mu.Unlock()
	if !valid {
		z.gate.reject()
		zohoFail(w, http.StatusUnauthorized, "INVALID_TOKEN", "invalid oauth token", nil)
		return false
	}
	return true
}

// api guards a read endpoint: auth only.
func (z *Zoho) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if z.authorize(w, r) {
			h(w, r)
		}
	}
}

var zohoFaultCodes = map[int]string{
	http.StatusBadRequest:          "INVALID_REQUEST",
	http.StatusTooManyRequests:     "TOO_MANY_REQUESTS",
	http.StatusInternalServerError: "INTERNAL_ERROR",
	http.StatusServiceUnavailable:  "SERVICE_UNAVAILABLE",
}

// adapterCall guards an endpoint adapters call: counted, authenticated,
// rate-limited, delayed and faulted, in that order.
func (z *Zoho) adapterCall(h http.HandlerFunc) http.HandlerFunc { return z.guard(h, false) }

// adapterWrite guards a write adapters call: as adapterCall, and its response may be lost.
func (z *Zoho) adapterWrite(h http.HandlerFunc) http.HandlerFunc { return z.guard(h, true) }

func (z *Zoho) guard(h http.HandlerFunc, write bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		z.gate.count(r.Pattern) // patterns are spelled as the real API: "POST /crm/v8/Calls"
		if !z.authorize(w, r) {
			return
		}
		v := z.gate.admit(write)
		z.gate.setHeaders(w.Header(), v)
		if v.rateLimit {
			zohoFail(w, v.status, "TOO_MANY_REQUESTS", fmt.Sprintf("more than %d requests per second", z.opts.RateLimit), nil)
			return
		}
		sleep(r.Context(), v.latency)
		if v.status != 0 {
			zohoFail(w, v.status, zohoFaultCodes[v.status], "injected fault: "+http.StatusText(v.status), nil)
			return
		}
		serve(v, h, w, r)
	}
}

// --- OAuth ---

// token serves POST /oauth/v2/token?grant_type=refresh_token&client_id&client_secret&refresh_token
// (query or form). Like Zoho, a wrong credential is HTTP 200 with {"error": ...}
// and too many refreshes is 400 "Access Denied".
func (z *Zoho) token(w http.ResponseWriter, r *http.Request) {
	z.gate.note(r.Pattern)
	_ = r.ParseForm()
	switch {
	case r.Form.Get("grant_type") != "refresh_token":
		writeJSON(w, http.StatusOK, map[string]string{"error": "unsupported_grant_type"})
		return
	case r.Form.Get("client_id") != z.opts.ClientID || r.Form.Get("client_secret") != z.opts.ClientSecret:
		writeJSON(w, http.StatusOK, map[string]string{"error": "invalid_client"})
		return
	case r.Form.Get("refresh_token") != z.opts.RefreshToken:
		writeJSON(w, http.StatusOK, map[string]string{"error": "invalid_code"})
		return
	}
	now := z.opts.Now()
	z.mu.Lock()
	z.refreshes = slices.DeleteFunc(z.refreshes, func(t time.Time) bool { return now.Sub(t) >= z.opts.RefreshWindow })
	if z.opts.RefreshLimit > 0 && len(z.refreshes) >= z.opts.RefreshLimit {
		z.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Access Denied", "status": "failure",
			"error_description": "You have made too many requests continuously. Please try again after some time."})
		return
	}
	z.refreshes = append(z.refreshes, now)
	z.refreshCount++
	tok := "1000." + randHex(16) + "." + randHex(16)
	z.tokens[tok] = now.Add(z.opts.TokenTTL)
	for t, exp := range z.tokens { // keep the table small
		if !now.Before(exp) {
			delete(z.tokens, t)
		}
	}
	z.mu.Unlock()
	domain := z.opts.APIDomain
	if domain == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		domain = scheme + "://" + r.Host
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "api_domain": domain, "token_type": "Bearer",
		"expires_in": int(z.opts.TokenTTL / time.Second)})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// --- Calls ---

var (
	zohoCallTypes   = []string{"Inbound", "Outbound", "Missed"}
	zohoDurationRE  = regexp.MustCompile(`^([0-9]{1,4}):([0-5][0-9])$`)
	descCallIDRE    = regexp.MustCompile(`(?m)^Call ID: (\S+)\s*$`)
	zohoMaxPerWrite = 100
)

// recordResult is one entry of a write's per-record "data" answer.
type recordResult = zohoError

func fieldError(code, field, msg string, i int, extra map[string]any) recordResult {
	d := map[string]any{"api_name": field, "json_path": fmt.Sprintf("$.data[%d].%s", i, field)}
	for k, v := range extra {
		d[k] = v
	}
	return recordResult{Code: code, Details: d, Message: msg, Status: "error"}
}

// decodeData reads {"data":[{...}, ...]} and answers a whole-request error itself.
func decodeData(w http.ResponseWriter, r *http.Request) ([]map[string]json.RawMessage, bool) {
	var b struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20)).Decode(&b); err != nil {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "body is not valid JSON: "+err.Error(), nil)
		return nil, false
	}
	switch {
	case len(b.Data) == 0:
		zohoFail(w, http.StatusBadRequest, "MANDATORY_NOT_FOUND", "the data array is missing or empty", map[string]any{"api_name": "data"})
		return nil, false
	case len(b.Data) > zohoMaxPerWrite:
		zohoFail(w, http.StatusBadRequest, "LIMIT_EXCEEDED", fmt.Sprintf("more than %d records in one request", zohoMaxPerWrite),
			map[string]any{"limit": zohoMaxPerWrite})
		return nil, false
	}
	return b.Data, true
}

// applyFields validates the fields present in in and sets them on c. create:
// mandatory fields must be there; update: Call_Type and Owner may not change.
// Callers hold z.mu (lookups of owners, leads and contacts).
func (z *Zoho) applyFields(c *ZohoCall, in map[string]json.RawMessage, i int, create bool) *recordResult {
	str := func(field string) (string, bool, *recordResult) {
		raw, ok := in[field]
		if !ok || string(raw) == "null" {
			return "", false, nil
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			e := fieldError("INVALID_DATA", field, "invalid data", i, map[string]any{"expected_data_type": "text"})
			return "", true, &e
		}
		return s, true, nil
	}
	ref := func(field string) (*ZohoRef, bool, *recordResult) {
		raw, ok := in[field]
		if !ok || string(raw) == "null" {
			return nil, false, nil
		}
		var v struct {
			ID json.RawMessage `json:"id"`
		}
		var id string
		if json.Unmarshal(raw, &v) != nil || json.Unmarshal(v.ID, &id) != nil || strings.TrimSpace(id) == "" {
			e := fieldError("INVALID_DATA", field, "invalid data", i, map[string]any{"expected_data_type": "lookup"})
			return nil, true, &e
		}
		return &ZohoRef{ID: id}, true, nil
	}
	missing := func(field string) *recordResult {
		e := fieldError("MANDATORY_NOT_FOUND", field, "required field not found", i, nil)
		return &e
	}
	invalid := func(field, msg string, extra map[string]any) *recordResult {
		e := fieldError("INVALID_DATA", field, msg, i, extra)
		return &e
	}

	// Fields the module does not have are refused (stricter reading: Zoho's docs do
	// not say an unknown api_name is ignored).
	for name := range in {
		if !slices.Contains(zohoCallWritable, name) && !slices.Contains(z.opts.CustomFields, name) {
			return invalid(name, "invalid field: the module has no field with this api_name", nil)
		}
	}
	// Lengths (insert-records: "INVALID_DATA is thrown if the field value length is
	// more than the maximum length defined for that field") and picklists.
	for name, limit := range z.fieldLengths() {
		if v, ok, _ := str(name); ok && utf8.RuneCountInString(v) > limit {
			return invalid(name, "invalid data: the value is longer than the field's maximum length",
				map[string]any{"maximum_length": limit})
		}
	}
	if v, ok, _ := str("Call_Result"); ok && v != "" && !slices.Contains(z.callResults(), v) {
		return invalid("Call_Result", "invalid data: not a value of the picklist",
			map[string]any{"expected_data_type": "picklist", "allowed_values": z.callResults()})
	}

	// Mandatory on create, in Zoho's order of checking.
	subject, ok, err := str("Subject")
	switch {
	case err != nil:
		return err
	case ok && strings.TrimSpace(subject) == "":
		return missing("Subject")
	case ok:
		c.Subject = subject
	case create:
		return missing("Subject")
	}
	callType, ok, err := str("Call_Type")
	switch {
	case err != nil:
		return err
	case ok && !slices.Contains(zohoCallTypes, callType):
		return invalid("Call_Type", "invalid data", map[string]any{"expected_data_type": "picklist", "allowed_values": zohoCallTypes})
	case ok && !create && callType != c.CallType:
		// "You are trying to update the Call_Type" is INVALID_DATA (reason 5,
		// https://help.zoho.com/portal/en/community/topic/kaizen-38-calls-api).
		return invalid("Call_Type", "the call type of a call cannot be changed", nil)
	case ok:
		c.CallType = callType
	case create:
		return missing("Call_Type")
	}
	start, ok, err := str("Call_Start_Time")
	switch {
	case err != nil:
		return err
	case ok:
		t, perr := time.Parse(zohoTime, start)
		if perr != nil {
			return invalid("Call_Start_Time", "invalid data", map[string]any{"expected_data_type": "datetime"})
		}
		// Every call the sandbox keeps is a completed one (it takes no scheduled calls:
		// Call_Duration is required of all but Missed), and Zoho refuses "an incorrect
		// Call_Start_Time for a completed call" (INVALID_DATA, reason 7,
		// https://help.zoho.com/portal/en/community/topic/kaizen-38-calls-api). The page
		// does not say what makes it incorrect; a start in the future is the reading
		// taken (a completed call cannot have begun later than now).
		if t.After(z.opts.Now()) {
			return invalid("Call_Start_Time", "invalid data: the start time of a completed call cannot be in the future", nil)
		}
		c.CallStartTime = start
	case create:
		return missing("Call_Start_Time")
	}
	dur, ok, err := str("Call_Duration")
	switch {
	case err != nil:
		return err
	case ok:
		// Read as mm:ss, the form Zoho Bigin documents
		// (https://www.zoho.com/bigin/developer/docs/apis/calls-response.html); Zoho
		// CRM's Kaizen #38 says hh:mm. Any hh:mm value fits this pattern too, so the
		// sandbox cannot tell the readings apart: docs/crm-contracts.md, Call_Duration.
		m := zohoDurationRE.FindStringSubmatch(dur)
		if m == nil {
			return invalid("Call_Duration", "invalid data", map[string]any{"expected_format": "mm:ss"})
		}
		mins, _ := strconv.Atoi(m[1])
		secs, _ := strconv.Atoi(m[2])
		if mins == 0 && secs == 0 {
			// Unconfirmed: Kaizen #38 lists only an empty duration. The adapter never
			// sends zero (a completed call under a second is 00:01), so refusing it costs
			// nothing and catches an adapter that would.
			return invalid("Call_Duration", "the call duration must be greater than zero", nil)
		}
		c.CallDuration, c.DurationSecs = dur, mins*60+secs
	case create && c.CallType != "Missed":
		// Zoho asks a duration of completed calls only; a missed call has none.
		return missing("Call_Duration")
	}
	owner, ok, err := ref("Owner")
	switch {
	case err != nil:
		return err
	case ok && !create && owner.ID != c.Owner.ID:
		// "You are trying to update the Owner of a completed call" is INVALID_DATA
		// (reason 6, https://help.zoho.com/portal/en/community/topic/kaizen-38-calls-api);
		// every call the sandbox keeps is completed.
		return invalid("Owner", "the owner of a completed call cannot be changed", nil)
	case ok:
		ref, e := z.ownerRef(owner.ID, i)
		if e != nil {
			return e
		}
		c.Owner = ref
	case create:
		return missing("Owner")
	}

	// Relations: Who_Id names a contact; What_Id with $se_module names a lead (or
	// another module the sandbox does not keep).
	who, whoSet, err := ref("Who_Id")
	if err != nil {
		return err
	}
	if whoSet {
		p, ok := z.contacts[who.ID]
		if !ok {
			return invalid("Who_Id", "the related id given seems to be invalid", map[string]any{"id": who.ID})
		}
		c.WhoID = &ZohoRef{ID: p.ID, Name: p.name()}
	} else if raw, ok := in["Who_Id"]; ok && string(raw) == "null" {
		c.WhoID = nil
	}
	module, moduleSet, err := str("$se_module")
	if err != nil {
		return err
	}
	what, whatSet, err := ref("What_Id")
	if err != nil {
		return err
	}
	switch {
	case whatSet && !moduleSet && c.SEModule == "":
		return missing("$se_module")
	case moduleSet && !whatSet && c.WhatID == nil:
		return missing("What_Id")
	case whatSet:
		if moduleSet {
			c.SEModule = module
		}
		// The sandbox keeps leads only: a What_Id of any other module names a record
		// it does not have, refused as an unknown lead is.
		p, ok := z.leads[what.ID]
		if c.SEModule != "Leads" || !ok {
			return invalid("What_Id", "the related id given seems to be invalid", map[string]any{"id": what.ID})
		}
		c.WhatID = &ZohoRef{ID: p.ID, Name: p.name()}
	}

	for _, f := range []struct {
		name string
		out  *string
	}{{"Call_Result", &c.CallResult}, {"Description", &c.Description}, {"Voice_Recording__s", &c.VoiceRecording}} {
		v, ok, err := str(f.name)
		if err != nil {
			return err
		}
		if ok {
			*f.out = v
		}
	}
	for _, f := range z.opts.CustomFields {
		v, ok, err := str(f)
		if err != nil {
			return err
		}
		if ok {
			if c.Custom == nil {
				c.Custom = map[string]string{}
			}
			c.Custom[f] = v
		}
	}
	if c.VoiceRecording != "" {
		if u, perr := url.Parse(c.VoiceRecording); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("Voice_Recording__s", "invalid data", map[string]any{"expected_data_type": "website"})
		}
	}
	return nil
}

// zohoCallWritable are the Calls fields a write may carry.
var zohoCallWritable = []string{"Subject", "Call_Type", "Call_Start_Time", "Call_Duration", "Owner", "Who_Id", "What_Id",
	"$se_module", "Call_Result", "Description", "Voice_Recording__s"}

// DefaultCallResults is Zoho's stock Call_Result picklist.
var DefaultCallResults = []string{"Interested", "Not interested", "No response/Busy", "Requested more info",
	"Requested call back", "Invalid number"}

func (z *Zoho) callResults() []string {
	if len(z.opts.CallResults) > 0 {
		return z.opts.CallResults
	}
	return DefaultCallResults
}

// fieldLengths are the Calls text fields' maximum lengths: single line 255
// (https://help.zoho.com/portal/en/community/topic/kaizen-1-fields-in-crm-api-18-10-2019,
// https://www.bigin.com/developer/docs/toppings/custom-field-types.html), multi-line
// 32000, Voice_Recording__s 100 (ZohoOptions.RecordingFieldLength; unconfirmed, the
// stricter reading — docs/crm-contracts.md).
func (z *Zoho) fieldLengths() map[string]int {
	rec := z.opts.RecordingFieldLength
	if rec <= 0 {
		rec = 100
	}
	m := map[string]int{"Subject": 255, "Description": 32000, "Voice_Recording__s": rec}
	for _, f := range z.opts.CustomFields {
		m[f] = 255
	}
	return m
}

// userRef names an owner (a user: see ownerRef). Callers hold z.mu.
func (z *Zoho) userRef(id string) ZohoRef {
	if u, ok := z.users[id]; ok {
		return ZohoRef{ID: id, Name: u.FullName, Email: u.Email}
	}
	return ZohoRef{ID: id, Name: "User " + id}
}

// ownerRef resolves a record's Owner {id}: a user of the org, else the record is
// refused with INVALID_DATA "the id given seems to be invalid", details {api_name,
// json_path, id} — Zoho's answer to an id it does not have (the message Zoho's docs
// and API specs give for INVALID_DATA on an unknown id, e.g. "Kaizen #25 - Zoho CRM
// API - Common Errors and Error Handling", help.zoho.com community; details carry
// api_name and json_path as for the sandbox's other field errors: that per-field
// shape is the stricter reading). A mistyped department fallback owner must fail in
// dev as it would in production. Callers hold z.mu.
func (z *Zoho) ownerRef(id string, i int) (ZohoRef, *recordResult) {
	if _, ok := z.users[id]; !ok {
		e := fieldError("INVALID_DATA", "Owner", "the id given seems to be invalid", i, map[string]any{"id": id})
		return ZohoRef{}, &e
	}
	return z.userRef(id), nil
}

// tokenUser is the user the API's token belongs to (the first active user, as
// GET /users?type=CurrentUser answers): the owner Zoho gives a record written
// without Owner. Callers hold z.mu.
func (z *Zoho) tokenUser() (ZohoUser, bool) {
	var best ZohoUser
	found := false
	for _, u := range z.users {
		if u.Status == "active" && (!found || cmp.Less(u.ID, best.ID)) {
			best, found = u, true
		}
	}
	return best, found
}

// writeResults answers a write's per-record results: 201 (200 for updates) when
// all succeeded, 400 when all failed, 207 Multi-Status when mixed.
func writeResults(w http.ResponseWriter, ok int, results []recordResult) {
	status := ok
	failed := 0
	for _, r := range results {
		if r.Status != "success" {
			failed++
		}
	}
	switch {
	case failed == len(results):
		status = http.StatusBadRequest
	case failed > 0:
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, map[string]any{"data": results})
}

func (z *Zoho) success(c *ZohoCall, msg string) recordResult {
	by := map[string]any{"id": c.Owner.ID, "name": c.Owner.Name}
	return recordResult{Code: "SUCCESS", Message: msg, Status: "success", Details: map[string]any{
		"id": c.ID, "Created_Time": c.CreatedTime, "Modified_Time": c.ModifiedTime, "Created_By": by, "Modified_By": by,
	}}
}

// insertCalls serves POST /crm/v8/Calls: up to 100 records, each accepted or
// refused on its own.
func (z *Zoho) insertCalls(w http.ResponseWriter, r *http.Request) {
	data, ok := decodeData(w, r)
	if !ok {
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	results := make([]recordResult, len(data))
	for i, in := range data {
		var c ZohoCall
		if e := z.applyFields(&c, in, i, true); e != nil {
			results[i] = *e
			continue
		}
		c.ID = z.newID()
		c.stored = z.opts.Now()
		c.CreatedTime = z.timestamp()
		c.ModifiedTime = c.CreatedTime
		if m := descCallIDRE.FindStringSubmatch(c.Description); m != nil {
			if z.byCallID[m[1]] > 0 {
				z.duplicates++
			}
			z.byCallID[m[1]]++
		}
		z.records = append(z.records, &c)
		results[i] = z.success(&c, "record added")
	}
	writeResults(w, http.StatusCreated, results)
}

// updateCall serves PUT /crm/v8/Calls/{id}: the fields given change, the others stay.
func (z *Zoho) updateCall(w http.ResponseWriter, r *http.Request) {
	data, ok := decodeData(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	z.mu.Lock()
	defer z.mu.Unlock()
	i := slices.IndexFunc(z.records, func(c *ZohoCall) bool { return c.ID == id })
	if i < 0 || len(data) != 1 {
		writeResults(w, http.StatusOK, []recordResult{{Code: "INVALID_DATA", Details: map[string]any{"id": id},
			Message: "the related id given seems to be invalid", Status: "error"}})
		return
	}
	c := z.records[i].clone()
	if e := z.applyFields(&c, data[0], 0, false); e != nil {
		writeResults(w, http.StatusOK, []recordResult{*e})
		return
	}
	c.ModifiedTime = z.timestamp()
	z.records[i] = &c
	writeResults(w, http.StatusOK, []recordResult{z.success(&c, "record updated")})
}

func (z *Zoho) getCall(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, c := range z.Records() {
		if c.ID == id {
			writeJSON(w, http.StatusOK, map[string]any{"data": []ZohoCall{c}})
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// zohoInfo is the "info" of a Zoho listing.
type zohoInfo struct {
	PerPage     int  `json:"per_page"`
	Count       int  `json:"count"`
	Page        int  `json:"page"`
	MoreRecords bool `json:"more_records"`
}

// zohoPage cuts all into the page asked for (?page= from 1, ?per_page= from 1 to
// maxPer, default defPer; Zoho's default and cap are 200).
func zohoPage[T any](all []T, r *http.Request, defPer, maxPer int) ([]T, zohoInfo, error) {
	q := r.URL.Query()
	p, per := 1, defPer
	var err error
	if s := q.Get("page"); s != "" {
		if p, err = strconv.Atoi(s); err != nil || p < 1 {
			return nil, zohoInfo{}, fmt.Errorf("page must be a number >= 1")
		}
	}
	if s := q.Get("per_page"); s != "" {
		if per, err = strconv.Atoi(s); err != nil || per < 1 || per > maxPer {
			return nil, zohoInfo{}, fmt.Errorf("per_page must be 1..%d", maxPer)
		}
	}
	from := min((p-1)*per, len(all))
	to := min(from+per, len(all))
	return append([]T{}, all[from:to]...), zohoInfo{PerPage: per, Count: to - from, Page: p, MoreRecords: to < len(all)}, nil
}

// listCalls serves GET /crm/v8/Calls as {"data":[...],"info":{...}}. Unlike
// Zoho it is for inspection: an empty list instead of 204, and pages of 1000
// records by default (up to 10000) so that one request shows a whole demo run.
func (z *Zoho) listCalls(w http.ResponseWriter, r *http.Request) {
	recs, info, err := zohoPage(z.Records(), r, 1000, 10000)
	if err != nil {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": recs, "info": info})
}

// --- search ---

// search serves GET /crm/v8/{Contacts|Leads}/search?phone=: Zoho matches the
// number as typed against the phone fields, so "+919711636496" does not find
// "9711636496". 204 with no body when nothing matches.
func (z *Zoho) search(module string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		term := strings.TrimSpace(q.Get("phone"))
		if term == "" {
			zohoFail(w, http.StatusBadRequest, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
				map[string]any{"param": "phone"})
			return
		}
		z.mu.Lock()
		var hits []ZohoPerson
		for _, p := range z.people(module) {
			if p.Phone == term || p.Mobile == term || p.HomePhone == term || p.OtherPhone == term {
				hits = append(hits, p)
			}
		}
		z.mu.Unlock()
		if len(hits) == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		slices.SortFunc(hits, func(a, b ZohoPerson) int { return cmp.Compare(a.ID, b.ID) })
		page, info, err := zohoPage(hits, r, 200, 200)
		if err != nil {
			zohoFail(w, http.StatusBadRequest, "INVALID_DATA", err.Error(), nil)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": page, "info": info})
	}
}

// --- users ---

// listUsers serves GET /crm/v8/users?type=AllUsers|ActiveUsers|DeactiveUsers&page=&per_page=
// as {"users":[...],"info":{...}}; 204 when the page is empty.
func (z *Zoho) listUsers(w http.ResponseWriter, r *http.Request) {
	typ := r.URL.Query().Get("type")
	if typ == "" {
		typ = "AllUsers"
	}
	keep := map[string]func(ZohoUser) bool{
		"AllUsers":      func(ZohoUser) bool { return true },
		"ActiveUsers":   func(u ZohoUser) bool { return u.Status == "active" },
		"DeactiveUsers": func(u ZohoUser) bool { return u.Status == "disabled" },
		"CurrentUser":   func(u ZohoUser) bool { return u.Status == "active" }, // the sandbox's token belongs to its first active user
	}[typ]
	if keep == nil {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "invalid data", map[string]any{"param": "type"})
		return
	}
	z.mu.Lock()
	var all []ZohoUser
	for _, u := range z.users {
		if keep(u) {
			all = append(all, u)
		}
	}
	z.mu.Unlock()
	slices.SortFunc(all, func(a, b ZohoUser) int { return cmp.Compare(a.ID, b.ID) })
	if typ == "CurrentUser" {
		if len(all) == 0 {
			all = []ZohoUser{{ID: "1", FullName: "API User", Status: "active"}}
		}
		all = all[:1]
	}
	users, info, err := zohoPage(all, r, 200, 200)
	if err != nil {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", err.Error(), nil)
		return
	}
	if len(users) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users, "info": info})
}

// --- PhoneBridge ---

var (
	pbReceivedStates = []string{"ringing", "answered", "ended", "missed", "voicemail"}
	pbDialedStates   = []string{"ringing", "answered", "ended", "busy", "invalid", "blocked", "notavailable", "noanswer", "rejected"}
	e164RE           = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// callNotify serves POST /phonebridge/v3/callnotify (form-encoded) and keeps
// what it accepts for GET /notifications.
func (z *Zoho) callNotify(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		zohoFail(w, http.StatusBadRequest, "SC_BAD_REQUEST", "malformed form body", nil)
		return
	}
	f := r.PostForm
	n := ZohoNotification{Type: f.Get("type"), State: f.Get("state"), ID: f.Get("id"), From: f.Get("from"), To: f.Get("to"),
		ZohoUser: f.Get("zohouser"), StartTime: f.Get("start_time"), VoiceURI: f.Get("voiceuri"), Form: cloneValues(f), At: z.opts.Now()}
	var missing []string
	for _, k := range []string{"type", "state", "id", "from", "to"} {
		if f.Get(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		zohoFail(w, http.StatusBadRequest, "REQUIRED_PARAM_MISSING", "required parameters missing: "+strings.Join(missing, ", "),
			map[string]any{"params": missing})
		return
	}
	states := map[string][]string{"received": pbReceivedStates, "dialed": pbDialedStates}[n.Type]
	switch {
	case states == nil:
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "type must be received or dialed", map[string]any{"param": "type"})
		return
	case !slices.Contains(states, n.State):
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "state must be one of "+strings.Join(states, ", "), map[string]any{"param": "state"})
		return
	case !e164RE.MatchString(n.From) || !e164RE.MatchString(n.To):
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "from and to must be E.164 numbers", map[string]any{"params": []string{"from", "to"}})
		return
	}
	if z.pbNotRegistered(w) {
		return
	}
	z.mu.Lock()
	_, enabled := z.pbDial[n.ZohoUser]
	z.mu.Unlock()
	if !enabled {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "zohouser is not a PhoneBridge user with click-to-dial registered",
			map[string]any{"param": "zohouser"})
		return
	}
	if n.StartTime != "" {
		if _, err := time.Parse(time.DateTime, n.StartTime); err != nil {
			zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "start_time must be yyyy-MM-dd HH:mm:ss (GMT)", map[string]any{"param": "start_time"})
			return
		}
	}
	z.mu.Lock()
	z.notifications = append(z.notifications, n)
	if slices.Contains([]string{"ended", "missed", "voicemail", "busy", "noanswer", "rejected", "notavailable"}, n.State) {
		// PhoneBridge logs the call itself when told it is over: that it logs calls is
		// https://www.zoho.com/desk/help/api/phonebridge/v1/ ("Call logging"); which
		// states make the record is unconfirmed, so every final state does here.
		c := ZohoCall{ID: z.newID(), Subject: "PhoneBridge call " + n.ID, CallType: map[string]string{"received": "Inbound", "dialed": "Outbound"}[n.Type],
			Owner: ZohoRef{ID: n.ZohoUser}, Description: "Logged by PhoneBridge\nCall ID: " + n.ID, stored: z.opts.Now()}
		c.CreatedTime, c.ModifiedTime = z.timestamp(), z.timestamp()
		if z.byCallID[n.ID] > 0 {
			z.duplicates++
		}
		z.byCallID[n.ID]++
		z.records = append(z.records, &c)
	}
	z.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "success", "code": "SUCCESS"})
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// --- control ---

func zohoPathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if id == "" || strings.Trim(id, "0123456789") != "" {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "id must be digits", nil)
		return "", false
	}
	return id, true
}

// putUser upserts a user: {"full_name","email","status","role","profile","phone","mobile"}
// (status defaults to "active"; role and profile are names).
func (z *Zoho) putUser(w http.ResponseWriter, r *http.Request) {
	id, ok := zohoPathID(w, r)
	if !ok {
		return
	}
	var b struct {
		FullName string `json:"full_name"`
		Email    string `json:"email"`
		Status   string `json:"status"`
		Role     string `json:"role"`
		Profile  string `json:"profile"`
		Phone    string `json:"phone"`
		Mobile   string `json:"mobile"`
	}
	if err := decodeStrict(r, &b); err != nil {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "bad user body: "+err.Error(), nil)
		return
	}
	if b.Status != "" && !slices.Contains([]string{"active", "disabled", "deleted"}, b.Status) {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "status must be active, disabled or deleted", nil)
		return
	}
	u := ZohoUser{ID: id, FullName: b.FullName, Email: b.Email, Status: b.Status, Phone: b.Phone, Mobile: b.Mobile}
	if b.Role != "" {
		u.Role = &ZohoRef{ID: "role-" + strings.ToLower(strings.ReplaceAll(b.Role, " ", "-")), Name: b.Role}
	}
	if b.Profile != "" {
		u.Profile = &ZohoRef{ID: "profile-" + strings.ToLower(strings.ReplaceAll(b.Profile, " ", "-")), Name: b.Profile}
	}
	z.AddUser(u)
	z.mu.Lock()
	u = z.users[id]
	z.mu.Unlock()
	writeJSON(w, http.StatusOK, u)
}

func (z *Zoho) deleteUser(w http.ResponseWriter, r *http.Request) {
	id, ok := zohoPathID(w, r)
	if !ok {
		return
	}
	if !z.RemoveUser(id) {
		zohoFail(w, http.StatusNotFound, "INVALID_DATA", "user not found", nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// putPerson upserts a lead or contact: {"First_Name","Last_Name","Email","Phone","Mobile"}.
func (z *Zoho) putPerson(module string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := zohoPathID(w, r)
		if !ok {
			return
		}
		var p ZohoPerson
		if err := decodeStrict(r, &p); err != nil {
			zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "bad record body: "+err.Error(), nil)
			return
		}
		p.ID = id
		z.addPerson(module, p)
		z.mu.Lock()
		p = z.people(module)[id]
		z.mu.Unlock()
		writeJSON(w, http.StatusOK, p)
	}
}

// deletePersonHandler deletes a lead or contact (DeleteLead, DeleteContact).
func (z *Zoho) deletePersonHandler(module string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := zohoPathID(w, r)
		if !ok {
			return
		}
		if !z.deletePerson(module, id) {
			zohoFail(w, http.StatusNotFound, "INVALID_DATA", "the id given seems to be invalid", map[string]any{"id": id})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (z *Zoho) putFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	err := decodeStrict(r, &f)
	if err == nil {
		err = z.SetFaults(f)
	}
	if err != nil {
		zohoFail(w, http.StatusBadRequest, "INVALID_DATA", "bad faults: "+err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, f)
}
