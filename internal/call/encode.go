package call

import (
	"strconv"

	"github.com/calltrack/calltrack/internal/jsonwire"
)

// AppendJSON appends l as encoding/json encodes it, byte for byte, without its
// reflection: ingest encodes every call log it publishes, and json.Marshal took ~6 %
// of serve's CPU (issue 14; BENCHMARKS.md section 5). TestAppendJSONIsJSONMarshal
// fills every field by reflection, so a field added to Log and not here fails it.
func (l *Log) AppendJSON(b []byte) ([]byte, error) {
	if !jsonwire.StrictTime(l.StartedAt) || !jsonwire.StrictTime(l.EndedAt) || !jsonwire.StrictTime(l.ReceivedAt) || !l.legTimesStrict() {
		return jsonwire.AppendMarshal(b, l) // encoding/json's own error
	}
	b = append(b, `{"tenant":`...)
	b = jsonwire.AppendString(b, l.Tenant)
	b = append(b, `,"call_id":`...)
	b = jsonwire.AppendString(b, l.CallID)
	b = jsonwire.AppendOmitEmpty(b, `,"log_id":`, l.LogID)
	b = jsonwire.AppendOmitEmpty(b, `,"company_id":`, l.CompanyID)
	b = append(b, `,"source":`...)
	b = jsonwire.AppendString(b, l.Source)
	b = append(b, `,"direction":`...)
	b = jsonwire.AppendString(b, string(l.Direction))
	b = append(b, `,"status":`...)
	b = jsonwire.AppendString(b, string(l.Status))
	b = append(b, `,"click_to_call":`...)
	b = strconv.AppendBool(b, l.ClickToCall)
	b = jsonwire.AppendOmitEmpty(b, `,"click_ref":`, l.ClickRef)
	if l.Internal {
		b = append(b, `,"internal":true`...)
	}
	b = jsonwire.AppendOmitEmpty(b, `,"caller_number":`, l.CallerNumber)
	b = jsonwire.AppendOmitEmpty(b, `,"caller_raw":`, l.CallerRaw)
	b = jsonwire.AppendOmitEmpty(b, `,"caller_name":`, l.CallerName)
	b = jsonwire.AppendOmitEmpty(b, `,"did":`, l.DID)
	b = jsonwire.AppendOmitEmpty(b, `,"department":`, l.Department)
	b = jsonwire.AppendOmitEmpty(b, `,"department_id":`, l.DepartmentID)
	b = jsonwire.AppendOmitZero(b, `,"started_at":`, l.StartedAt)
	b = jsonwire.AppendOmitZero(b, `,"ended_at":`, l.EndedAt)
	b = append(b, `,"duration_seconds":`...)
	b = strconv.AppendInt(b, int64(l.Duration), 10)
	if len(l.Legs) > 0 {
		b = append(b, `,"legs":[`...)
		for i := range l.Legs {
			if i > 0 {
				b = append(b, ',')
			}
			b = l.Legs[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	if l.Agent != nil {
		b = append(b, `,"agent":`...)
		b = l.Agent.appendJSON(b)
	}
	b = appendAgents(b, `,"earlier_agents":`, l.EarlierAgents)
	if l.Owner != nil {
		b = append(b, `,"owner":{"crm_user_id":`...)
		b = jsonwire.AppendString(b, l.Owner.CRMUserID)
		b = jsonwire.AppendOmitEmpty(b, `,"email":`, l.Owner.Email)
		b = jsonwire.AppendOmitEmpty(b, `,"name":`, l.Owner.Name)
		b = jsonwire.AppendOmitEmpty(b, `,"source":`, l.Owner.Source)
		b = append(b, '}')
	}
	if l.OwnerUnresolved {
		b = append(b, `,"owner_unresolved":true`...)
	}
	if l.Recording != nil {
		b = append(b, `,"recording":`...)
		b = l.Recording.appendJSON(b)
	}
	b = jsonwire.AppendOmitEmpty(b, `,"disposition":`, l.Disposition)
	b = append(b, `,"received_at":`...)
	b = jsonwire.AppendTime(b, l.ReceivedAt)
	return append(b, '}'), nil
}

// AppendJSON appends e as encoding/json encodes it, byte for byte (as Log's).
func (e *RecordingEvent) AppendJSON(b []byte) ([]byte, error) {
	if !jsonwire.StrictTime(e.ReceivedAt) {
		return jsonwire.AppendMarshal(b, e)
	}
	b = append(b, `{"tenant":`...)
	b = jsonwire.AppendString(b, e.Tenant)
	b = append(b, `,"call_id":`...)
	b = jsonwire.AppendString(b, e.CallID)
	b = append(b, `,"recording":`...)
	b = e.Recording.appendJSON(b)
	b = jsonwire.AppendOmitEmpty(b, `,"disposition":`, e.Disposition)
	b = append(b, `,"received_at":`...)
	b = jsonwire.AppendTime(b, e.ReceivedAt)
	return append(b, '}'), nil
}

func (l *Log) legTimesStrict() bool {
	for i := range l.Legs {
		g := &l.Legs[i]
		if !jsonwire.StrictTime(g.RingStart) || !jsonwire.StrictTime(g.StartedAt) || !jsonwire.StrictTime(g.EndedAt) {
			return false
		}
	}
	return true
}

func (g *Leg) appendJSON(b []byte) []byte {
	b = append(b, '{')
	start := len(b)
	b = jsonwire.AppendOmitZero(b, `,"ring_start":`, g.RingStart)
	b = jsonwire.AppendOmitEmpty(b, `,"dial_status":`, g.DialStatus)
	b = jsonwire.AppendOmitEmpty(b, `,"action":`, g.Action)
	b = jsonwire.AppendOmitEmpty(b, `,"did":`, g.DID)
	b = jsonwire.AppendOmitZero(b, `,"started_at":`, g.StartedAt)
	b = jsonwire.AppendOmitZero(b, `,"ended_at":`, g.EndedAt)
	b = append(b, `,"duration_seconds":`...)
	b = strconv.AppendInt(b, int64(g.Duration), 10)
	b = append(b, `,"answered":`...)
	b = strconv.AppendBool(b, g.Answered)
	b = appendAgents(b, `,"agents":`, g.Agents)
	if g.AnsweredBy != nil {
		b = append(b, `,"answered_by":`...)
		b = g.AnsweredBy.appendJSON(b)
	}
	b = appendAgents(b, `,"transfers":`, g.Transfers)
	b = dropLeadingComma(b, start)
	return append(b, '}')
}

func appendAgents(b []byte, key string, as []Agent) []byte {
	if len(as) == 0 {
		return b
	}
	b = append(b, key...)
	b = append(b, '[')
	for i := range as {
		if i > 0 {
			b = append(b, ',')
		}
		b = as[i].appendJSON(b)
	}
	return append(b, ']')
}

func (a *Agent) appendJSON(b []byte) []byte {
	b = append(b, '{')
	start := len(b)
	b = jsonwire.AppendOmitEmpty(b, `,"id":`, a.ID)
	b = jsonwire.AppendOmitEmpty(b, `,"name":`, a.Name)
	b = jsonwire.AppendOmitEmpty(b, `,"email":`, a.Email)
	b = jsonwire.AppendOmitEmpty(b, `,"extension":`, a.Extension)
	b = jsonwire.AppendOmitEmpty(b, `,"phone":`, a.Phone)
	b = dropLeadingComma(b, start)
	return append(b, '}')
}

func (r *Recording) appendJSON(b []byte) []byte {
	b = append(b, '{')
	start := len(b)
	b = jsonwire.AppendOmitEmpty(b, `,"url":`, r.URL)
	b = jsonwire.AppendOmitEmpty(b, `,"file_name":`, r.FileName)
	b = dropLeadingComma(b, start)
	return append(b, '}')
}

// dropLeadingComma removes the comma the first member written after start began
// with (members are appended each with its comma, as any may be omitted).
func dropLeadingComma(b []byte, start int) []byte {
	if len(b) > start && b[start] == ',' {
		return append(b[:start], b[start+1:]...)
	}
	return b
}
