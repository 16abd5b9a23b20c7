package myoperator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/phone"
)

// SourceV2 is the call.Log / call.Live Source of Webhook v2 events.
const SourceV2 = call.SourceMyOperatorV2

// Webhook v2 call event types (docs/myoperator.md, "Webhook v2").
const (
	V2CallInitiated   = "call.initiated"
	V2CallDialBegin   = "call.dial_begin"
	V2CallAnswered    = "call.answered"
	V2CallEnd         = "call.end"
	V2CallSummary     = "call.summary"
	V2CallDisposition = "call.disposition"
)

// V2Kind says what a Webhook v2 event becomes in calltrack.
type V2Kind int

const (
	// V2Unknown is an event type calltrack does not handle (WhatsApp events,
	// call.ivr_started, ...): accepted and kept, never parsed beyond the envelope.
	V2Unknown V2Kind = iota
	// V2Live is call.initiated, call.dial_begin or call.answered: a call.Live.
	V2Live
	// V2Summary is call.summary: the call.Log to write.
	V2Summary
	// V2End is call.end: a call.Log that is written only when no call.summary (or
	// v1 afterCall) of the call comes within the wait; its agent is known by phone.
	V2End
	// V2Disposition is call.disposition: a call.RecordingEvent with a Disposition.
	V2Disposition
)

var v2KindNames = map[V2Kind]string{V2Unknown: "unknown", V2Live: "live", V2Summary: "summary", V2End: "end", V2Disposition: "disposition"}

func (k V2Kind) String() string { return v2KindNames[k] }

// MarshalText names the kind (golden files, logs).
func (k V2Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// V2Event is a parsed Webhook v2 event: its envelope, and the calltrack event it
// maps to (one of Live, Log, Amendment, by Kind; none for V2Unknown).
type V2Event struct {
	ID        string               `json:"event_id,omitempty"` // dedupe key; "" when the envelope has none
	Type      string               `json:"event_type"`         // lower-cased
	Version   string               `json:"event_version,omitempty"`
	CompanyID string               `json:"company_id,omitempty"`
	CallID    string               `json:"call_id,omitempty"` // session_id (payload id); may be "" for unknown types
	Kind      V2Kind               `json:"kind"`
	Live      *call.Live           `json:"live,omitempty"`
	Log       *call.Log            `json:"log,omitempty"`
	Amendment *call.RecordingEvent `json:"amendment,omitempty"`
}

// v2Envelope is the common envelope of every Webhook v2 event.
type v2Envelope struct {
	EventID    flexString      `json:"event_id"`
	CompanyID  flexString      `json:"company_id"`
	EventType  flexString      `json:"event_type"`
	Version    flexString      `json:"event_version"`
	Timestamp  flexString      `json:"timestamp"`
	Direction  flexString      `json:"direction"`
	SessionID  flexString      `json:"session_id"`
	SystemID   flexString      `json:"system_identifier"` // the DID; "" or null on call.summary
	CustomerID flexString      `json:"customer_identifier"`
	Payload    json.RawMessage `json:"payload"`
}

// v2Payload holds the payload keys of every call event type; each uses some.
type v2Payload struct {
	ID          flexString        `json:"id"`
	SessionID   flexString        `json:"session_id"`
	CallID      flexString        `json:"call_id"`
	DID         flexString        `json:"did"`
	Direction   flexString        `json:"direction"`
	Customer    flexString        `json:"customer_number"`
	Status      flexString        `json:"status"`
	StartedAt   flexString        `json:"started_at"`
	EndedAt     flexString        `json:"ended_at"`
	Category    flexString        `json:"category"`
	Duration    flexString        `json:"duration"`
	FileName    flexString        `json:"recording_filename"`
	Department  v2Named           `json:"department"`
	DeptID      flexString        `json:"dept_id"`
	Legs        flexList[v2Leg]   `json:"legs"`
	Disposition v2Named           `json:"disposition"`
	DispName    flexString        `json:"disposition_name"`
	Name        flexString        `json:"name"`
	Title       flexString        `json:"title"`
	Comment     flexString        `json:"comment"`
	Remarks     flexString        `json:"remarks"`
	Notes       flexString        `json:"notes"`
	Comments    flexList[v2Named] `json:"comments"`
}

// v2Leg is one entry of payload.legs.
type v2Leg struct {
	Index      flexString `json:"leg_index"`
	Type       flexString `json:"type"` // customer | agent
	Phone      flexString `json:"phone_number"`
	Result     flexString `json:"result"`      // connected | answered | not_answered (dialing, ringing live)
	DialStatus flexString `json:"dial_status"` // ANSWER | BUSY | NOANSWER | ""
	Talk       flexString `json:"talk_duration"`
	StartedAt  flexString `json:"started_at"`
	EndedAt    flexString `json:"ended_at"`
	AnsweredAt flexString `json:"answered_at"`
	Agent      v2Agent    `json:"agent"` // call.summary only
	Department v2Named    `json:"department"`
	DeptID     flexString `json:"dept_id"`
}

// v2Agent is a summary leg's agent. Anything but an object reads as no agent.
type v2Agent struct {
	UUID      flexString `json:"uuid"`
	Name      flexString `json:"name"`
	Email     flexString `json:"email"`
	Contact   flexString `json:"contact"`
	Extension flexString `json:"extension"`
}

func (a *v2Agent) UnmarshalJSON(b []byte) error {
	if kind(b) == "object" {
		type fields v2Agent // plain decoding
		var f fields
		if json.Unmarshal(b, &f) == nil {
			*a = v2Agent(f)
		}
	}
	return nil
}

// v2Named is a thing MyOperator may send as a string or as an object with an id
// and a name (departments, dispositions, comments).
type v2Named struct {
	ID   flexString
	Name flexString
	Text flexString // a comment's or disposition's free text
}

func (n *v2Named) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch kind(b) {
	case "object":
		var f struct {
			ID          flexString `json:"id"`
			Name        flexString `json:"name"`
			Title       flexString `json:"title"`
			Label       flexString `json:"label"`
			Value       flexString `json:"value"`
			Disposition flexString `json:"disposition"`
			Comment     flexString `json:"comment"`
			Text        flexString `json:"text"`
			Remarks     flexString `json:"remarks"`
		}
		if json.Unmarshal(b, &f) == nil {
			n.ID = f.ID
			n.Name = firstOf(f.Name, f.Title, f.Label, f.Disposition, f.Value)
			n.Text = firstOf(f.Comment, f.Text, f.Remarks)
		}
	case "string", "number":
		var s flexString
		_ = s.UnmarshalJSON(b)
		n.Name = s
	}
	return nil
}

func firstOf(vs ...flexString) flexString {
	for _, v := range vs {
		if v.scalar() != "" {
			return v
		}
	}
	return ""
}

// scalar returns f unless it holds an object or array (flexString keeps their JSON text).
func (f flexString) scalar() flexString {
	if s := string(f); s != "" && (s[0] == '{' || s[0] == '[') {
		return ""
	}
	return f
}

// v2TypePattern is what an event type looks like; anything else is not a label.
var v2TypePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+){0,4}$`)

// maxDisposition bounds the disposition text written to a CRM note.
const maxDisposition = 500

// ParseV2 parses a Webhook v2 event (a JSON object) leniently: event_version may be
// "1" or 1, system_identifier "" or null, numbers strings or numbers. It needs an
// event_type; a call event also needs its call (session_id, else payload.id) and, for
// call.end / call.summary, a direction and a status (bridged, missed, voicemail).
// Event types it does not know are returned as V2Unknown, not as errors. Errors wrap
// ErrMalformed. Owners are left nil.
func ParseV2(tenant string, raw []byte, receivedAt time.Time) (*V2Event, error) {
	var env v2Envelope
	if err := decodeObject(raw, &env); err != nil {
		return nil, malformed("v2: %w", err)
	}
	typ := strings.ToLower(env.EventType.scalar().String())
	switch {
	case typ == "":
		return nil, malformed(`v2: "event_type" is missing`)
	case !v2TypePattern.MatchString(typ) || len(typ) > 64:
		return nil, malformed(`v2: "event_type" %s is not an event type`, env.EventType.quote())
	}
	ev := &V2Event{ID: env.EventID.scalar().String(), Type: typ, Version: env.Version.scalar().String(),
		CompanyID: env.CompanyID.scalar().String()}
	if len(ev.ID) > 200 {
		return nil, malformed(`v2: "event_id" is longer than 200 characters`)
	}

	var p v2Payload
	switch kind(env.Payload) {
	case "nothing", "null":
	case "object":
		_ = decodeObject(env.Payload, &p) // valid (the envelope was), every field lenient
	case "string": // double-encoded
		var s string
		var inner v2Payload
		if json.Unmarshal(env.Payload, &s) == nil && decodeObject([]byte(s), &inner) == nil {
			p = inner // a broken inner object is no payload, not part of one
		}
	}
	ev.CallID = firstOf(env.SessionID, p.ID, p.SessionID, p.CallID).String()

	switch typ {
	case V2CallInitiated, V2CallDialBegin, V2CallAnswered:
		ev.Kind = V2Live
	case V2CallSummary:
		ev.Kind = V2Summary
	case V2CallEnd:
		ev.Kind = V2End
	case V2CallDisposition, "disposition":
		ev.Kind = V2Disposition
	default:
		return ev, nil
	}
	if ev.CallID == "" {
		return nil, malformed(`v2 %s: no call id: neither "session_id" nor payload "id"`, typ)
	}
	if err := checkCallID(ev.CallID); err != nil {
		return nil, malformed("v2 %s: %w", typ, err)
	}
	if tenant == "" {
		return nil, malformed("v2 %s: tenant is empty", typ)
	}
	var err error
	switch ev.Kind {
	case V2Live:
		ev.Live = p.live(tenant, ev, &env, receivedAt)
	case V2Summary, V2End:
		ev.Log, err = p.log(tenant, ev, &env, receivedAt)
	case V2Disposition:
		ev.Amendment, err = p.disposition(tenant, ev, receivedAt)
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// direction reads the call's direction from the payload, the envelope or the
// category (an OBD campaign call is placed by the company).
func (p *v2Payload) direction(env *v2Envelope) (call.Direction, bool) {
	for _, d := range []flexString{p.Direction, env.Direction} {
		switch strings.ToLower(d.scalar().String()) {
		case "incoming", "inbound", "in", "1":
			return call.Incoming, true
		case "outgoing", "outbound", "out", "2":
			return call.Outgoing, true
		}
	}
	switch strings.ToLower(p.Category.scalar().String()) {
	case "incoming":
		return call.Incoming, true
	case "obd", "outgoing", "click_to_call", "clicktocall", "c2c":
		return call.Outgoing, true
	}
	return "", false
}

// status maps the v2 call status onto calltrack's.
func v2Status(s flexString) (call.Status, bool) {
	switch strings.ToLower(strings.ReplaceAll(s.scalar().String(), " ", "_")) {
	case "bridged", "answered", "connected":
		return call.Answered, true
	case "missed", "not_answered", "noanswer", "no_answer", "unanswered", "busy", "cancel", "cancelled", "canceled", "failed":
		return call.Missed, true
	case "voicemail", "voice_mail":
		return call.Voicemail, true
	}
	return "", false
}

func (p *v2Payload) log(tenant string, ev *V2Event, env *v2Envelope, receivedAt time.Time) (*call.Log, error) {
	dir, ok := p.direction(env)
	if !ok {
		return nil, malformed(`v2 %s: no direction: want "direction" incoming or outgoing`, ev.Type)
	}
	if p.Status.scalar() == "" {
		return nil, malformed(`v2 %s: payload "status" is missing; want bridged, missed or voicemail`, ev.Type)
	}
	status, ok := v2Status(p.Status)
	if !ok {
		return nil, malformed(`v2 %s: payload "status" must be bridged, missed or voicemail, got %s`, ev.Type, p.Status.quote())
	}
	l := &call.Log{
		Tenant:       tenant,
		CallID:       ev.CallID,
		CompanyID:    ev.CompanyID,
		Source:       SourceV2,
		Direction:    dir,
		Status:       status,
		CallerNumber: p.customer(env),
		CallerRaw:    p.customerRaw(env),
		DID:          firstOf(env.SystemID, p.DID).String(),
		StartedAt:    v2Time(p.StartedAt),
		EndedAt:      v2Time(p.EndedAt),
		ReceivedAt:   receivedAt,
	}
	switch c := strings.ToLower(p.Category.scalar().String()); c {
	case "click_to_call", "clicktocall", "c2c":
		l.ClickToCall = true
	}
	if d, ok := p.Duration.seconds(); ok {
		l.Duration = d
	} else if !l.StartedAt.IsZero() && l.EndedAt.After(l.StartedAt) {
		l.Duration = int(l.EndedAt.Sub(l.StartedAt) / time.Second)
	}
	if fn := p.FileName.scalar(); fn != "" {
		l.Recording = &call.Recording{FileName: fn.String()}
	}

	// Agent legs in leg order; the customer's leg only says the customer was reached.
	var legs []v2Leg
	for _, lg := range p.Legs {
		if lg.isAgent() {
			legs = append(legs, lg)
		}
	}
	slices.SortStableFunc(legs, func(a, b v2Leg) int {
		x, _ := a.Index.int()
		y, _ := b.Index.int()
		return cmp.Compare(x, y)
	})
	var depts []v2Named
	for _, pl := range legs {
		l.Legs = append(l.Legs, pl.toLeg(l.DID))
		depts = append(depts, pl.department())
	}
	l.Agent = call.Attribute(dir, status, l.Legs)
	// The department of the attributed agent's leg, else the call's.
	dept := v2Named{Name: p.Department.Name, ID: firstOf(p.Department.ID, p.DeptID)}
	if l.Agent != nil {
		for i := len(l.Legs) - 1; i >= 0; i-- {
			if slices.Contains(l.Legs[i].Agents, *l.Agent) && (depts[i].Name != "" || depts[i].ID != "") {
				dept = depts[i]
				break
			}
		}
	}
	l.Department, l.DepartmentID = dept.Name.String(), dept.ID.String()
	if err := l.Validate(); err != nil {
		return nil, malformed("v2 %s: %w", ev.Type, err)
	}
	return l, nil
}

// customer is the customer's number: the payload's, the envelope's, or the
// customer leg's.
func (p *v2Payload) customer(env *v2Envelope) string {
	cands := []flexString{p.Customer, env.CustomerID}
	for _, lg := range p.Legs {
		if strings.EqualFold(lg.Type.String(), "customer") {
			cands = append(cands, lg.Phone)
		}
	}
	for _, c := range cands {
		if n := phone.E164(c.scalar().String(), ""); n != "" {
			return n
		}
	}
	return ""
}

// customerRaw is call.Log.CallerRaw: what the payload, the envelope or the customer
// leg gave as the customer's number (the first given) when none of them is a phone
// number ("anonymous"); "" when one is.
func (p *v2Payload) customerRaw(env *v2Envelope) string {
	if p.customer(env) != "" {
		return ""
	}
	vals := []string{p.Customer.scalar().String(), env.CustomerID.scalar().String()}
	for _, lg := range p.Legs {
		if strings.EqualFold(lg.Type.String(), "customer") {
			vals = append(vals, lg.Phone.scalar().String())
		}
	}
	return rawCaller(vals...)
}

func (lg v2Leg) isAgent() bool {
	t := strings.ToLower(lg.Type.String())
	return t == "agent" || (t == "" && lg.Agent != v2Agent{})
}

// answered reports whether the agent picked up: `result: answered` or `dial_status:
// ANSWER` (a customer leg's `connected` means reached, not answered).
func (lg v2Leg) answered() bool {
	return strings.EqualFold(lg.Result.String(), "answered") || strings.EqualFold(lg.DialStatus.String(), "ANSWER")
}

func (lg v2Leg) agent() call.Agent {
	ph := phone.E164(lg.Agent.Contact.scalar().String(), "")
	if ph == "" {
		ph = phone.E164(lg.Phone.scalar().String(), "")
	}
	return call.Agent{
		ID:        lg.Agent.UUID.scalar().String(),
		Name:      lg.Agent.Name.scalar().String(),
		Email:     lg.Agent.Email.scalar().String(),
		Extension: lg.Agent.Extension.scalar().String(),
		Phone:     ph,
	}
}

func (lg v2Leg) department() v2Named {
	return v2Named{Name: lg.Department.Name, ID: firstOf(lg.Department.ID, lg.DeptID)}
}

func (lg v2Leg) toLeg(did string) call.Leg {
	out := call.Leg{
		DialStatus: lg.DialStatus.scalar().String(),
		Action:     lg.Result.scalar().String(),
		DID:        did,
		StartedAt:  v2Time(lg.StartedAt),
		EndedAt:    v2Time(lg.EndedAt),
		Answered:   lg.answered(),
	}
	if d, ok := lg.Talk.seconds(); ok {
		out.Duration = d
	}
	if a := lg.agent(); a != (call.Agent{}) {
		out.Agents = []call.Agent{a}
		if out.Answered {
			out.AnsweredBy = &a
		}
	}
	return out
}

func (p *v2Payload) live(tenant string, ev *V2Event, env *v2Envelope, receivedAt time.Time) *call.Live {
	lv := &call.Live{
		Tenant:       tenant,
		CallID:       ev.CallID,
		CompanyID:    ev.CompanyID,
		Source:       SourceV2,
		State:        call.Ringing,
		Direction:    call.Incoming,
		CallerNumber: p.customer(env),
		DID:          firstOf(env.SystemID, p.DID).String(),
		CallTime:     v2Time(env.Timestamp),
		ReceivedAt:   receivedAt,
	}
	if ev.Type == V2CallAnswered {
		lv.State = call.LiveAnswered
	}
	if d, ok := p.direction(env); ok {
		lv.Direction = d
	}
	if lv.CallTime.IsZero() {
		lv.CallTime = v2Time(p.StartedAt)
	}
	// Pop-ups go to the agents rung; once answered, to whoever answered.
	var rung, answered []string
	for _, lg := range p.Legs {
		if !lg.isAgent() {
			continue
		}
		ph := lg.agent().Phone
		if ph == "" {
			continue
		}
		if !slices.Contains(rung, ph) {
			rung = append(rung, ph)
		}
		if lg.answered() && !slices.Contains(answered, ph) {
			answered = append(answered, ph)
		}
	}
	lv.AgentPhones = rung
	if lv.State == call.LiveAnswered && len(answered) > 0 {
		lv.AgentPhones = answered
	}
	return lv
}

// disposition reads the agent's disposition: payload.disposition (a string or an
// object with a name), else disposition_name / name / title; with the agent's
// comment, if any, after it.
func (p *v2Payload) disposition(tenant string, ev *V2Event, receivedAt time.Time) (*call.RecordingEvent, error) {
	name := firstOf(p.Disposition.Name, p.DispName, p.Name, p.Title).String()
	if name == "" {
		return nil, malformed(`v2 %s: no disposition: want payload "disposition" (a name or {"name": ...})`, ev.Type)
	}
	comment := firstOf(p.Disposition.Text, p.Comment, p.Remarks, p.Notes).String()
	if comment == "" {
		for _, c := range p.Comments {
			if t := firstOf(c.Text, c.Name).String(); t != "" {
				comment = t
				break
			}
		}
	}
	text := name
	if comment != "" && comment != name {
		text += call.DispositionCommentSep + comment
	}
	if r := []rune(text); len(r) > maxDisposition {
		text = string(r[:maxDisposition-1]) + "…"
	}
	return &call.RecordingEvent{Tenant: tenant, CallID: ev.CallID, Disposition: text, ReceivedAt: receivedAt}, nil
}

// v2Time reads an ISO-8601 time (with or without a zone; none means UTC), a
// "YYYY-MM-DD HH:MM:SS" GMT time, or epoch seconds.
func v2Time(f flexString) time.Time {
	if t := f.scalar().clock(); !t.IsZero() {
		return t
	}
	if t, err := time.Parse("2006-01-02T15:04:05", string(f)); err == nil {
		return t.UTC()
	}
	return time.Time{}
}
