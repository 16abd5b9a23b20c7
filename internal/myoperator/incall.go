package myoperator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/phone"
)

// inCall is the inCall (screen-pop) payload; its keys are readable names.
type inCall struct {
	LogID       flexString `json:"id"`
	UID         flexString `json:"uid"`
	CompanyID   flexString `json:"company_id"`
	State       flexString `json:"call_state"`
	Event       flexString `json:"event"`
	ClidRaw     flexString `json:"clid_raw"`
	Clid        flexString `json:"clid"`
	Rdnis       flexString `json:"rdnis"`
	Users       phoneList  `json:"users"`
	CallTime    flexString `json:"call_time"`
	Created     flexString `json:"created"`
	Direction   flexString `json:"direction"`
	Nature      flexString `json:"_ns"`
	ClientRefID flexString `json:"client_ref_id"`
	JobID       flexString `json:"job_id"`
}

// ErrIgnored is wrapped by the error about a payload that is well formed but says
// nothing calltrack acts on: an inCall whose call_state has no known meaning. Ingest
// answers it 200 (MyOperator must not retry it), counts it and logs it; it publishes
// nothing, so no pop-up shows a state nobody knows.
var ErrIgnored = errors.New("MyOperator payload ignored")

// ParseInCall turns an inCall payload into a call.Live. It needs `uid`; the rest is
// optional. `call_state` 0 is ringing and 1 answered (MyOperator's "What is an In-Call
// Webhook" article), 2 ended and 3 missed (calltrack's reading; unpublished); a missing
// call_state is ringing, since an inCall is sent while the call is live. Any other value
// (public integrations see 5 and 6, meanings unpublished) is not guessed at: the error
// wraps ErrIgnored. `event` is 1 start / 2 update (same article), not a direction.
//
// An inCall carries no direction: see direction for what tells a call the agent placed
// (click-to-call) from an incoming one. CallerNumber is always the customer (`clid`),
// as the afterCall's `_cr` is for both directions. `users` (the rung agents' numbers)
// may come as a list, a JSON-encoded list, or a plain string of numbers. Errors wrap
// ErrMalformed or ErrIgnored.
func ParseInCall(tenant string, raw []byte, receivedAt time.Time) (*call.Live, error) {
	var p inCall
	if err := decodeObject(raw, &p); err != nil {
		return nil, malformed("inCall: %w", err)
	}
	if p.UID == "" {
		return nil, malformed(`inCall: no call id: "uid" is missing`)
	}
	if err := checkCallID(p.UID.String()); err != nil {
		return nil, malformed("inCall: %w", err)
	}
	if err := checkID("log id", p.LogID.String()); err != nil {
		return nil, malformed("inCall: %w", err)
	}
	if tenant == "" {
		return nil, malformed("inCall: tenant is empty")
	}
	l := &call.Live{
		Tenant:     tenant,
		CallID:     p.UID.String(),
		LogID:      p.LogID.String(),
		CompanyID:  p.CompanyID.String(),
		Source:     SourceV1,
		Direction:  call.Incoming,
		ReceivedAt: receivedAt,
	}
	switch {
	case p.State == "" || p.State.is(0):
		l.State = call.Ringing
	case p.State.is(1):
		l.State = call.LiveAnswered
	case p.State.is(2):
		l.State = call.Ended
	case p.State.is(3):
		l.State = call.LiveMissed
	default:
		return nil, fmt.Errorf("%w: inCall %s: call_state %s has no known meaning (0 ringing, 1 answered, 2 ended, 3 missed)",
			ErrIgnored, p.UID.quote(), p.State.quote())
	}
	for _, u := range p.Users {
		if ph := phone.E164(u, ""); ph != "" && !slices.Contains(l.AgentPhones, ph) {
			l.AgentPhones = append(l.AgentPhones, ph)
		}
	}
	l.CallerNumber = phone.E164(p.ClidRaw.String(), "")
	if l.CallerNumber == "" {
		l.CallerNumber = phone.E164(p.Clid.String(), "")
	}
	if d := p.Rdnis.String(); !strings.EqualFold(d, "unknown") {
		l.DID = d
	}
	l.Direction = p.direction(l)
	if l.Direction == call.Outgoing && slices.Contains(l.AgentPhones, l.CallerNumber) {
		// MyOperator rings the agent first and names the agent as the caller: the
		// customer is the dialled number, when rdnis holds one.
		l.CallerNumber = ""
		if c := phone.E164(l.DID, ""); c != "" && !slices.Contains(l.AgentPhones, c) {
			l.CallerNumber, l.DID = c, ""
		}
	}
	// call_time has no zone. It is GMT: in the published sample the uid
	// n2.1596270949 embeds epoch 1596270949 = 2020-08-01 08:35:49 UTC, seven
	// seconds before its call_time "2020-08-01 08:35:56" (IST would be 14:05).
	l.CallTime = p.CallTime.clock()
	if l.CallTime.IsZero() {
		l.CallTime = p.Created.clock()
	}
	return l, nil
}

// direction tells a call an agent placed (click-to-call, an OBD campaign) from an
// incoming one by what an inCall does carry, in this order:
//   - a `direction` key (not in MyOperator's sample; some accounts add it);
//   - `_ns`, the afterCall's nature, when the payload has it: 1 click-to-call, 2 OBD;
//   - `client_ref_id` or `job_id`: set only for calls placed through MyOperator's API
//     (the click-to-call / OBD request's reference_id comes back as client_ref_id; job_id
//     is an OBD campaign's job);
//   - the caller (`clid`) being one of the rung agents (`users`): MyOperator rings the
//     agent first for a call the agent places.
//
// Anything else is incoming.
func (p *inCall) direction(l *call.Live) call.Direction {
	switch strings.ToLower(p.Direction.String()) {
	case "2", "outgoing", "outbound":
		return call.Outgoing
	case "1", "incoming", "inbound":
		return call.Incoming
	}
	switch {
	case p.Nature.is(1) || p.Nature.is(2):
		return call.Outgoing
	case p.Nature.is(0):
		return call.Incoming
	case p.ClientRefID != "" || p.JobID != "":
		return call.Outgoing
	case l.CallerNumber != "" && slices.Contains(l.AgentPhones, l.CallerNumber):
		return call.Outgoing
	}
	return call.Incoming
}

// phoneList is inCall's `users`: a JSON list of numbers (strings or numbers), that list
// JSON-encoded as a string, or a plain string of numbers separated by commas,
// semicolons or spaces (integrations receive all three).
type phoneList []string

func (l *phoneList) UnmarshalJSON(b []byte) error {
	var items flexList[flexString]
	if err := items.UnmarshalJSON(b); err != nil {
		return err
	}
	if len(items) == 0 && kind(b) == "string" {
		var s string
		if json.Unmarshal(b, &s) == nil {
			for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '|' }) {
				items = append(items, flexString(strings.Trim(f, `"'[] `)))
			}
		}
	}
	if len(items) == 0 && kind(b) == "number" {
		items = flexList[flexString]{flexString(bytes.TrimSpace(b))}
	}
	*l = nil
	for _, it := range items {
		if it != "" {
			*l = append(*l, it.String())
		}
	}
	return nil
}

// CompanyID returns the MyOperator company id of an afterCall (`_ci`) or inCall
// (`company_id`) payload, or "" when there is none or raw is not a JSON object.
// Ingest uses it to check a payload belongs to the tenant whose URL it came to.
func CompanyID(raw []byte) string {
	var p struct {
		CI        flexString `json:"_ci"`
		CompanyID flexString `json:"company_id"`
	}
	if decodeObject(raw, &p) != nil {
		return ""
	}
	if p.CI != "" {
		return p.CI.String()
	}
	return p.CompanyID.String()
}
