package myoperator

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/phone"
)

// SourceV1 is the call.Log / call.Live Source of Calling Webhooks (v1) payloads.
const SourceV1 = call.SourceMyOperatorV1

// afterCall is the afterCall (and Disposition) log; see docs/myoperator.md.
type afterCall struct {
	LogID        flexString         `json:"_ai"`
	CompanyID    flexString         `json:"_ci"`
	Caller10     flexString         `json:"_cr"`
	CallerE164   flexString         `json:"_cl"`
	CallerName   flexString         `json:"_cm"` // the contact name MyOperator has for the caller
	CountryCode  flexString         `json:"_cy"`
	Start        flexString         `json:"_st"`
	End          flexString         `json:"_et"`
	Duration     flexString         `json:"_dr"`
	Event        flexString         `json:"_ev"`
	Status       flexString         `json:"_su"`
	Nature       flexString         `json:"_ns"`
	ClientRef    flexString         `json:"_cri"` // the reference_id of an outbound-API request (click-to-call)
	FileName     flexString         `json:"_fn"`
	FileURL      flexString         `json:"_fu"`
	Department   flexString         `json:"_dn"`
	DepartmentID flexString         `json:"_di"`
	Disposition  flexString         `json:"_dsp"`
	Params       flexList[kv]       `json:"_pm"`
	Contacts     checkedList[agent] `json:"_cn"`
	Legs         checkedList[leg]   `json:"_ld"`
	UserStatus   flexList[kv]       `json:"_us"`
	TalkTime     flexList[talkSec]  `json:"_tc"`
}

type leg struct {
	RingStart  flexString         `json:"_rst"`
	DialStatus flexString         `json:"_ds"`
	DID        flexString         `json:"_did"`
	Start      flexString         `json:"_st"`
	End        flexString         `json:"_et"`
	Duration   flexString         `json:"_dr"`
	Status     flexString         `json:"_su"`
	Action     flexString         `json:"_ac"`
	Receivers  checkedList[agent] `json:"_rr"`
	Transfers  checkedList[agent] `json:"_tt"`
}

// talkSec is a `_tc` entry: a user's talk time in seconds (meaning inferred).
type talkSec struct {
	User flexString `json:"ye"`
	Secs flexString `json:"yf"`
}

// agent is a `_rr` / `_tt` / `_cn` item. Items that are a bare string or number
// are taken as the user id; a list or a bool is no agent (errNotAgent).
type agent struct {
	ID        flexString `json:"_id"`
	Name      flexString `json:"_na"`
	Email     flexString `json:"_em"`
	Extension flexString `json:"_ex"`
	Contact   flexString `json:"_ct"`
	Number    flexString `json:"_nr"`
}

// errNotAgent is an agent item's error for a value that names no agent: its list
// skips it, and says so (checkedList).
var errNotAgent = errors.New("not an agent")

func (a *agent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '{':
		type fields agent // no UnmarshalJSON: plain decoding
		var f fields
		if json.Unmarshal(b, &f) == nil {
			*a = agent(f)
		}
	case 'n':
	case '[', 't', 'f':
		return errNotAgent
	default:
		return a.ID.UnmarshalJSON(b)
	}
	return nil
}

// UnmarshalJSONFrom is UnmarshalJSON for decodeObject's decoder.
func (a *agent) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == '{' {
		var f agent
		if err := readObject(dec, &f, agentMembers); err != nil {
			return err
		}
		*a = f
		return nil
	}
	return readInto(dec, a)
}

// ParseAfterCall turns an afterCall log (the JSON object from ExtractJSON) into a
// call.Log attributed with call.Attribute. It needs a call id (`_pm` "ui", else
// `_ai`), `_ev` 1 or 2 and `_su` 1, 2 or 3; everything else is optional, and
// numbers may come as strings. Errors wrap ErrMalformed. Owner is left nil.
func ParseAfterCall(tenant string, raw []byte, receivedAt time.Time) (*call.Log, error) {
	var p afterCall
	if err := decodeObject(raw, &p); err != nil {
		return nil, malformed("afterCall: %w", err)
	}
	return p.log(tenant, SourceV1, afterCallKeys, receivedAt)
}

// logKeys names a payload kind and its keys in error messages: the afterCall and a
// call-log search hit carry the same log under different names.
type logKeys struct {
	kind, callID, logID, event, status string
}

var afterCallKeys = logKeys{kind: "afterCall", callID: "_pm ui", logID: "_ai", event: `"_ev"`, status: `"_su"`}

// log builds the call.Log of a decoded afterCall-shaped log: the one place the
// direction, outcome, legs and the attributed agent are decided.
func (p *afterCall) log(tenant, source string, k logKeys, receivedAt time.Time) (*call.Log, error) {
	l := &call.Log{
		Tenant:    tenant,
		LogID:     p.LogID.String(),
		CompanyID: p.CompanyID.String(),
		Source:    source,
		// _ns 1 is MyOperator's click-to-call; a call placed through the outbound API
		// (calltrack's click-to-call: _ns 2) carries the request's reference_id as _cri.
		ClickToCall:  p.Nature.is(1) || p.ClientRef.String() != "",
		ClickRef:     strings.TrimSpace(p.ClientRef.String()),
		Department:   p.Department.String(),
		DepartmentID: p.DepartmentID.String(),
		StartedAt:    p.Start.epoch(),
		EndedAt:      p.End.epoch(),
		Disposition:  p.Disposition.String(),
		ReceivedAt:   receivedAt,
	}
	for _, kv := range p.Params {
		if strings.EqualFold(kv.Key.String(), "ui") && kv.Value != "" {
			l.CallID = kv.Value.String()
			break
		}
	}
	if l.CallID == "" {
		l.CallID = l.LogID
	}
	if l.CallID == "" {
		return nil, malformed("%s: no call id: neither %s nor %s", k.kind, k.callID, k.logID)
	}
	if err := checkCallID(l.CallID); err != nil {
		return nil, malformed("%s: %w", k.kind, err)
	}
	if err := checkID("log id", l.LogID); err != nil {
		return nil, malformed("%s: %w", k.kind, err)
	}

	switch {
	case p.Event == "":
		return nil, malformed(`%s: %s is missing; want 1 (incoming) or 2 (outgoing)`, k.kind, k.event)
	case p.Event.is(1):
		l.Direction = call.Incoming
	case p.Event.is(2):
		l.Direction = call.Outgoing
	default:
		return nil, malformed(`%s: %s must be 1 (incoming) or 2 (outgoing), got %s`, k.kind, k.event, p.Event.quote())
	}
	switch {
	case p.Status == "":
		return nil, malformed(`%s: %s is missing; want 1 (answered), 2 (missed) or 3 (voicemail)`, k.kind, k.status)
	case p.Status.is(1):
		l.Status = call.Answered
	case p.Status.is(2):
		l.Status = call.Missed
	case p.Status.is(3):
		l.Status = call.Voicemail
	default:
		return nil, malformed(`%s: %s must be 1 (answered), 2 (missed) or 3 (voicemail), got %s`, k.kind, k.status, p.Status.quote())
	}

	cc := p.CountryCode.String()
	l.CallerName = strings.TrimSpace(p.CallerName.String())
	l.CallerNumber = phone.E164(p.CallerE164.String(), cc)
	if l.CallerNumber == "" {
		l.CallerNumber = phone.E164(p.Caller10.String(), cc)
	}
	if l.CallerNumber == "" { // withheld ("anonymous"), short or garbled: keep what was said
		l.CallerRaw = rawCaller(p.CallerE164.String(), p.Caller10.String())
	}
	if d, ok := p.Duration.seconds(); ok {
		l.Duration = d
	} else if !l.StartedAt.IsZero() && l.EndedAt.After(l.StartedAt) {
		l.Duration = int(l.EndedAt.Sub(l.StartedAt) / time.Second)
	}
	if p.FileURL != "" || p.FileName != "" {
		l.Recording = &call.Recording{URL: p.FileURL.String(), FileName: p.FileName.String()}
	}

	received := p.received()
	for _, pl := range p.Legs.items {
		lg := pl.toLeg(cc, received)
		if l.DID == "" {
			l.DID = lg.DID
		}
		l.Legs = append(l.Legs, lg)
	}

	// A click-to-call is placed by the agent (MyOperator rings the agent first),
	// so it is attributed like an outgoing call whatever `_ev` says.
	dir := l.Direction
	if l.ClickToCall {
		dir = call.Outgoing
	}
	l.Agent = call.Attribute(dir, l.Status, l.Legs)
	if l.Agent == nil && dir == call.Outgoing {
		// No legs recorded: `_cn` may still name the agent who placed the call.
		for _, c := range p.Contacts.items {
			if a := c.toAgent(cc); !a.Empty() {
				l.Agent = &a
				break
			}
		}
	}

	l.Malformed = p.malformedAgentFields()
	if err := l.Validate(); err != nil {
		return nil, malformed("%s: %w", k.kind, err)
	}
	return l, nil
}

// malformedAgentFields names the agent fields MyOperator sent malformed (read without
// what was malformed), each once, in the payload's order of nesting.
func (p *afterCall) malformedAgentFields() []string {
	var out []string
	add := func(bad bool, key string) {
		if bad && !slices.Contains(out, key) {
			out = append(out, key)
		}
	}
	add(p.Legs.malformed, "_ld")
	for _, pl := range p.Legs.items {
		add(pl.Receivers.malformed, "_rr")
		add(pl.Transfers.malformed, "_tt")
	}
	add(p.Contacts.malformed, "_cn")
	return out
}

// maxRawCaller bounds call.Log.CallerRaw: a caller id ("anonymous", "PRIVATE", a
// 19-digit number) is short; a longer value is no caller id, and the CRM record would
// carry it whole.
const maxRawCaller = 32

// rawCaller is call.Log.CallerRaw for a caller whose number is no phone number: the
// first of vals that is not blank, trimmed; "" when every one is blank, or when it is
// longer than maxRawCaller or holds a control character.
func rawCaller(vals ...string) string {
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if len(v) > maxRawCaller || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return ""
		}
		return v
	}
	return ""
}

// received returns the user ids that picked up, from `_us` ("received") or, when
// `_us` names none, from `_tc` (talk time above zero).
func (p *afterCall) received() map[string]bool {
	ids := map[string]bool{}
	for _, kv := range p.UserStatus {
		if strings.EqualFold(kv.Value.String(), "received") && kv.Key != "" {
			ids[kv.Key.String()] = true
		}
	}
	if len(ids) == 0 {
		for _, tc := range p.TalkTime {
			if n, ok := tc.Secs.int(); ok && n > 0 && tc.User != "" {
				ids[tc.User.String()] = true
			}
		}
	}
	return ids
}

func (pl leg) toLeg(cc string, received map[string]bool) call.Leg {
	lg := call.Leg{
		RingStart:  pl.RingStart.clock(),
		DialStatus: pl.DialStatus.String(),
		Action:     pl.Action.String(),
		DID:        pl.DID.String(),
		StartedAt:  pl.Start.epoch(),
		EndedAt:    pl.End.epoch(),
		Answered: strings.EqualFold(pl.DialStatus.String(), "ANSWER") ||
			strings.EqualFold(pl.Action.String(), "received") || pl.Status.is(1),
	}
	if d, ok := pl.Duration.seconds(); ok {
		lg.Duration = d
	} else if !lg.StartedAt.IsZero() && lg.EndedAt.After(lg.StartedAt) {
		lg.Duration = int(lg.EndedAt.Sub(lg.StartedAt) / time.Second)
	}
	for _, r := range pl.Receivers.items {
		if a := r.toAgent(cc); a != (call.Agent{}) {
			lg.Agents = append(lg.Agents, a)
		}
	}
	for _, r := range pl.Transfers.items {
		if a := r.toAgent(cc); a != (call.Agent{}) {
			lg.Transfers = append(lg.Transfers, a)
		}
	}
	if lg.Answered {
		lg.AnsweredBy = answeredBy(lg.Agents, received)
	}
	return lg
}

// answeredBy picks who picked up an answered leg: its only receiver, or, in a ring
// group, the first receiver `_us` / `_tc` says received the call; nil when unknown.
func answeredBy(agents []call.Agent, received map[string]bool) *call.Agent {
	if len(agents) == 1 {
		a := agents[0]
		return &a
	}
	for _, a := range agents {
		if a.ID != "" && received[a.ID] {
			return &a
		}
	}
	return nil
}

func (a agent) toAgent(cc string) call.Agent {
	ph := phone.E164(a.Number.String(), cc)
	if ph == "" {
		ph = phone.E164(a.Contact.String(), cc)
	}
	return call.Agent{
		ID:        a.ID.String(),
		Name:      a.Name.String(),
		Email:     a.Email.String(),
		Extension: a.Extension.String(),
		Phone:     ph,
	}
}
