package kylas

import (
	"context"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/phone"
)

// kylasTime is the UTC ISO-8601 form Kylas uses.
const kylasTime = "2006-01-02T15:04:05.000Z"

// callLogBody is the body of POST /v1/call-logs/sync, POST /v1/call-logs and PUT
// /v1/call-logs/{id}. The sync route names the owner and our call id and takes the
// recording as a URL; the plain route has neither field and takes the recording as
// {url, fileName, data} (docs/crm-contracts.md).
type callLogBody struct {
	OwnerID       int64    `json:"ownerId,omitempty"`
	RemoteID      string   `json:"remoteId,omitempty"`
	Outcome       string   `json:"outcome"`
	CallType      string   `json:"callType"`
	StartTime     string   `json:"startTime,omitempty"`
	EndTime       string   `json:"endTime,omitempty"`
	Duration      int      `json:"duration"`
	PhoneNumber   string   `json:"phoneNumber,omitempty"`
	Originator    string   `json:"originator,omitempty"`
	Receiver      string   `json:"receiver,omitempty"`
	RelatedTo     *related `json:"relatedTo,omitempty"`     // an object in create bodies
	CallRecording any      `json:"callRecording,omitempty"` // sync: the URL; plain: *recording
	Notes         []note   `json:"notes,omitempty"`
}

type related struct {
	ID          int64  `json:"id"`
	Entity      string `json:"entity"` // lead, contact
	Name        string `json:"name,omitempty"`
	PhoneNumber string `json:"phoneNumber,omitempty"`
}

// used names the party the body relates the call to (nil for none), for
// crm.RetryIfGone.
func (b *callLogBody) used() *crm.Used {
	if b.RelatedTo == nil {
		return nil
	}
	return &crm.Used{Number: b.RelatedTo.PhoneNumber,
		Party: crm.Party{Entity: b.RelatedTo.Entity, ID: strconv.FormatInt(b.RelatedTo.ID, 10)}}
}

// recording is the plain route's callRecording; data (inline content) stays empty.
type recording struct {
	URL      string `json:"url"`
	FileName string `json:"fileName"`
	Data     string `json:"data"`
}

type note struct {
	Description string `json:"description"`
}

// callLog builds the body for c; the lead/contact lookup happens here, so both
// create and update relate the record (PUT replaces the whole record).
func (a *Adapter) callLog(ctx context.Context, op string, c crm.Call) (*callLogBody, error) {
	if err := c.Log.Validate(); err != nil {
		return nil, &crm.Error{Op: op, Message: err.Error(), Permanent: true}
	}
	owner, err := strconv.ParseInt(c.OwnerID, 10, 64)
	if err != nil || owner <= 0 {
		return nil, &crm.Error{Op: op, Message: "owner " + strconv.Quote(c.OwnerID) + " is not a Kylas user id", Permanent: true}
	}
	l := c.Log
	customer := phone.E164(l.CallerNumber, a.cfg.DefaultCountry) // "" for a withheld number
	shown := customerShown(l, customer)
	agent := l.DID
	if l.Agent != nil && l.Agent.Phone != "" {
		agent = l.Agent.Phone
	}
	start, end := times(l)
	b := &callLogBody{
		Outcome:     outcome(l.Direction, l.Status),
		CallType:    string(l.Direction),
		StartTime:   kylasTS(start),
		EndTime:     kylasTS(end),
		Duration:    max(l.Duration, 0),
		PhoneNumber: shown,
		Originator:  shown,
		Receiver:    agent,
		Notes:       []note{{Description: description(l)}},
	}
	if l.Direction == call.Outgoing {
		b.Originator, b.Receiver = agent, shown
	}
	sync := a.cfg.Route() == RouteSync
	if sync {
		b.OwnerID, b.RemoteID = owner, l.CallID
	}
	if c.RecordingURL != "" {
		if sync {
			b.CallRecording = c.RecordingURL
		} else {
			b.CallRecording = &recording{URL: c.RecordingURL, FileName: recordingName(c)}
		}
	}
	// An agent called an agent: there is no lead or contact to relate. A withheld
	// number (customer "") has none either: findRelated neither searches nor makes a lead.
	if !l.Internal {
		if b.RelatedTo, err = a.findRelated(ctx, c, customer); err != nil {
			return nil, err
		}
	}
	if !sync && b.RelatedTo == nil {
		// POST /v1/call-logs requires relatedTo: without a lead or contact the call
		// cannot be written on the api-key route, now or later.
		return nil, &crm.Error{Op: op, Permanent: true, Message: "the api-key route (POST /v1/call-logs) requires relatedTo, and the call has " +
			"no lead or contact (an internal call, an unknown number with unknown_caller: none, or a withheld number)"}
	}
	return b, nil
}

// WithheldNumber is the call log's phoneNumber for a caller MyOperator gave no number
// for at all. Kylas requires phoneNumber on every call log (kylastech/kylas-crm-mcp-server
// create_call_log_logic refuses a body without one; registry/call_log.yaml lists it as
// required) and documents no format for it beyond "phone number string"; a record
// without it is refused, so the call would never reach the CRM. See
// docs/crm-contracts.md, "Kylas: withheld numbers".
const WithheldNumber = "unknown"

// customerShown is the call log's phoneNumber (and the customer's side of
// originator/receiver): the customer's number in E.164, else what MyOperator said in
// its place (call.Log.CallerRaw: "anonymous", "+1234", a 19-digit number — shown as
// sent, never searched for), else WithheldNumber.
func customerShown(l call.Log, e164 string) string {
	switch {
	case e164 != "":
		return e164
	case strings.TrimSpace(l.CallerRaw) != "":
		return strings.TrimSpace(l.CallerRaw)
	case strings.TrimSpace(l.CallerNumber) != "":
		return strings.TrimSpace(l.CallerNumber) // an event from before CallerRaw, or a number of another form
	}
	return WithheldNumber
}

// outcome maps a call to Kylas's outcome. A missed incoming call is the agent's
// missed_call; a missed outgoing one is the customer's no_answer. A voicemail is
// a missed call whose caller left a message (incoming) or reached one
// (outgoing), so it maps the same way; the note says "voicemail".
func outcome(d call.Direction, s call.Status) string {
	switch {
	case s == call.Answered:
		return "connected"
	case d == call.Outgoing:
		return "no_answer"
	default:
		return "missed_call"
	}
}

// times returns the call's start and end, deriving a missing one from the
// duration (and, lacking both, the time we received the log).
func times(l call.Log) (start, end time.Time) {
	start, end = l.StartedAt, l.EndedAt
	d := time.Duration(max(l.Duration, 0)) * time.Second
	switch {
	case start.IsZero() && !end.IsZero():
		start = end.Add(-d)
	case start.IsZero():
		start = l.ReceivedAt.Add(-d)
	}
	if end.IsZero() && !start.IsZero() {
		end = start.Add(d)
	}
	return start, end
}

func kylasTS(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(kylasTime)
}

// recordingName is the file name Kylas shows: MyOperator's, else the link's last
// path element (our durable link ends with the call id), else the call id.
func recordingName(c crm.Call) string {
	if c.Log.Recording != nil && c.Log.Recording.FileName != "" {
		return c.Log.Recording.FileName
	}
	if u, err := url.Parse(c.RecordingURL); err == nil {
		if b := path.Base(u.Path); b != "." && b != "/" && b != "" {
			return b
		}
	}
	return c.Log.CallID
}

// description is the note a CRM user reads on the call log.
func description(l call.Log) string {
	var s strings.Builder
	s.WriteString(map[call.Direction]string{call.Incoming: "Incoming", call.Outgoing: "Outgoing"}[l.Direction])
	if l.ClickToCall {
		s.WriteString(" click-to-call")
	}
	if l.Internal {
		s.WriteString(" internal")
	}
	s.WriteString(" call via MyOperator")
	switch l.Status {
	case call.Missed:
		s.WriteString(", missed")
	case call.Voicemail:
		s.WriteString(", voicemail")
	}
	line := func(k, v string) {
		if v != "" {
			s.WriteString("\n" + k + ": " + v)
		}
	}
	if l.Agent != nil {
		name := l.Agent.Name
		if name == "" {
			name = l.Agent.Email
		}
		line("Agent", name)
	}
	line("Department", l.Department)
	line("Owner", l.FallbackNote()) // a fallback owner, and why (docs: department fallback owners)
	line("DID", l.DID)
	line("Disposition", l.Disposition)
	line("Call ID", l.CallID)
	return s.String()
}
