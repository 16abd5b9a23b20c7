package myoperator

import (
	"encoding/json"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/calltrack/calltrack/internal/call"
)

// SourceBackfill is the call.Log Source of calls found in MyOperator's call-log search
// (POST /search) that calltrack had never seen: MyOperator never delivered their webhook.
const SourceBackfill = "myoperator.backfill"

// searchHit is one hit of the call-log search: {"_id", "_source": {...}}. The _source
// is the afterCall's log under long names (caller_number, start_time, log_details, ...);
// see docs/myoperator-api.md for the sources of each name.
type searchHit struct {
	ID     flexString   `json:"_id"`
	Source searchSource `json:"_source"`
}

type searchSource struct {
	ID           flexString           `json:"id"`
	LogID        flexString           `json:"_ai"`
	CompanyID    flexString           `json:"company_id"`
	CallerRaw    flexString           `json:"caller_number_raw"`
	Caller       flexString           `json:"caller_number"`
	CountryCode  flexString           `json:"country_code"`
	Start        flexString           `json:"start_time"`
	End          flexString           `json:"end_time"`
	Duration     flexString           `json:"duration"`
	Event        flexString           `json:"event"`
	Status       flexString           `json:"status"`
	FileName     flexString           `json:"filename"`
	FileURL      flexString           `json:"fileurl"`
	Department   flexString           `json:"department_name"`
	DepartmentID flexString           `json:"department_id"`
	Params       flexList[kv]         `json:"additional_parameters"`
	Legs         flexList[searchLeg]  `json:"log_details"`
	UserStatus   flexList[kv]         `json:"_us"`
	TalkTime     flexList[talkSec]    `json:"_tc"`
	Contacts     flexList[searchUser] `json:"contacts"`
}

// searchLeg is a log_details item: some keys keep the afterCall's short names (_ds,
// _rst, _did), others are long (action, duration, received_by). Both are read.
type searchLeg struct {
	leg
	ActionLong    flexString           `json:"action"`
	DurationLong  flexString           `json:"duration"`
	StartLong     flexString           `json:"start_time"`
	EndLong       flexString           `json:"end_time"`
	StatusLong    flexString           `json:"status"`
	ReceivedBy    flexList[searchUser] `json:"received_by"`
	TransferredTo flexList[searchUser] `json:"transferred_to"`
}

// searchUser is a received_by item: {user_id, name, email, extension,
// contact_number_raw}; the afterCall's short keys are read too.
type searchUser struct {
	agent
	longUser
}

type longUser struct {
	UserID     flexString `json:"user_id"`
	NameLong   flexString `json:"name"`
	EmailLong  flexString `json:"email"`
	ExtLong    flexString `json:"extension"`
	ContactRaw flexString `json:"contact_number_raw"`
	ContactNum flexString `json:"contact_number"`
}

func (u *searchUser) UnmarshalJSON(b []byte) error {
	if err := u.agent.UnmarshalJSON(b); err != nil {
		return err
	}
	if kind(b) == "object" {
		_ = json.Unmarshal(b, &u.longUser)
	}
	return nil
}

// UnmarshalJSONFrom keeps the embedded agent's from standing in for UnmarshalJSON
// (decodeObject's decoder prefers it).
func (u *searchUser) UnmarshalJSONFrom(dec *jsontext.Decoder) error { return readInto(dec, u) }

// short is the user as an afterCall agent (short keys win where both are present).
func (u searchUser) short() agent {
	a := u.agent
	fill(&a.ID, u.UserID)
	fill(&a.Name, u.NameLong)
	fill(&a.Email, u.EmailLong)
	fill(&a.Extension, u.ExtLong)
	fill(&a.Contact, u.ContactRaw)
	fill(&a.Number, u.ContactNum)
	return a
}

func (l searchLeg) short() leg {
	out := l.leg
	fill(&out.Action, l.ActionLong)
	fill(&out.Duration, l.DurationLong)
	fill(&out.Start, l.StartLong)
	fill(&out.End, l.EndLong)
	fill(&out.Status, l.StatusLong)
	for _, u := range l.ReceivedBy {
		out.Receivers.items = append(out.Receivers.items, u.short())
	}
	for _, u := range l.TransferredTo {
		out.Transfers.items = append(out.Transfers.items, u.short())
	}
	return out
}

func fill(dst *flexString, v flexString) {
	if *dst == "" {
		*dst = v
	}
}

var searchKeys = logKeys{kind: "search hit", callID: "additional_parameters ui", logID: "_id", event: `"event"`, status: `"status"`}

// ParseSearchHit turns one hit of MyOperator's call-log search into a call.Log, with
// the afterCall's rules (the same code): the call id is the `ui` of
// additional_parameters (the afterCall's `_pm`), so it is the id the call's webhooks
// carry; the log id is the hit's _id. Source is SourceBackfill; Owner is left nil.
// Errors wrap ErrMalformed.
func ParseSearchHit(tenant string, raw []byte, receivedAt time.Time) (*call.Log, error) {
	var h searchHit
	if err := decodeObject(raw, &h); err != nil {
		return nil, malformed("search hit: %w", err)
	}
	s := h.Source
	p := afterCall{
		LogID: h.ID, CompanyID: s.CompanyID, Caller10: s.CallerRaw, CallerE164: s.Caller, CountryCode: s.CountryCode,
		Start: s.Start, End: s.End, Duration: s.Duration, Event: s.Event, Status: s.Status,
		FileName: s.FileName, FileURL: s.FileURL, Department: s.Department, DepartmentID: s.DepartmentID,
		Params: s.Params, UserStatus: s.UserStatus, TalkTime: s.TalkTime,
	}
	fill(&p.LogID, s.LogID)
	fill(&p.LogID, s.ID)
	for _, l := range s.Legs {
		p.Legs.items = append(p.Legs.items, l.short())
	}
	for _, c := range s.Contacts {
		p.Contacts.items = append(p.Contacts.items, c.short())
	}
	return p.log(tenant, SourceBackfill, searchKeys, receivedAt)
}
