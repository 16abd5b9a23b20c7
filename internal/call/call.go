// Package call holds calltrack's own domain types: the normalised call events
// that travel on Kafka, whatever telephony payload they came from, and the mapping
// of an agent to the CRM user who owns its calls (mapping.go). No I/O here,
// so every layer (ingest, writer, CRM adapters, tests) can share and build them.
package call

import (
	"fmt"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/phone"
)

// Direction of a call as seen from the tenant.
type Direction string

const (
	Incoming Direction = "incoming"
	Outgoing Direction = "outgoing"
)

// Status is the outcome of a call.
type Status string

const (
	Answered  Status = "answered"
	Missed    Status = "missed"
	Voicemail Status = "voicemail"
)

// Agent is a MyOperator user taking part in a call.
type Agent struct {
	ID        string `json:"id,omitempty"` // MyOperator user id (16 hex)
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
	Extension string `json:"extension,omitempty"`
	Phone     string `json:"phone,omitempty"` // E.164
}

// Empty reports whether the agent carries no identity at all.
func (a Agent) Empty() bool { return a.ID == "" && a.Email == "" && a.Phone == "" }

// Label names the agent for logs and traces: its id, else its email, else its masked
// phone number; "(none)" for no agent.
func (a *Agent) Label() string {
	switch {
	case a == nil:
		return "(none)"
	case a.ID != "":
		return a.ID
	case a.Email != "":
		return a.Email
	}
	return phone.Mask(a.Phone)
}

// Leg is one attempt to connect the caller to agents (a ring group, a transfer).
type Leg struct {
	RingStart  time.Time `json:"ring_start,omitzero"`
	DialStatus string    `json:"dial_status,omitempty"` // ANSWER, NOANSWER, CANCEL, BUSY
	Action     string    `json:"action,omitempty"`      // received, missed, transferred
	DID        string    `json:"did,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	Duration   int       `json:"duration_seconds"`
	Answered   bool      `json:"answered"`
	Agents     []Agent   `json:"agents,omitempty"`      // receivers rung on this leg
	AnsweredBy *Agent    `json:"answered_by,omitempty"` // which receiver picked up, when known
	Transfers  []Agent   `json:"transfers,omitempty"`   // agents the leg was transferred to
}

// Recording of a call. FileName is the durable handle (exchanged for a fresh
// link on demand); URL may expire.
type Recording struct {
	URL      string `json:"url,omitempty"`
	FileName string `json:"file_name,omitempty"`
}

// Empty reports whether there is no recording.
func (r *Recording) Empty() bool { return r == nil || (r.URL == "" && r.FileName == "") }

// Owner is the CRM user a call is attributed to.
type Owner struct {
	CRMUserID string `json:"crm_user_id"`
	Email     string `json:"email,omitempty"`
	Name      string `json:"name,omitempty"`
	Source    string `json:"source,omitempty"` // email-match, manual, fallback, department
}

// Owner sources of a fallback owner (Owner.Source): the call's agent is not mapped,
// or no agent was rung.
const (
	OwnerFallback   = "fallback"   // the tenant's fallback_owner
	OwnerDepartment = "department" // the tenant's departments[Log.Department]
)

// IsFallback reports whether o is a fallback owner rather than the agent's own.
func (o *Owner) IsFallback() bool {
	return o != nil && (o.Source == OwnerFallback || o.Source == OwnerDepartment)
}

// Sources of a call log or live call (Log.Source), which also say how it names its
// agent (Agent.ID): MyOperator's Calling Webhooks (v1) by MyOperator user id, Webhook v2
// by uuid. The myoperator package's SourceV1 and SourceV2.
const (
	SourceMyOperatorV1 = "myoperator.v1"
	SourceMyOperatorV2 = "myoperator.v2"
)

// Log is a completed call: the event on calltrack.call.log.v1.
type Log struct {
	Tenant      string    `json:"tenant"`
	CallID      string    `json:"call_id"`          // MyOperator call UID
	LogID       string    `json:"log_id,omitempty"` // afterCall _ai, an alias of the call id
	CompanyID   string    `json:"company_id,omitempty"`
	Source      string    `json:"source"` // myoperator.v1, myoperator.v2
	Direction   Direction `json:"direction"`
	Status      Status    `json:"status"`
	ClickToCall bool      `json:"click_to_call"`
	// ClickRef is calltrack's click-to-call reference (c2c-…) echoed by MyOperator on the
	// afterCall (_cri): support follows a click to its call by it.
	ClickRef     string `json:"click_ref,omitempty"`
	Internal     bool   `json:"internal,omitempty"`      // the other party is one of the tenant's own agents, not a customer
	CallerNumber string `json:"caller_number,omitempty"` // customer, E.164
	// CallerRaw is the caller's number as MyOperator sent it when it is no phone number
	// ("anonymous", a withheld or short number: CallerNumber is then empty), so a CRM
	// that requires a number on the record (Kylas's phoneNumber) can show what
	// MyOperator said; empty when CallerNumber is set or MyOperator sent nothing. It is
	// never searched for nor given to a lead. Mask it in logs as a number (phone.Mask).
	CallerRaw    string    `json:"caller_raw,omitempty"`
	CallerName   string    `json:"caller_name,omitempty"` // MyOperator's contact name for the number (afterCall _cm), if any
	DID          string    `json:"did,omitempty"`
	Department   string    `json:"department,omitempty"`
	DepartmentID string    `json:"department_id,omitempty"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	EndedAt      time.Time `json:"ended_at,omitzero"`
	Duration     int       `json:"duration_seconds"`
	Legs         []Leg     `json:"legs,omitempty"`
	Agent        *Agent    `json:"agent,omitempty"` // who the call is attributed to (attribution rule)
	// EarlierAgents are the agents earlier versions of the call named, where they differ
	// from Agent: an afterCall names its agent by user id, a Webhook v2 summary of the
	// same call by uuid. The writer keeps them on a parked call, so that a mapping of
	// either identity attributes it. Never parsed from a payload.
	EarlierAgents []Agent `json:"earlier_agents,omitempty"`
	Owner         *Owner  `json:"owner,omitempty"` // nil: unattributed when published
	// OwnerUnresolved: ingest could not consult the mappings (Redis was down), so Owner and
	// Internal were not decided; the writer resolves both when it writes.
	OwnerUnresolved bool       `json:"owner_unresolved,omitempty"`
	Recording       *Recording `json:"recording,omitempty"`
	// Disposition is the agent's disposition as notes show it: its name, then — when the
	// agent wrote one — DispositionCommentSep and the comment (see DispositionName).
	Disposition string    `json:"disposition,omitempty"`
	ReceivedAt  time.Time `json:"received_at"`
	// Malformed names the payload's agent fields (afterCall `_ld`, `_rr`, ...) MyOperator
	// sent malformed, which the parser read without what was malformed rather than lose
	// the call: ingest logs and traces them, so a call that went to the fallback owner
	// says why. Not part of the event.
	Malformed []string `json:"-"`
}

// DispositionCommentSep separates a disposition's name from the agent's comment in
// Disposition ("Interested — Wants a demo on Monday").
const DispositionCommentSep = " — "

// DispositionName is the name part of a Disposition text when that name is one of
// names (a CRM picklist's values), spelt as names spells it: the whole text, or
// the longest name followed by DispositionCommentSep; matched exactly, else
// ignoring case. "" when no name matches.
func DispositionName(text string, names []string) string {
	for _, fold := range []bool{false, true} {
		eq := func(a, b string) bool { return a == b || fold && strings.EqualFold(a, b) }
		best := ""
		for _, n := range names {
			if n == "" {
				continue
			}
			if eq(text, n) {
				return n
			}
			if k := len(n) + len(DispositionCommentSep); len(n) > len(best) && len(text) > k && eq(text[:k], n+DispositionCommentSep) {
				best = n
			}
		}
		if best != "" {
			return best
		}
	}
	return ""
}

// FallbackNote says in words why the call is owned by a fallback owner — for the CRM
// record's description and the trace — or "" when its owner is the agent's own.
func (l *Log) FallbackNote() string {
	if !l.Owner.IsFallback() {
		return ""
	}
	who := "no agent was rung"
	if l.Agent != nil && !l.Agent.Empty() {
		who = "agent " + l.Agent.Label() + " is not mapped to a CRM user"
	}
	if l.Owner.Source == OwnerDepartment {
		return fmt.Sprintf("department %s's fallback owner %s (%s)", l.Department, l.Owner.CRMUserID, who)
	}
	return fmt.Sprintf("the tenant's fallback owner %s (%s)", l.Owner.CRMUserID, who)
}

// Key is the Kafka key of every event of one call: same key, same partition.
func Key(tenant, callID string) string { return tenant + ":" + callID }

// LiveState of a ringing call.
type LiveState string

const (
	Ringing      LiveState = "ringing"
	LiveAnswered LiveState = "answered"
	Ended        LiveState = "ended"
	LiveMissed   LiveState = "missed"
)

// Live is an in-progress call: the event on calltrack.call.live.v1.
type Live struct {
	Tenant       string    `json:"tenant"`
	CallID       string    `json:"call_id"`
	LogID        string    `json:"log_id,omitempty"`
	CompanyID    string    `json:"company_id,omitempty"`
	Source       string    `json:"source"`
	State        LiveState `json:"state"`
	Direction    Direction `json:"direction,omitempty"`
	CallerNumber string    `json:"caller_number,omitempty"` // E.164
	DID          string    `json:"did,omitempty"`
	AgentPhones  []string  `json:"agent_phones,omitempty"` // E.164; inCall names agents by phone only
	Agents       []Agent   `json:"agents,omitempty"`
	Owners       []Owner   `json:"owners,omitempty"` // mapped CRM users of the agents, for pop-ups
	CallTime     time.Time `json:"call_time,omitzero"`
	ReceivedAt   time.Time `json:"received_at"`
}

// RecordingEvent amends a call log already written (or about to be) with what arrives
// after it: a recording, and/or the agent's disposition. It is the event on
// calltrack.call.recording.v1.
type RecordingEvent struct {
	Tenant    string    `json:"tenant"`
	CallID    string    `json:"call_id"`
	Recording Recording `json:"recording"`
	// Disposition is the agent's disposition: its name, then DispositionCommentSep and
	// the agent's comment when there is one (as Log.Disposition).
	Disposition string    `json:"disposition,omitempty"`
	ReceivedAt  time.Time `json:"received_at"`
}

// Attribute applies the default attribution rule to a call's legs and returns the
// agent the call belongs to, or nil when no agent took part:
//   - outgoing / click-to-call: the agent who placed it (first receiver of the first leg);
//   - answered: the agent who last answered (after transfers, the final answering agent);
//   - missed / voicemail: the last agent rung.
func Attribute(dir Direction, status Status, legs []Leg) *Agent {
	if dir == Outgoing {
		for _, l := range legs {
			for _, a := range l.Agents {
				if !a.Empty() {
					a := a
					return &a
				}
			}
		}
		return nil
	}
	if status == Answered {
		for i := len(legs) - 1; i >= 0; i-- {
			if !legs[i].Answered {
				continue
			}
			if a := legs[i].AnsweredBy; a != nil && !a.Empty() {
				a := *a
				return &a
			}
			for j := len(legs[i].Agents) - 1; j >= 0; j-- {
				if a := legs[i].Agents[j]; !a.Empty() {
					return &a
				}
			}
		}
	}
	// Missed, voicemail, or answered with no answering leg recorded: the last agent rung.
	for i := len(legs) - 1; i >= 0; i-- {
		for j := len(legs[i].Agents) - 1; j >= 0; j-- {
			if a := legs[i].Agents[j]; !a.Empty() {
				return &a
			}
		}
	}
	return nil
}

// Validate checks the fields every call log must have.
func (l *Log) Validate() error {
	switch {
	case l.Tenant == "":
		return fmt.Errorf("call log: tenant is empty")
	case l.CallID == "":
		return fmt.Errorf("call log: call id is empty")
	case l.Direction != Incoming && l.Direction != Outgoing:
		return fmt.Errorf("call log: direction %q", l.Direction)
	case l.Status != Answered && l.Status != Missed && l.Status != Voicemail:
		return fmt.Errorf("call log: status %q", l.Status)
	}
	return nil
}
