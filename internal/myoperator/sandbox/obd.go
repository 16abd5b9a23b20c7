package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// The outbound-call API (POST /obd-api-v1), as strict as MyOperator's "Campaigns API"
// article and the public integrations that call it (docs/myoperator-api.md,
// "Outbound calls"); where they are silent, the stricter reading:
//   - x-api-key, company_id, secret_token and public_ivr_id must be the account's
//     (403 otherwise); the body is JSON;
//   - type "1" (peer to peer) only — IVR campaigns are not simulated (400);
//   - number in E.164 (+<country><number>); exactly one of user_id and number_2
//     (both: 403, as integrators found; neither: 400);
//   - reference_id required and unique: a repeat is refused (403);
//   - max_call_duration, when given, an integer of at most 5400;
//   - a user the sandbox lists as disabled is refused (403).
// An accepted request answers 200 {"status":"success","code":"200","details",
// "unique_id","reference_id"}; then, as MyOperator does, the call rings the agent and
// the customer: the sandbox posts the inCall webhooks (ringing, answered) and, when
// the call ends, the afterCall (an outgoing call, _ns 2, our reference_id as _cri),
// and records it in the call log (what POST /search finds).

// OBDAccount is an account the outbound API accepts, and where its call webhooks go.
type OBDAccount struct {
	CompanyID   string
	APIKey      string // x-api-key
	SecretToken string
	PublicIVRID string
	// APIToken is the account whose call log (POST /search) the placed calls join:
	// Options.Token or one of Options.MoreTokens; empty: Options.Token.
	APIToken string
	// InCallWebhook and AfterCallWebhook receive the placed calls' webhooks (form field
	// myoperator=<json>); empty: not delivered (the call is still logged).
	InCallWebhook    string
	AfterCallWebhook string
}

// OBDCall is a call placed through the outbound API, as the sandbox keeps it.
type OBDCall struct {
	ReferenceID string    `json:"reference_id"`
	UniqueID    string    `json:"unique_id"`
	CallID      string    `json:"call_id"` // the uid its webhooks carry
	CompanyID   string    `json:"company_id"`
	UserID      string    `json:"user_id,omitempty"`
	Number2     string    `json:"number_2,omitempty"`
	Number      string    `json:"number"`
	At          time.Time `json:"at"`
	State       string    `json:"state"` // queued, ringing, answered, ended
	Delivered   []string  `json:"delivered"`
	Errors      []string  `json:"errors,omitempty"`
}

type obdState struct {
	mu       sync.Mutex
	accounts []OBDAccount // Options.OBDAccounts, then AddOBDAccount's
	calls    []*OBDCall
	refs     map[string]bool
	wg       sync.WaitGroup
}

// obdStep is the pause between a placed call's events (ringing, answered, ended).
const obdStep = 100 * time.Millisecond

var e164Pattern = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

func (s *Server) routesOBD() {
	s.obd = &obdState{refs: map[string]bool{}, accounts: slices.Clone(s.opts.OBDAccounts)}
	s.mux.HandleFunc("POST /obd-api-v1", s.placeOBD)
	// Control: no auth.
	s.mux.HandleFunc("GET /obd", func(w http.ResponseWriter, r *http.Request) {
		writeUsersJSON(w, http.StatusOK, map[string]any{"calls": s.OBDCalls()})
	})
}

// AddOBDAccount adds an account the outbound API accepts (its webhook URLs may be
// known only once calltrack listens).
func (s *Server) AddOBDAccount(a OBDAccount) {
	s.obd.mu.Lock()
	defer s.obd.mu.Unlock()
	s.obd.accounts = append(s.obd.accounts, a)
}

// OBDCalls lists the calls placed through the outbound API, oldest first.
func (s *Server) OBDCalls() []OBDCall {
	s.obd.mu.Lock()
	defer s.obd.mu.Unlock()
	out := make([]OBDCall, 0, len(s.obd.calls))
	for _, c := range s.obd.calls {
		cp := *c
		cp.Delivered = slices.Clone(c.Delivered)
		cp.Errors = slices.Clone(c.Errors)
		out = append(out, cp)
	}
	return out
}

// WaitOBD waits until every placed call's webhooks are delivered (tests' cleanup).
func (s *Server) WaitOBD() { s.obd.wg.Wait() }

func obdFail(w http.ResponseWriter, status int, details string) {
	writeUsersJSON(w, status, map[string]any{"status": "error", "code": fmt.Sprint(status), "details": details})
}

func (s *Server) placeOBD(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("x-api-key")
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		obdFail(w, http.StatusBadRequest, "body must be JSON (Content-Type: application/json)")
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		obdFail(w, http.StatusBadRequest, "unreadable body")
		return
	}
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		obdFail(w, http.StatusBadRequest, "body is not a JSON object")
		return
	}
	str := func(k string) (string, bool) {
		switch v := b[k].(type) {
		case nil:
			return "", true
		case string:
			return strings.TrimSpace(v), true
		}
		return "", false
	}
	field := func(k string) string { v, _ := str(k); return v }
	var acct *OBDAccount
	s.obd.mu.Lock()
	for _, a := range s.obd.accounts {
		if a.SecretToken != "" && a.SecretToken == field("secret_token") {
			acct = &a
		}
	}
	s.obd.mu.Unlock()
	switch {
	case key == "" || acct == nil || key != acct.APIKey || field("company_id") != acct.CompanyID:
		obdFail(w, http.StatusForbidden, "invalid credentials (x-api-key, company_id, secret_token)")
		return
	case field("public_ivr_id") != acct.PublicIVRID:
		obdFail(w, http.StatusForbidden, "invalid public_ivr_id")
		return
	}
	for _, k := range []string{"type", "number", "user_id", "number_2", "reference_id", "caller_id", "region", "group"} {
		if _, ok := str(k); !ok {
			obdFail(w, http.StatusBadRequest, k+" must be a string")
			return
		}
	}
	typ, number, user, number2, ref := field("type"), field("number"), field("user_id"), field("number_2"), field("reference_id")
	switch {
	case typ != "1":
		obdFail(w, http.StatusBadRequest, `type must be "1" (peer to peer); IVR campaigns are not simulated`)
		return
	case !e164Pattern.MatchString(number):
		obdFail(w, http.StatusBadRequest, "number must be in E.164 form (+<country code><number>)")
		return
	case user != "" && number2 != "":
		obdFail(w, http.StatusForbidden, "user_id and number_2 are mutually exclusive")
		return
	case user == "" && number2 == "":
		obdFail(w, http.StatusBadRequest, "user_id or number_2 is required")
		return
	case number2 != "" && !e164Pattern.MatchString(number2):
		obdFail(w, http.StatusBadRequest, "number_2 must be in E.164 form")
		return
	case ref == "":
		obdFail(w, http.StatusBadRequest, "reference_id is required")
		return
	}
	if v, ok := b["max_call_duration"]; ok {
		f, isNum := v.(float64)
		if !isNum || f != float64(int64(f)) || f < 1 || f > 5400 {
			obdFail(w, http.StatusBadRequest, "max_call_duration must be an integer between 1 and 5400")
			return
		}
	}
	var agent *User
	if user != "" {
		for _, u := range s.Users() {
			if u.ID == user {
				agent = &u
			}
		}
		if agent != nil && !agent.Enabled {
			obdFail(w, http.StatusForbidden, "user is disabled")
			return
		}
	}
	st := s.obd
	st.mu.Lock()
	if st.refs[ref] {
		st.mu.Unlock()
		obdFail(w, http.StatusForbidden, "duplicate reference_id")
		return
	}
	st.refs[ref] = true
	now := time.Now()
	c := &OBDCall{ReferenceID: ref, UniqueID: randHex(8), CallID: fmt.Sprintf("obd.%d.%s", now.Unix(), randHex(4)),
		CompanyID: acct.CompanyID, UserID: user, Number2: number2, Number: number, At: now, State: "queued"}
	st.calls = append(st.calls, c)
	st.wg.Add(1)
	st.mu.Unlock()
	go s.ring(*acct, c, agent)
	writeUsersJSON(w, http.StatusOK, map[string]any{"status": "success", "code": "200",
		"details": "Request accepted successfully", "unique_id": c.UniqueID, "reference_id": ref})
}

// ring plays the placed call: the agent's phone rings (inCall, ringing), the agent
// answers and the customer is bridged (inCall, answered), the call ends (afterCall).
func (s *Server) ring(acct OBDAccount, c *OBDCall, agent *User) {
	defer s.obd.wg.Done()
	ag := User{ID: c.UserID}
	if agent != nil {
		ag = *agent
	}
	agentPhone := ""
	if ag.ContactNumber != "" {
		agentPhone = strings.TrimPrefix(ag.CountryCode, "+") + ag.ContactNumber
	} else if c.Number2 != "" {
		agentPhone = strings.TrimPrefix(c.Number2, "+")
	}
	customer10 := c.Number[max(len(c.Number)-10, 0):]
	incall := func(state, event string) map[string]any {
		users := []string{}
		if agentPhone != "" {
			users = append(users, agentPhone)
		}
		return map[string]any{"id": c.UniqueID, "uid": c.CallID, "reference_id": c.UniqueID, "client_ref_id": c.ReferenceID,
			"company_id": c.CompanyID, "clid_raw": strings.TrimPrefix(c.Number, "+"), "clid": customer10, "rdnis": "unknown",
			"call_state": state, "event": event, "status": nil, "users": users, "_ns": "2", "public_ivr_id": acct.PublicIVRID,
			"created": c.At.UTC().Format("2006-01-02 15:04:05"), "call_time": c.At.UTC().Format("2006-01-02 15:04:05"), "job_id": nil}
	}
	time.Sleep(obdStep)
	s.obdEvent(c, "ringing", acct.InCallWebhook, incall("0", "1"))
	time.Sleep(obdStep)
	s.obdEvent(c, "answered", acct.InCallWebhook, incall("1", "2"))
	time.Sleep(obdStep)
	start, end := c.At.Unix(), time.Now().Unix()+30 // a 30-second conversation
	rr := map[string]any{"_id": ag.ID, "_na": ag.Name, "_em": ag.Email, "_ex": ag.Extension, "_ct": ag.ContactNumber}
	if agentPhone != "" {
		rr["_nr"] = "+" + agentPhone
	}
	dur := fmt.Sprintf("00:%02d:%02d", (end-start)/60, (end-start)%60)
	ac := map[string]any{"_ai": c.UniqueID, "_ci": c.CompanyID, "_cr": customer10, "_cl": c.Number, "_st": start, "_et": end,
		"_ts": end + 1, "_dr": dur, "_ty": 1, "_ev": 2, "_su": 1, "_ns": "2", "_dn": "", "_di": "", "_fn": "", "_fu": "",
		"_pm": []map[string]any{{"ky": "ui", "vl": c.CallID}}, "_cn": []any{},
		"_ld": []map[string]any{{"_rst": c.At.UTC().Format("2006-01-02 15:04:05"), "_ds": "ANSWER", "_did": "", "_rr": []any{rr},
			"_tt": []any{}, "_su": "1", "_st": start, "_et": end, "_dr": dur, "_ac": "received"}},
		"_us": []map[string]any{{"ky": ag.ID, "vl": "received"}}, "_ri": c.UniqueID, "_cri": c.ReferenceID}
	raw, _ := json.Marshal(ac)
	if _, err := s.RecordCallIn(acct.APIToken, raw); err != nil {
		s.obdNote(c, "", "record: "+err.Error())
	}
	s.obdEvent(c, "ended", acct.AfterCallWebhook, ac)
}

// obdEvent moves the call to state and posts the payload to url (form field
// myoperator=<json>, as MyOperator's classic webhooks).
func (s *Server) obdEvent(c *OBDCall, state, target string, payload map[string]any) {
	s.obd.mu.Lock()
	c.State = state
	s.obd.mu.Unlock()
	if target == "" {
		return
	}
	raw, _ := json.Marshal(payload)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(url.Values{"myoperator": {string(raw)}}.Encode()))
	if err != nil {
		s.obdNote(c, "", state+": "+err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := webhookClient.Do(req)
	if err != nil {
		s.obdNote(c, "", state+": webhook not delivered")
		return
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		s.obdNote(c, "", fmt.Sprintf("%s: webhook answered %d", state, res.StatusCode))
		return
	}
	s.obdNote(c, state, "")
}

func (s *Server) obdNote(c *OBDCall, delivered, errText string) {
	s.obd.mu.Lock()
	defer s.obd.mu.Unlock()
	if delivered != "" {
		c.Delivered = append(c.Delivered, delivered)
	}
	if errText != "" {
		c.Errors = append(c.Errors, errText)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
