package sandbox

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// KylasOptions configure a Kylas sandbox. The zero value is usable.
type KylasOptions struct {
	APIKey string // the api-key header API calls must carry; default "demo-crm-key"
	// BearerToken is the marketplace app's OAuth token POST /v1/call-logs/sync needs
	// (Authorization: Bearer), beside the api-key; default "demo-kylas-oauth".
	BearerToken string
	// KeyUserID is the api-key's user: owner of records made by POST /v1/call-logs
	// and of leads made without ownerId; default 1. Make it one of Users (dev's is
	// 1001) so that records are owned by a user that exists; otherwise the sandbox
	// names it "API User", as GET /v1/users/me does.
	KeyUserID int64
	RateLimit int              // adapter calls accepted per wall-clock second; 0 = unlimited
	Now       func() time.Time // clock for timestamps and the rate-limit window; default time.Now
	Seed      uint64           // seed of the fault dice; 0 = random

	// Seed data, restored by Reset.
	Users    []KylasUser
	Leads    []KylasPerson
	Contacts []KylasPerson
}

// KylasUser is a Kylas user as GET /v1/users/{id} returns it.
type KylasUser struct {
	ID        int64  `json:"id"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Email     string `json:"email"`
	Active    bool   `json:"active"`
}

// Name is the user's display name.
func (u KylasUser) Name() string { return strings.TrimSpace(u.FirstName + " " + u.LastName) }

// KylasPhone is one entry of a lead's or contact's phoneNumbers. Kylas keeps the
// national number in Value and the country prefix in DialCode ("+91").
type KylasPhone struct {
	Type     string `json:"type,omitempty"` // MOBILE, WORK, ...
	Code     string `json:"code,omitempty"` // ISO country, "IN"
	Value    string `json:"value"`
	DialCode string `json:"dialCode,omitempty"`
	Primary  bool   `json:"primary"`
}

// KylasPerson is a lead or a contact, reduced to what phone search needs.
type KylasPerson struct {
	ID           int64        `json:"id"`
	FirstName    string       `json:"firstName,omitempty"`
	LastName     string       `json:"lastName,omitempty"`
	PhoneNumbers []KylasPhone `json:"phoneNumbers"`
}

func (p KylasPerson) name() string { return strings.TrimSpace(p.FirstName + " " + p.LastName) }

// KylasIDName is Kylas's {id, name} reference (a record's owner, a lookup hit).
type KylasIDName struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// KylasRecording is a call log's callRecording.
type KylasRecording struct {
	URL      string `json:"url"`
	FileName string `json:"fileName,omitempty"`
}

// KylasRelated is one entity a call log is related to.
type KylasRelated struct {
	ID          int64  `json:"id"`
	Entity      string `json:"entity"` // lead, contact, deal
	Name        string `json:"name,omitempty"`
	PhoneNumber string `json:"phoneNumber,omitempty"`
}

// KylasNote is one of a call log's notes.
type KylasNote struct {
	Description string `json:"description"`
}

// KylasCallLog is a stored call log, as the listing returns it.
type KylasCallLog struct {
	ID            int64           `json:"id"`
	Owner         KylasIDName     `json:"owner"`
	RemoteID      string          `json:"remoteId,omitempty"`
	CallType      string          `json:"callType"`
	Outcome       string          `json:"outcome"`
	PhoneNumber   string          `json:"phoneNumber,omitempty"`
	Originator    string          `json:"originator,omitempty"`
	Receiver      string          `json:"receiver,omitempty"`
	Duration      int             `json:"duration"`
	PickDuration  int             `json:"pickDuration,omitempty"`
	StartTime     string          `json:"startTime,omitempty"` // UTC, 2006-01-02T15:04:05.000Z
	EndTime       string          `json:"endTime,omitempty"`
	DeviceID      string          `json:"deviceId,omitempty"`
	CallRecording *KylasRecording `json:"callRecording,omitempty"`
	RelatedTo     []KylasRelated  `json:"relatedTo"`
	Notes         []KylasNote     `json:"notes"`
	CreatedAt     time.Time       `json:"createdAt"`
	UpdatedAt     time.Time       `json:"updatedAt"`
	Route         string          `json:"-"` // sandbox only: "sync" or "create", the route that made it
}

func (c KylasCallLog) clone() KylasCallLog {
	if c.CallRecording != nil {
		r := *c.CallRecording
		c.CallRecording = &r
	}
	c.RelatedTo = slices.Clone(c.RelatedTo)
	c.Notes = slices.Clone(c.Notes)
	return c
}

// kylasTime is how Kylas writes timestamps (UTC, milliseconds).
const kylasTime = "2006-01-02T15:04:05.000Z"

// Kylas is an in-memory Kylas API. It serves paths without the /sandbox/kylas
// prefix (dev mounts it with http.StripPrefix; tests use httptest.NewServer(k)).
type Kylas struct {
	opts KylasOptions
	gate *gate
	mux  *http.ServeMux

	mu         sync.Mutex
	records    []*KylasCallLog // in id order
	nextID     int64
	nextEntity int64
	byRemote   map[string]int
	duplicates int
	users      map[int64]KylasUser
	leads      map[int64]KylasPerson
	leadMeta   map[int64]KylasLeadIn // owner and source of leads made through the API
	contacts   map[int64]KylasPerson
	tasks      []*KylasTask // kylas_tasks.go
}

// NewKylas returns a Kylas sandbox with opts' seed data.
func NewKylas(opts KylasOptions) *Kylas {
	if opts.APIKey == "" {
		opts.APIKey = "demo-crm-key"
	}
	if opts.BearerToken == "" {
		opts.BearerToken = "demo-kylas-oauth"
	}
	if opts.KeyUserID == 0 {
		opts.KeyUserID = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	k := &Kylas{opts: opts, gate: newGate(opts.Now, opts.RateLimit, opts.Seed), mux: http.NewServeMux()}
	k.resetData()

	// Adapter calls: counted, rate-limited, faulted.
	k.mux.HandleFunc("POST /v1/call-logs/sync", k.adapterWrite(k.syncCallLog))
	k.mux.HandleFunc("POST /v1/call-logs", k.adapterWrite(k.createCallLog))
	k.mux.HandleFunc("PUT /v1/call-logs/{id}", k.adapterWrite(k.updateCallLog))
	k.mux.HandleFunc("POST /v1/call-logs/search", k.adapterCall(k.searchCallLogs))
	k.mux.HandleFunc("POST /v1/leads", k.adapterWrite(k.createLead))
	k.mux.HandleFunc("POST /v1/tasks", k.adapterWrite(k.createTask))
	k.mux.HandleFunc("POST /v1/tasks/search", k.adapterCall(k.searchTasks))
	k.mux.HandleFunc("GET /v1/entities/task/fields", k.adapterCall(k.getTaskFields))
	k.mux.HandleFunc("POST /v1/search/lead", k.adapterCall(k.search("lead")))
	k.mux.HandleFunc("POST /v1/search/contact", k.adapterCall(k.search("contact")))
	// Reads: authenticated, never faulted or counted.
	k.mux.HandleFunc("GET /v1/call-logs", k.api(k.listCallLogs))
	k.mux.HandleFunc("GET /v1/tasks", k.api(k.listTasks))
	k.mux.HandleFunc("GET /v1/tasks/{id}", k.api(k.getTask))
	k.mux.HandleFunc("GET /v1/call-logs/{id}", k.api(k.getCallLog))
	k.mux.HandleFunc("GET /v1/leads", k.api(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"content": k.LeadViews()})
	}))
	k.mux.HandleFunc("GET /v1/leads/{id}", k.api(k.getLead))
	k.mux.HandleFunc("GET /v1/users/lookup", k.api(k.lookupUsers))
	k.mux.HandleFunc("GET /v1/users/me", k.api(k.me))
	k.mux.HandleFunc("GET /v1/users/{id}", k.api(k.getUser))
	// Control: no auth.
	k.mux.HandleFunc("PUT /users/{id}", k.putUser)
	k.mux.HandleFunc("DELETE /users/{id}", k.deleteUser)
	k.mux.HandleFunc("PUT /leads/{id}", k.putPerson("lead"))
	k.mux.HandleFunc("PUT /contacts/{id}", k.putPerson("contact"))
	k.mux.HandleFunc("DELETE /leads/{id}", k.deletePersonHandler("lead"))
	k.mux.HandleFunc("DELETE /contacts/{id}", k.deletePersonHandler("contact"))
	// Anything else is Kylas's JSON 404 (e.g. the undocumented GET /v1/users listing).
	k.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		kylasFail(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	k.mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, k.gate.getFaults()) })
	k.mux.HandleFunc("PUT /faults", k.putFaults)
	k.mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, k.Stats()) })
	k.mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) { k.Reset(); w.WriteHeader(http.StatusNoContent) })
	return k
}

func (k *Kylas) ServeHTTP(w http.ResponseWriter, r *http.Request) { k.mux.ServeHTTP(w, r) }

// Records returns a snapshot of every stored call log, in id order.
func (k *Kylas) Records() []KylasCallLog {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]KylasCallLog, len(k.records))
	for i, r := range k.records {
		out[i] = r.clone()
	}
	return out
}

// Stats returns the adapter-call counters.
func (k *Kylas) Stats() Stats {
	k.mu.Lock()
	d := k.duplicates
	k.mu.Unlock()
	return k.gate.snapshot(d)
}

// SetFaults replaces the faults; the zero Faults clears them.
func (k *Kylas) SetFaults(f Faults) error { return k.gate.setFaults(f) }

// Faults returns the faults in force.
func (k *Kylas) Faults() Faults { return k.gate.getFaults() }

// Reset drops records, stats and faults and restores the seed data.
func (k *Kylas) Reset() {
	k.gate.reset()
	k.resetData()
}

// AddLead stores (or replaces) a lead and returns its id (assigned when p.ID is 0).
func (k *Kylas) AddLead(p KylasPerson) int64 { return k.addPerson("lead", p) }

// AddContact stores (or replaces) a contact and returns its id (assigned when p.ID is 0).
func (k *Kylas) AddContact(p KylasPerson) int64 { return k.addPerson("contact", p) }

// DeleteLead removes a lead (as a user deleting it, or merging or converting it,
// does); it reports whether there was one. Records already related to it stay, and a
// later write naming it is refused (relatedTo[i].id).
func (k *Kylas) DeleteLead(id int64) bool { return k.deletePerson("lead", id) }

// DeleteContact removes a contact; it reports whether there was one.
func (k *Kylas) DeleteContact(id int64) bool { return k.deletePerson("contact", id) }

func (k *Kylas) deletePerson(entity string, id int64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := k.people(entity)
	_, ok := m[id]
	delete(m, id)
	if entity == "lead" {
		delete(k.leadMeta, id)
	}
	return ok
}

// AddUser stores (or replaces) a user.
func (k *Kylas) AddUser(u KylasUser) {
	k.mu.Lock()
	k.users[u.ID] = u
	k.mu.Unlock()
}

// HasUser reports whether id is a user.
func (k *Kylas) HasUser(id int64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.users[id]
	return ok
}

// RemoveUser deletes a user; it reports whether there was one.
func (k *Kylas) RemoveUser(id int64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.users[id]
	delete(k.users, id)
	return ok
}

func (k *Kylas) resetData() {
	k.mu.Lock()
	k.records, k.nextID, k.nextEntity = nil, 1000, 100
	k.byRemote, k.duplicates = map[string]int{}, 0
	k.tasks = nil
	k.users = map[int64]KylasUser{}
	k.leads, k.contacts, k.leadMeta = map[int64]KylasPerson{}, map[int64]KylasPerson{}, map[int64]KylasLeadIn{}
	for _, u := range k.opts.Users {
		k.users[u.ID] = u
	}
	k.mu.Unlock()
	for _, p := range k.opts.Leads {
		k.AddLead(p)
	}
	for _, p := range k.opts.Contacts {
		k.AddContact(p)
	}
}

func (k *Kylas) addPerson(entity string, p KylasPerson) int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p.ID == 0 {
		k.nextEntity++
		p.ID = k.nextEntity
	}
	k.nextEntity = max(k.nextEntity, p.ID) // leads and contacts share one id space: no ambiguous ids in tests
	p.PhoneNumbers = slices.Clone(p.PhoneNumbers)
	k.people(entity)[p.ID] = p
	return p.ID
}

// people returns the lead or contact table; callers hold k.mu.
func (k *Kylas) people(entity string) map[int64]KylasPerson {
	if entity == "lead" {
		return k.leads
	}
	return k.contacts
}

// --- middleware ---

type kylasFieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type kylasError struct {
	Code        string            `json:"code"`
	Message     string            `json:"message"`
	FieldErrors []kylasFieldError `json:"fieldErrors,omitempty"`
}

func kylasFail(w http.ResponseWriter, status int, code, msg string, fe ...kylasFieldError) {
	writeJSON(w, status, kylasError{Code: code, Message: msg, FieldErrors: fe})
}

func (k *Kylas) authorized(r *http.Request) bool { return r.Header.Get("api-key") == k.opts.APIKey }

// api guards a read endpoint: auth only.
func (k *Kylas) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !k.authorized(r) {
			k.gate.reject()
			kylasFail(w, http.StatusUnauthorized, "unauthorized", "missing or invalid api-key")
			return
		}
		h(w, r)
	}
}

// adapterCall guards an endpoint adapters call: counted, authenticated,
// rate-limited, delayed and faulted, in that order.
func (k *Kylas) adapterCall(h http.HandlerFunc) http.HandlerFunc { return k.guard(h, false) }

// adapterWrite guards a write adapters call: as adapterCall, and its response may be lost.
func (k *Kylas) adapterWrite(h http.HandlerFunc) http.HandlerFunc { return k.guard(h, true) }

func (k *Kylas) guard(h http.HandlerFunc, write bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k.gate.count(r.Pattern) // patterns are spelled as the real API: "PUT /v1/call-logs/{id}"
		if !k.authorized(r) {
			k.gate.reject()
			kylasFail(w, http.StatusUnauthorized, "unauthorized", "missing or invalid api-key")
			return
		}
		v := k.gate.admit(write)
		k.setRateHeaders(w.Header(), v)
		if v.rateLimit {
			kylasFail(w, v.status, "rate_limit_exceeded", fmt.Sprintf("more than %d requests per second", k.opts.RateLimit))
			return
		}
		sleep(r.Context(), v.latency)
		if v.status != 0 {
			kylasFail(w, v.status, fmt.Sprintf("sandbox_fault_%d", v.status), "injected fault: "+http.StatusText(v.status))
			return
		}
		serve(v, h, w, r)
	}
}

// Kylas's rate-limit headers, as its support article lists them (and no others: no
// Retry-After, X-RateLimit-Limit or X-RateLimit-Reset):
// https://support.kylas.io/portal/en/kb/articles/kylas-api-rate-limit.
const (
	kylasReplenishRate   = "X-RateLimit-Replenish-Rate"   // tokens added per second
	kylasBurstCapacity   = "X-RateLimit-Burst-Capacity"   // most requests in a short burst
	kylasRemaining       = "X-RateLimit-Remaining"        // requests left
	kylasRequestedTokens = "X-RateLimit-Requested-Tokens" // tokens this request took
	kylasRetryAfter      = "X-RateLimit-Retry-After"      // seconds until a retry may pass
)

// setRateHeaders writes Kylas's rate-limit headers for v. The sandbox's limit is a
// count per wall-clock second, so its bucket refills limit tokens a second and bursts
// to limit. A 429 (the limit's, or an injected one) says when to retry in
// X-RateLimit-Retry-After only, so an adapter that reads just Retry-After fails here
// as it would against Kylas.
func (k *Kylas) setRateHeaders(h http.Header, v verdict) {
	if limit := k.opts.RateLimit; limit > 0 {
		h.Set(kylasReplenishRate, strconv.Itoa(limit))
		h.Set(kylasBurstCapacity, strconv.Itoa(limit))
		h.Set(kylasRemaining, strconv.Itoa(max(v.remaining, 0)))
		h.Set(kylasRequestedTokens, "1")
	}
	if v.retryAfter > 0 {
		h.Set(kylasRetryAfter, v.retrySeconds())
	}
}

// --- call logs ---

var (
	kylasOutcomes  = []string{"connected", "rejected", "busy", "no_answer", "missed_call", "in_progress"}
	kylasCallTypes = []string{"incoming", "outgoing"}
	kylasEntities  = []string{"lead", "contact", "deal"}
)

// kylasCallLogBody is a create/sync/update body; loosely typed fields are
// checked by hand so a bad value becomes a fieldError, as the real API answers.
type kylasCallLogBody struct {
	OwnerID       json.RawMessage `json:"ownerId"`
	RemoteID      string          `json:"remoteId"`
	Outcome       string          `json:"outcome"`
	CallType      string          `json:"callType"`
	StartTime     string          `json:"startTime"`
	EndTime       string          `json:"endTime"`
	Duration      *float64        `json:"duration"`
	PickDuration  *float64        `json:"pickDuration"`
	PhoneNumber   string          `json:"phoneNumber"`
	Originator    string          `json:"originator"`
	Receiver      string          `json:"receiver"`
	DeviceID      string          `json:"deviceId"`
	CallRecording json.RawMessage `json:"callRecording"` // URL string or {url, fileName}
	RelatedTo     json.RawMessage `json:"relatedTo"`     // an object; the sync route also takes a list
	Notes         []KylasNote     `json:"notes"`
}

// parseCallLog decodes and validates a body into a record (without id/owner) by the
// rules of route: "sync" (POST /v1/call-logs/sync: ownerId required, callRecording a
// URL string — Kylas's Postman collection, for which no public address was found:
// unconfirmed, see docs/crm-contracts.md) or "create" (POST /v1/call-logs and the
// PUT of its records: outcome, startTime, phoneNumber, callType and relatedTo
// required, callRecording {url, fileName, data}, no owner or remoteId field —
// kylastech/kylas-crm-mcp-server create_call_log_logic, registry/call_log.yaml). The
// PUT of a sync record needs what every call log has (outcome, startTime,
// phoneNumber, callType). It answers the error itself and returns ok=false.
func (k *Kylas) parseCallLog(w http.ResponseWriter, r *http.Request, route string, update bool) (rec KylasCallLog, owner int64, ok bool) {
	ownerRequired := route == "sync" && !update
	var b kylasCallLogBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			kylasFail(w, http.StatusBadRequest, "invalid_request", "invalid value", kylasFieldError{te.Field, "invalid type " + te.Value})
		} else {
			kylasFail(w, http.StatusBadRequest, "invalid_request", "malformed JSON body")
		}
		return rec, 0, false
	}
	var fe []kylasFieldError
	bad := func(field, msg string) { fe = append(fe, kylasFieldError{field, msg}) }

	switch raw := strings.TrimSpace(string(b.OwnerID)); {
	case raw == "" || raw == "null":
		if ownerRequired {
			bad("ownerId", "must not be null")
		}
	default:
		id, err := strconv.ParseInt(raw, 10, 64) // a JSON integer; strings and fractions are refused
		if err != nil || id <= 0 {
			bad("ownerId", "must be a positive number")
		}
		owner = id
	}
	if route == "create" && len(strings.TrimSpace(string(b.OwnerID))) > 0 && string(b.OwnerID) != "null" {
		// The plain route has no owner field: the key's user owns the record (who owns it
		// is unconfirmed, no public source found; the stricter reading of a body that
		// cannot name an owner — docs/crm-contracts.md).
		owner = 0
	}
	if b.StartTime == "" {
		bad("startTime", "is required")
	}
	// Every call log needs a phoneNumber, on every route (the plain route's required
	// field: kylastech/kylas-crm-mcp-server create_call_log_logic, registry/call_log.yaml;
	// the sync route's Postman body lists originator/receiver only — requiring it there
	// is the stricter reading). No public source gives it a format ("phone number
	// string"), so any value but a blank one is taken: a withheld caller's log carries
	// what MyOperator said ("anonymous") or the adapter's placeholder
	// (docs/crm-contracts.md, "Kylas: withheld numbers").
	if strings.TrimSpace(b.PhoneNumber) == "" {
		bad("phoneNumber", "is required")
	}
	if rt := strings.TrimSpace(string(b.RelatedTo)); route == "create" && (rt == "" || rt == "null" || rt == "[]") {
		bad("relatedTo", "is required: the lead, contact or deal the call is for")
	}
	if !slices.Contains(kylasOutcomes, b.Outcome) {
		bad("outcome", "must be one of "+strings.Join(kylasOutcomes, ", "))
	}
	if !slices.Contains(kylasCallTypes, b.CallType) {
		bad("callType", "must be one of "+strings.Join(kylasCallTypes, ", "))
	}
	if route == "create" {
		b.RemoteID = "" // not a field of the plain route
	}
	rec = KylasCallLog{
		RemoteID: b.RemoteID, Outcome: b.Outcome, CallType: b.CallType, PhoneNumber: b.PhoneNumber,
		Originator: b.Originator, Receiver: b.Receiver, DeviceID: b.DeviceID, Notes: b.Notes,
	}
	for _, t := range []struct {
		field, in string
		out       *string
	}{{"startTime", b.StartTime, &rec.StartTime}, {"endTime", b.EndTime, &rec.EndTime}} {
		if t.in == "" {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, t.in)
		switch {
		case err != nil:
			bad(t.field, "must be an ISO-8601 date-time")
			continue
		case route == "create" && !strings.HasSuffix(t.in, "Z"):
			// The plain route's times are UTC ("startTime: UTC ISO datetime (e.g.
			// '2024-01-15T08:00:00.000Z')": kylastech/kylas-crm-mcp-server
			// entities/call_log.py; registry/call_log.yaml "<UTC ISO>"); endTime is not
			// listed there and is held to the same form. The sync route's Postman body
			// has no public address, so any offset is taken there.
			bad(t.field, "must be a UTC ISO-8601 date-time, e.g. 2024-01-15T08:00:00.000Z")
			continue
		}
		*t.out = ts.UTC().Format(kylasTime)
	}
	for _, n := range []struct {
		field string
		in    *float64
		out   *int
	}{{"duration", b.Duration, &rec.Duration}, {"pickDuration", b.PickDuration, &rec.PickDuration}} {
		if n.in == nil {
			continue
		}
		if *n.in < 0 || *n.in != float64(int(*n.in)) {
			bad(n.field, "must be a non-negative whole number of seconds")
			continue
		}
		*n.out = int(*n.in)
	}
	if rr := strings.TrimSpace(string(b.CallRecording)); rr != "" && rr != "null" {
		var cr KylasRecording
		shapeOK := true
		switch {
		case route == "sync" && strings.HasPrefix(rr, `"`):
			_ = json.Unmarshal(b.CallRecording, &cr.URL)
		case route == "sync":
			bad("callRecording", "must be the recording's URL (a string) on the sync route")
			shapeOK = false
		case strings.HasPrefix(rr, `"`):
			bad("callRecording", "must be {url, fileName, data}")
			shapeOK = false
		default:
			var obj struct {
				URL      string  `json:"url"`
				FileName string  `json:"fileName"`
				Data     *string `json:"data"`
			}
			if err := json.Unmarshal(b.CallRecording, &obj); err != nil {
				bad("callRecording", "must be {url, fileName, data}")
				shapeOK = false
			}
			cr = KylasRecording{URL: obj.URL, FileName: obj.FileName}
		}
		// The URL is checked only once the shape is right: a recording in the wrong
		// shape is one error, not a second, false one about its (valid) URL.
		if shapeOK {
			if u, err := url.Parse(cr.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("callRecording.url", "must be an http(s) URL")
			} else {
				rec.CallRecording = &cr
			}
		}
	}
	if rt := strings.TrimSpace(string(b.RelatedTo)); rt != "" && rt != "null" {
		var list []KylasRelated
		array := strings.HasPrefix(rt, "[")
		shapeOK := true
		switch {
		case array && route == "create":
			// The plain route's relatedTo is one object, {"id", "entity", "phoneNumber"}
			// (kylastech/kylas-crm-mcp-server registry/call_log.yaml call_log.create and
			// .update, entities/call_log.py create_call_log_logic); only search results
			// carry a list. An empty list is refused above, as missing.
			if rt != "[]" {
				bad("relatedTo", "must be {id, entity, phoneNumber}, an object, not a list")
			}
			shapeOK = false
		case array:
			shapeOK = json.Unmarshal(b.RelatedTo, &list) == nil
		default:
			list = make([]KylasRelated, 1)
			shapeOK = json.Unmarshal(b.RelatedTo, &list[0]) == nil
		}
		if !shapeOK && (!array || route != "create") { // a plain-route list is refused above
			bad("relatedTo", "must be {id, entity} or a list of them")
		}
		for _, e := range list {
			if e.ID <= 0 || !slices.Contains(kylasEntities, e.Entity) {
				bad("relatedTo", "needs a positive id and entity lead, contact or deal")
				shapeOK = false
				break
			}
		}
		if shapeOK {
			k.mu.Lock()
			for i, e := range list {
				if !k.entityExists(e.Entity, e.ID) {
					field := "relatedTo.id" // named as the body has it: an object ...
					if array {
						field = fmt.Sprintf("relatedTo[%d].id", i) // ... or a list
					}
					bad(field, fmt.Sprintf("no %s with id %d", e.Entity, e.ID))
				}
			}
			k.mu.Unlock()
		}
		rec.RelatedTo = list
	}
	if owner != 0 {
		if !k.HasUser(owner) {
			bad("ownerId", fmt.Sprintf("no user with id %d", owner))
		}
	}
	if len(fe) > 0 {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "validation failed", fe...)
		return rec, 0, false
	}
	if rec.RelatedTo == nil {
		rec.RelatedTo = []KylasRelated{}
	}
	if rec.Notes == nil {
		rec.Notes = []KylasNote{}
	}
	return rec, owner, true
}

// Unknown ids. Kylas answers a reference to a record or user it does not have with
// a 400 whose exact code no public source shows; the sandbox refuses it with its
// usual invalid_request + fieldErrors[{field, message}] (the shape of Kylas's errors:
// kylastech/kylas-crm-mcp-server, handle_api_response; docs/crm-contracts.md) — the
// stricter reading of a body whose relatedTo, ownerId or assignedTo names no lead,
// contact or user: a mistyped fallback owner must fail in dev as it would in
// production, not create a record owned by nobody.

// entityExists reports whether a call log or task may name entity id. The sandbox
// keeps leads and contacts only, so every deal (or company) id is unknown.
// Callers hold k.mu.
func (k *Kylas) entityExists(entity string, id int64) bool {
	switch strings.ToLower(entity) {
	case "lead":
		_, ok := k.leads[id]
		return ok
	case "contact":
		_, ok := k.contacts[id]
		return ok
	}
	return false
}

// ownerRef names an owner. Owners given in a body are checked against the users
// first; the key's user may be absent from them (a sandbox configured without it),
// and is then named as GET /v1/users/me names it. Callers hold k.mu.
func (k *Kylas) ownerRef(id int64) KylasIDName {
	if u, ok := k.users[id]; ok {
		return KylasIDName{ID: id, Name: u.Name()}
	}
	return KylasIDName{ID: id, Name: k.keyUser().Name()}
}

// keyUser is the api-key's user: a sandbox user when KeyUserID is one (dev's is),
// else a stand-in "API User". Callers hold k.mu.
func (k *Kylas) keyUser() KylasUser {
	if u, ok := k.users[k.opts.KeyUserID]; ok {
		return u
	}
	return KylasUser{ID: k.opts.KeyUserID, FirstName: "API", LastName: "User", Active: true}
}

// noteCallIDRE finds calltrack's "Call ID: <id>" line in a note.
var noteCallIDRE = regexp.MustCompile(`(?m)^Call ID: (\S+)\s*$`)

// CallID is the call the record logs: its remoteId (sync route) or its note's
// "Call ID:" line (plain route, which has no remoteId field).
func (r KylasCallLog) CallID() string {
	if r.RemoteID != "" {
		return r.RemoteID
	}
	for _, n := range r.Notes {
		if m := noteCallIDRE.FindStringSubmatch(n.Description); m != nil {
			return m[1]
		}
	}
	return ""
}

// store adds a record. A remoteId already stored still gets a new record (the
// real API's dedupe is unknown; we must not rely on one) but is counted.
func (k *Kylas) store(rec KylasCallLog, owner int64, route string) KylasCallLog {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.nextID++
	now := k.opts.Now().UTC()
	rec.ID, rec.Owner, rec.Route, rec.CreatedAt, rec.UpdatedAt = k.nextID, k.ownerRef(owner), route, now, now
	if callID := rec.CallID(); callID != "" {
		if k.byRemote[callID] > 0 {
			k.duplicates++
		}
		k.byRemote[callID]++
	}
	k.records = append(k.records, &rec)
	return rec.clone()
}

func (k *Kylas) syncCallLog(w http.ResponseWriter, r *http.Request) {
	if tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); tok == "" || tok != k.opts.BearerToken {
		k.gate.reject()
		kylasFail(w, http.StatusUnauthorized, "unauthorized",
			"the sync route needs a marketplace app's OAuth token (Authorization: Bearer)")
		return
	}
	rec, owner, ok := k.parseCallLog(w, r, "sync", false)
	if ok {
		writeJSON(w, http.StatusCreated, k.store(rec, owner, "sync"))
	}
}

// createCallLog is the plain create: it has no owner field, the key's user owns it.
func (k *Kylas) createCallLog(w http.ResponseWriter, r *http.Request) {
	rec, _, ok := k.parseCallLog(w, r, "create", false)
	if ok {
		writeJSON(w, http.StatusCreated, k.store(rec, k.opts.KeyUserID, "create"))
	}
}

// updateCallLog replaces a record, keeping its id, owner (unless ownerId is
// given), route and creation time.
func (k *Kylas) updateCallLog(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	old := k.find(id)
	if old == nil {
		kylasFail(w, http.StatusNotFound, "not_found", "call log not found")
		return
	}
	rec, owner, ok := k.parseCallLog(w, r, old.Route, true)
	if !ok {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	i := slices.IndexFunc(k.records, func(c *KylasCallLog) bool { return c.ID == id })
	if i < 0 { // reset in between
		kylasFail(w, http.StatusNotFound, "not_found", "call log not found")
		return
	}
	prev := k.records[i]
	rec.ID, rec.Owner, rec.Route, rec.CreatedAt, rec.UpdatedAt = prev.ID, prev.Owner, prev.Route, prev.CreatedAt, k.opts.Now().UTC()
	if owner != 0 {
		rec.Owner = k.ownerRef(owner)
	}
	k.records[i] = &rec
	writeJSON(w, http.StatusOK, rec.clone())
}

func (k *Kylas) find(id int64) *KylasCallLog {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.records {
		if c.ID == id {
			c := c.clone()
			return &c
		}
	}
	return nil
}

func (k *Kylas) getCallLog(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if c := k.find(id); c != nil {
		writeJSON(w, http.StatusOK, c)
		return
	}
	kylasFail(w, http.StatusNotFound, "not_found", "call log not found")
}

// page is Kylas's paged listing shape.
type page[T any] struct {
	Content       []T `json:"content"`
	TotalElements int `json:"totalElements"`
	TotalPages    int `json:"totalPages"`
	Page          int `json:"page"`
	Size          int `json:"size"`
}

// paginate cuts all into the page asked for; first is the number of the first
// page (call logs count from 1, search from 0).
func paginate[T any](all []T, r *http.Request, first, defSize, maxSize int) (page[T], error) {
	q := r.URL.Query()
	p, size := first, defSize
	var err error
	if s := q.Get("page"); s != "" {
		if p, err = strconv.Atoi(s); err != nil || p < first {
			return page[T]{}, fmt.Errorf("page must be a number >= %d", first)
		}
	}
	if s := q.Get("size"); s != "" {
		if size, err = strconv.Atoi(s); err != nil || size < 1 || size > maxSize {
			return page[T]{}, fmt.Errorf("size must be 1..%d", maxSize)
		}
	}
	from := min((p-first)*size, len(all))
	to := min(from+size, len(all))
	return page[T]{
		Content: append([]T{}, all[from:to]...), TotalElements: len(all),
		TotalPages: (len(all) + size - 1) / size, Page: p, Size: size,
	}, nil
}

// listCallLogs is the real API's listing (page from 1, size <= 100 there; the
// sandbox allows up to 1000 for inspection).
func (k *Kylas) listCallLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	relID, relType := q.Get("relatedToId"), q.Get("relatedToType")
	var all []KylasCallLog
	for _, c := range k.Records() {
		if relID == "" || slices.ContainsFunc(c.RelatedTo, func(e KylasRelated) bool {
			return strconv.FormatInt(e.ID, 10) == relID && (relType == "" || strings.EqualFold(e.Entity, relType))
		}) {
			all = append(all, c)
		}
	}
	pg, err := paginate(all, r, 1, 100, 1000)
	if err != nil {
		kylasFail(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

// --- search ---

type kylasSearchBody struct {
	Fields   []string `json:"fields"`
	JSONRule *struct {
		Condition string `json:"condition"`
		Rules     []struct {
			ID       string          `json:"id"`
			Field    string          `json:"field"`
			Operator string          `json:"operator"`
			Value    json.RawMessage `json:"value"`
		} `json:"rules"`
	} `json:"jsonRule"`
}

// search serves POST /v1/search/{lead|contact}. Only the free-text multi_field
// rule is supported (an unsupported rule is a 400, so a mistake shows); no rule
// lists everything. Pages count from 0, as in Kylas's search.
func (k *Kylas) search(entity string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b kylasSearchBody
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil && !errors.Is(err, io.EOF) {
			kylasFail(w, http.StatusBadRequest, "invalid_request", "malformed JSON body")
			return
		}
		var terms []string
		if b.JSONRule != nil {
			for _, rule := range b.JSONRule.Rules {
				var v string
				if rule.Operator != "multi_field" || json.Unmarshal(rule.Value, &v) != nil {
					kylasFail(w, http.StatusBadRequest, "invalid_request", "sandbox search supports only multi_field rules with a text value",
						kylasFieldError{"jsonRule.rules", "unsupported rule " + rule.ID})
					return
				}
				terms = append(terms, v)
			}
		}
		k.mu.Lock()
		var hits []KylasPerson
		for _, p := range k.people(entity) {
			if !slices.ContainsFunc(terms, func(t string) bool { return !personMatches(p, t) }) {
				p.PhoneNumbers = slices.Clone(p.PhoneNumbers)
				hits = append(hits, p)
			}
		}
		k.mu.Unlock()
		slices.SortFunc(hits, func(a, b KylasPerson) int { return cmp.Compare(a.ID, b.ID) })
		pg, err := paginate(hits, r, 0, 10, 1000)
		if err != nil {
			kylasFail(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, pg)
	}
}

// personMatches is the sandbox's free-text match: a phone-looking term matches when
// its digits are found in one of the person's numbers as stored (phoneNumbers[].value,
// the dial code apart), e.g. "9711636496" matches a value of 9711636496, 09711636496
// or +919711636496, but "+919711636496" does not match 9711636496 stored with dial
// code +91. Kylas documents the multi_field search only as searching phoneNumbers
// among other fields (kylastech/kylas-crm-mcp-server main.py, search_leads_by_term);
// matching within the stored value alone is the stricter reading. Any other term
// matches a name, case-insensitively.
func personMatches(p KylasPerson, term string) bool {
	term = strings.TrimSpace(term)
	if term == "" {
		return true
	}
	if d := digits(term); d != "" && strings.Trim(term, "+-() .0123456789") == "" {
		for _, ph := range p.PhoneNumbers {
			if strings.Contains(digits(ph.Value), d) {
				return true
			}
		}
		return false
	}
	return strings.Contains(strings.ToLower(p.name()), strings.ToLower(term))
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// --- users ---

func (k *Kylas) sortedUsers() []KylasUser {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]KylasUser, 0, len(k.users))
	for _, u := range k.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b KylasUser) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (k *Kylas) getUser(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	k.mu.Lock()
	u, ok := k.users[id]
	k.mu.Unlock()
	if !ok {
		kylasFail(w, http.StatusNotFound, "not_found", "user not found")
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// lookupUsers serves GET /v1/users/lookup?q=name:<text>&page=&size=: id and name
// only, paged from 0, at most 50 a page (kylastech/kylas-crm-mcp-server
// shared/users.py: "size: Page size, max 50"; q "name:" lists everyone). There is no
// documented listing of whole users: a sync looks users up, then gets each.
func (k *Kylas) lookupUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if q == "" {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "q is required, e.g. name:")
		return
	}
	text := strings.ToLower(strings.TrimPrefix(q, "name:"))
	out := []KylasIDName{}
	for _, u := range k.sortedUsers() {
		if strings.Contains(strings.ToLower(u.Name()), text) {
			out = append(out, KylasIDName{ID: u.ID, Name: u.Name()})
		}
	}
	pg, err := paginate(out, r, 0, 10, 50)
	if err != nil {
		kylasFail(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

// me serves GET /v1/users/me: the key's own user (kylastech/kylas-crm-mcp-server
// shared/users.py), what "test connection" reads.
func (k *Kylas) me(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	u := k.keyUser()
	k.mu.Unlock()
	writeJSON(w, http.StatusOK, u)
}

// --- control ---

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "id must be a positive number")
		return 0, false
	}
	return id, true
}

// putUser upserts a user: {"firstName","lastName","email","active"} (active
// defaults to true).
func (k *Kylas) putUser(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var b struct {
		FirstName string `json:"firstName"`
		LastName  string `json:"lastName"`
		Email     string `json:"email"`
		Active    *bool  `json:"active"`
	}
	if err := decodeStrict(r, &b); err != nil {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "bad user body: "+err.Error())
		return
	}
	u := KylasUser{ID: id, FirstName: b.FirstName, LastName: b.LastName, Email: b.Email, Active: b.Active == nil || *b.Active}
	k.AddUser(u)
	writeJSON(w, http.StatusOK, u)
}

func (k *Kylas) deleteUser(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if !k.RemoveUser(id) {
		kylasFail(w, http.StatusNotFound, "not_found", "user not found")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// putPerson upserts a lead or contact: {"firstName","lastName","phoneNumbers":[{"value":"+91..."}]}.
func (k *Kylas) putPerson(entity string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		var p KylasPerson
		if err := decodeStrict(r, &p); err != nil {
			kylasFail(w, http.StatusBadRequest, "invalid_request", "bad "+entity+" body: "+err.Error())
			return
		}
		p.ID = id
		k.addPerson(entity, p)
		writeJSON(w, http.StatusOK, p)
	}
}

// deletePersonHandler deletes a lead or contact (DeleteLead, DeleteContact).
func (k *Kylas) deletePersonHandler(entity string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		if !k.deletePerson(entity, id) {
			kylasFail(w, http.StatusNotFound, "not_found", entity+" not found")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (k *Kylas) putFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	err := decodeStrict(r, &f)
	if err == nil {
		err = k.SetFaults(f)
	}
	if err != nil {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "bad faults: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, f)
}
