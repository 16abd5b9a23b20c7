package myoperator

import (
	"slices"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/phone"
)

// inCall is the inCall (screen-pop) payload; its keys are readable names.
type inCall struct {
	LogID     flexString           `json:"id"`
	UID       flexString           `json:"uid"`
	CompanyID flexString           `json:"company_id"`
	State     flexString           `json:"call_state"`
	ClidRaw   flexString           `json:"clid_raw"`
	Clid      flexString           `json:"clid"`
	Rdnis     flexString           `json:"rdnis"`
	Users     flexList[flexString] `json:"users"`
	CallTime  flexString           `json:"call_time"`
	Created   flexString           `json:"created"`
	Direction flexString           `json:"direction"`
}

// ParseInCall turns an inCall payload into a call.Live. It needs `uid`; the rest
// is optional. `call_state` 0 is ringing, 1 answered, 2 ended, 3 missed; any other
// or missing value is taken as ringing, since an inCall is sent while the call is
// live. The call is incoming unless a `direction` key says outgoing. Errors wrap
// ErrMalformed.
func ParseInCall(tenant string, raw []byte, receivedAt time.Time) (*call.Live, error) {
	var p inCall
	if err := decodeObject(raw, &p); err != nil {
		return nil, malformed("inCall: %w", err)
	}
	if p.UID == "" {
		return nil, malformed(`inCall: no call id: "uid" is missing`)
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
		State:      call.Ringing,
		Direction:  call.Incoming,
		ReceivedAt: receivedAt,
	}
	switch {
	case p.State.is(1):
		l.State = call.LiveAnswered
	case p.State.is(2):
		l.State = call.Ended
	case p.State.is(3):
		l.State = call.LiveMissed
	}
	switch strings.ToLower(p.Direction.String()) {
	case "2", "outgoing", "outbound":
		l.Direction = call.Outgoing
	}
	l.CallerNumber = phone.E164(p.ClidRaw.String(), "")
	if l.CallerNumber == "" {
		l.CallerNumber = phone.E164(p.Clid.String(), "")
	}
	if d := p.Rdnis.String(); !strings.EqualFold(d, "unknown") {
		l.DID = d
	}
	for _, u := range p.Users {
		if ph := phone.E164(u.String(), ""); ph != "" && !slices.Contains(l.AgentPhones, ph) {
			l.AgentPhones = append(l.AgentPhones, ph)
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
