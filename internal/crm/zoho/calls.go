package zoho

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/phone"
)

// zohoTime is Zoho's date-time: ISO-8601 with a numeric offset, no fraction.
const zohoTime = "2006-01-02T15:04:05-07:00"

// callRecord is one record of the Calls module as we write it.
type callRecord struct {
	Subject        string `json:"Subject,omitempty"`
	CallType       string `json:"Call_Type,omitempty"`
	CallStartTime  string `json:"Call_Start_Time,omitempty"`
	CallDuration   string `json:"Call_Duration,omitempty"`
	Owner          *ref   `json:"Owner,omitempty"`
	WhoID          *ref   `json:"Who_Id,omitempty"`
	WhatID         *ref   `json:"What_Id,omitempty"`
	SEModule       string `json:"$se_module,omitempty"`
	CallResult     string `json:"Call_Result,omitempty"`
	Description    string `json:"Description,omitempty"`
	VoiceRecording string `json:"Voice_Recording__s,omitempty"`
}

type ref struct {
	ID string `json:"id"`
}

// CreateCall inserts the call into the Calls module owned by c.OwnerID and returns
// the Zoho record id. The lead/contact search runs first, on its own; the insert
// then waits for other CreateCall calls to share its request: Linger, or up to
// MaxLinger while inserts arrive steadily (see batcher). A record refused because
// its Who_Id / What_Id names a contact or lead Zoho no longer has (converted, merged,
// deleted) is inserted once more with the caller resolved again (crm.RetryIfGone).
func (a *Adapter) CreateCall(ctx context.Context, c crm.Call) (string, error) {
	const op = "zoho: create call"
	if err := ctx.Err(); err != nil {
		return "", &crm.Error{Op: op, Err: err}
	}
	if err := c.Log.Validate(); err != nil {
		return "", &crm.Error{Op: op, Message: err.Error(), Permanent: true}
	}
	if !call.IsZohoID(c.OwnerID) {
		return "", &crm.Error{Op: op, Message: fmt.Sprintf("owner %q is not a Zoho user id", c.OwnerID), Permanent: true}
	}
	return crm.RetryIfGone(ctx, a.parties, func(ctx context.Context) (string, *crm.Used, error) {
		return a.createOnce(ctx, op, c)
	})
}

// createOnce relates the call to the caller's party and inserts it; it reports the
// party it used.
func (a *Adapter) createOnce(ctx context.Context, op string, c crm.Call) (string, *crm.Used, error) {
	rec := a.record(ctx, c)
	rec.CallType = callType(c.Log)
	rec.CallStartTime, rec.CallDuration = a.startAndDuration(c.Log)
	rec.Owner = &ref{ID: c.OwnerID}
	var rel *related
	customer := a.customer(c.Log)
	if !c.Log.Internal { // an agent called an agent: no lead or contact to relate
		var err error
		if rel, err = a.findRelated(ctx, c, customer); err != nil {
			return "", nil, err
		}
	}
	var used *crm.Used
	switch {
	case rel == nil:
	case rel.module == "Contacts":
		rec.WhoID = &ref{ID: rel.id}
		used = &crm.Used{Number: customer, Party: crm.Party{Entity: crm.EntityContact, ID: rel.id}}
	default:
		rec.WhatID, rec.SEModule = &ref{ID: rel.id}, rel.module
		used = &crm.Used{Number: customer, Party: crm.Party{Entity: crm.EntityLead, ID: rel.id}}
	}
	raw, err := a.encode(rec, c.Log.CallID)
	if err != nil {
		return "", nil, &crm.Error{Op: op, Message: "encoding record", Err: err, Permanent: true}
	}
	id, err := a.batch.add(ctx, raw)
	return id, used, err
}

// UpdateCall rewrites what may change after the call was logged: subject,
// description, result (disposition) and recording. Zoho updates only the fields
// sent, so the owner, type, time and relation stay (Call_Type and a completed
// call's owner cannot change anyway).
func (a *Adapter) UpdateCall(ctx context.Context, recordID string, c crm.Call) error {
	const op = "zoho: update call"
	if !call.IsZohoID(recordID) {
		return &crm.Error{Op: op, Message: fmt.Sprintf("record id %q is not a Zoho id", recordID), Permanent: true}
	}
	if err := c.Log.Validate(); err != nil {
		return &crm.Error{Op: op, Message: err.Error(), Permanent: true}
	}
	r, err := a.sendJSON(ctx, op, http.MethodPut, "/crm/v8/Calls/"+recordID, map[string]any{"data": []callRecord{a.record(ctx, c)}})
	if err != nil {
		return err
	}
	_, err = results(op, r, 1)[0].get()
	return err
}

// record holds the fields both create and update write. Call_Result is a picklist:
// the disposition's name goes there only when the picklist has it (else in the
// description alone, Zoho refuses free text); the whole disposition, with the agent's
// comment, is in the description. The recording link goes in Voice_Recording__s only
// when it fits the field (Zoho refuses an over-long value with INVALID_DATA); the
// description always has it.
func (a *Adapter) record(ctx context.Context, c crm.Call) callRecord {
	rec := callRecord{
		Subject:     subject(c.Log, a.customer(c.Log), a.subjectTag(c.Log)),
		Description: a.description(c),
	}
	if c.Log.Disposition != "" || c.RecordingURL != "" {
		f := a.callFields(ctx)
		rec.CallResult = f.result(c.Log.Disposition) // the name alone; the comment stays in the description
		maxLen := recordingMaxLen
		if f != nil {
			maxLen = f.recordingMax
		}
		if c.RecordingURL != "" && len(c.RecordingURL) <= maxLen {
			rec.VoiceRecording = c.RecordingURL
		}
	}
	return rec
}

// subjectTag is the Subject suffix carrying the call id, unless a custom field does.
func (a *Adapter) subjectTag(l call.Log) string {
	if a.cfg.CallIDField != "" {
		return ""
	}
	return subjectTag(l.CallID)
}

// encode marshals a new record, adding the call-id custom field when configured.
func (a *Adapter) encode(rec callRecord, callID string) (json.RawMessage, error) {
	raw, err := json.Marshal(rec)
	if err != nil || a.cfg.CallIDField == "" {
		return raw, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	m[a.cfg.CallIDField] = callID
	return json.Marshal(m)
}

// customer is the customer's number in E.164, or what MyOperator said when it is
// not a number (anonymous).
func (a *Adapter) customer(l call.Log) string {
	if e := phone.E164(l.CallerNumber, a.cfg.DefaultCountry); e != "" {
		return e
	}
	return l.CallerNumber
}

// callType maps a call to Zoho's Call_Type. A missed or voicemail incoming call is
// Zoho's "Missed"; an unanswered outgoing call is still "Outbound" (the subject
// and description say it was not answered).
func callType(l call.Log) string {
	switch {
	case l.Direction == call.Outgoing:
		return "Outbound"
	case l.Status == call.Answered:
		return "Inbound"
	default:
		return "Missed"
	}
}

// startAndDuration gives Call_Start_Time in the tenant's zone and Call_Duration as
// mm:ss, minutes then seconds (5 min 30 s is "05:30"): the form Zoho Bigin documents
// (https://www.zoho.com/bigin/developer/docs/apis/calls-response.html), where Zoho
// CRM's Kaizen #38 (https://help.zoho.com/portal/en/community/topic/kaizen-38-calls-api)
// says hh:mm; a call's length is in seconds, and hh:mm cannot carry them. How a real
// org reads it: docs/crm-contracts.md, Call_Duration. A missed call (Call_Type Missed) has no duration: Zoho asks one only of
// completed calls. Zoho rejects a zero duration, so a completed call shorter than a
// second (an unanswered outgoing one) is written as "00:01"; the description keeps
// the true duration.
func (a *Adapter) startAndDuration(l call.Log) (string, string) {
	start := callStart(l, time.Now())
	d := max(l.Duration, 0)
	if callType(l) == "Missed" {
		return start.In(a.cfg.TimeZone).Format(zohoTime), ""
	}
	secs := max(d, 1)
	return start.In(a.cfg.TimeZone).Format(zohoTime), fmt.Sprintf("%02d:%02d", secs/60, secs%60)
}

// callStart is the call's Call_Start_Time: the log's start, else its end (or, lacking
// both, its receipt) less the duration; never later than the log's receipt or now.
//
// Zoho refuses a completed call whose Call_Start_Time is "incorrect" (INVALID_DATA,
// https://help.zoho.com/portal/en/community/topic/kaizen-38-calls-api), and a start in
// the future is the reading taken; the refusal is permanent, so the call would be
// dead-lettered. A start can land there from MyOperator's clock running ahead or a
// zone-less time read in the wrong zone, yet a call cannot have begun after calltrack
// received its log. Bounding by the receipt rather than by the write's now keeps the
// start a function of the log alone, so FindCall looks for the time that was written
// whenever it runs (after an unknown outcome, or on a retry hours later); now bounds
// it only when the receiving replica's clock ran ahead of this one's, by less than
// findWindow.
func callStart(l call.Log, now time.Time) time.Time {
	start := l.StartedAt
	d := time.Duration(max(l.Duration, 0)) * time.Second
	switch {
	case start.IsZero() && !l.EndedAt.IsZero():
		start = l.EndedAt.Add(-d)
	case start.IsZero():
		start = l.ReceivedAt.Add(-d)
	}
	if !l.ReceivedAt.IsZero() && start.After(l.ReceivedAt) {
		start = l.ReceivedAt
	}
	if start.After(now) {
		start = now
	}
	return start
}

// subject is the line a CRM user sees in the Calls list, e.g.
// "Incoming call from +91 97116 36496 — answered by Sumit Arya (sales)".
func subject(l call.Log, customer, tag string) string {
	num := phone.Readable(customer)
	agent := ""
	if l.Agent != nil {
		agent = l.Agent.Name
		if agent == "" {
			agent = l.Agent.Email
		}
	}
	dept := ""
	if l.Department != "" {
		dept = " (" + l.Department + ")"
	}
	var s string
	switch {
	case l.Direction == call.Outgoing:
		kind := "Outgoing call"
		if l.ClickToCall {
			kind = "Click-to-call"
		}
		s = kind + " to " + num
		if agent != "" {
			s += " by " + agent
		}
		if l.Status == call.Answered {
			s += " — answered"
		} else {
			s += " — not answered"
		}
	case l.Status == call.Answered:
		s = "Incoming call from " + num
		if agent != "" {
			s += " — answered by " + agent + dept
		} else {
			s += " — answered" + dept
		}
	case l.Status == call.Voicemail:
		s = "Voicemail from " + num + dept
	default:
		s = "Missed call from " + num
		if agent != "" {
			s += " — rang " + agent + dept
		} else {
			s += dept
		}
	}
	// Zoho's single-line limit is 255 characters
	// (https://help.zoho.com/portal/en/community/topic/kaizen-1-fields-in-crm-api-18-10-2019,
	// https://www.bigin.com/developer/docs/toppings/custom-field-types.html); the tag
	// (our call id, which FindCall looks for) must survive whole.
	if r, max := []rune(s), 255-len([]rune(tag)); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s + tag
}

// description is the note on the call: who, where, how long, the recording and our
// call id (the last line, "Call ID: ...", lets anyone find the call in calltrack).
func (a *Adapter) description(c crm.Call) string {
	l := c.Log
	var s strings.Builder
	s.WriteString(map[call.Direction]string{call.Incoming: "Incoming", call.Outgoing: "Outgoing"}[l.Direction])
	if l.ClickToCall {
		s.WriteString(" click-to-call")
	}
	s.WriteString(" call via MyOperator, ")
	s.WriteString(map[call.Status]string{call.Answered: "answered", call.Missed: "missed", call.Voicemail: "voicemail"}[l.Status])
	line := func(k, v string) {
		if v != "" {
			s.WriteString("\n" + k + ": " + v)
		}
	}
	line("Customer", a.customer(l))
	if l.Agent != nil {
		agent := l.Agent.Name
		if l.Agent.Email != "" {
			agent = strings.TrimSpace(agent + " <" + l.Agent.Email + ">")
		}
		line("Agent", agent)
	}
	line("Department", l.Department)
	line("Owner", l.FallbackNote()) // a fallback owner, and why (docs: department fallback owners)
	line("DID", l.DID)
	line("Duration", humanDuration(l.Duration))
	line("Disposition", l.Disposition)
	line("Recording", c.RecordingURL)
	line("Call ID", l.CallID)
	return s.String()
}

func humanDuration(secs int) string {
	secs = max(secs, 0)
	if secs < 60 {
		return fmt.Sprintf("%d s", secs)
	}
	return fmt.Sprintf("%d min %d s", secs/60, secs%60)
}

// relatedGone reports whether a record's refusal is Zoho's answer to a Who_Id or
// What_Id naming no contact or lead: INVALID_DATA with details.api_name Who_Id or
// What_Id (docs/crm-contracts.md, "Ids that name nothing"). Not any INVALID_DATA:
// an Owner, a picklist value or a length is no stale party.
func relatedGone(code string, details map[string]any) bool {
	name, _ := details["api_name"].(string)
	return code == "INVALID_DATA" && (name == "Who_Id" || name == "What_Id")
}

// --- per-record results ---

// recordResult is one entry of a write's "data" answer.
type recordResult struct {
	Code    string          `json:"code"`
	Details json.RawMessage `json:"details"`
	Message string          `json:"message"`
	Status  string          `json:"status"`
}

// outcome is one record's fate: its id, or why it failed.
type outcome struct {
	id  string
	err error
}

func (o outcome) get() (string, error) { return o.id, o.err }

// transientCodes are per-record codes worth retrying.
var transientCodes = map[string]bool{"INTERNAL_ERROR": true, "TOO_MANY_REQUESTS": true, "LIMIT_REACHED": true}

// results reads a write's answer into n outcomes. A 2xx (201, 200, 207
// Multi-Status) or a 400 with a "data" array carries one result per record; any
// other answer fails every record alike.
func results(op string, r reply, n int) []outcome {
	all := func(err error) []outcome {
		out := make([]outcome, n)
		for i := range out {
			out[i].err = err
		}
		return out
	}
	st := r.resp.StatusCode
	var body struct {
		Data []recordResult `json:"data"`
	}
	perRecord := json.Unmarshal(r.data, &body) == nil && len(body.Data) > 0
	switch {
	case st >= 200 && st <= 299 && len(body.Data) != n:
		// Zoho may have written the records: their fate is for FindCall to settle.
		return all(&crm.Error{Op: op, Status: st, Unknown: true,
			Message: fmt.Sprintf("response has %d results for %d records", len(body.Data), n)})
	case st == http.StatusBadRequest && perRecord && len(body.Data) == n:
	case st < 200 || st > 299:
		return all(apiError(op, r))
	}
	out := make([]outcome, n)
	for i, res := range body.Data {
		if res.Status == "success" || res.Code == "SUCCESS" {
			var d struct {
				ID json.RawMessage `json:"id"`
			}
			_ = json.Unmarshal(res.Details, &d)
			id := strings.Trim(string(d.ID), `"`)
			if id == "" || id == "null" {
				out[i].err = &crm.Error{Op: op, Status: st, Message: "result has no record id", Unknown: true}
				continue
			}
			out[i].id = id
			continue
		}
		var details map[string]any
		_ = json.Unmarshal(res.Details, &details)
		e := &crm.Error{Op: op, Status: http.StatusBadRequest, Code: res.Code, Message: res.Message + detailText(details),
			Permanent: !transientCodes[res.Code], PartyGone: relatedGone(res.Code, details)}
		if !e.Permanent {
			e.Status = http.StatusServiceUnavailable
		}
		out[i].err = e
	}
	return out
}
