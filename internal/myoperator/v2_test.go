package myoperator

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/schemas"
)

// Every fixture maps to the calltrack event its type stands for.
func TestParseV2Fixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		kind   V2Kind
		callID string
		check  func(t *testing.T, ev *V2Event)
	}{
		{"v2_call_initiated.json", V2Live, "n2.1596270949.2175190", func(t *testing.T, ev *V2Event) {
			assert.Equal(t, call.Ringing, ev.Live.State)
			assert.Empty(t, ev.Live.AgentPhones)
			assert.Equal(t, "+919711636496", ev.Live.CallerNumber)
			assert.Equal(t, "1161568087", ev.Live.DID)
		}},
		{"v2_call_dial_begin.json", V2Live, "n2.1596270949.2175190", func(t *testing.T, ev *V2Event) {
			assert.Equal(t, call.Ringing, ev.Live.State)
			assert.Equal(t, []string{"+918586848544", "+919810012345"}, ev.Live.AgentPhones, "both agents rung, 10-digit normalised")
		}},
		{"v2_call_answered.json", V2Live, "n2.1596270949.2175190", func(t *testing.T, ev *V2Event) {
			assert.Equal(t, call.LiveAnswered, ev.Live.State)
			assert.Equal(t, []string{"+918586848544"}, ev.Live.AgentPhones, "only the agent who answered")
		}},
		{"v2_call_summary.json", V2Summary, "n2.1596270949.2175190", func(t *testing.T, ev *V2Event) {
			l := ev.Log
			assert.Equal(t, SourceV2, l.Source)
			assert.Equal(t, call.Incoming, l.Direction)
			assert.Equal(t, call.Answered, l.Status)
			assert.Equal(t, &call.Agent{ID: "c9dcbb14683278a0", Name: "Sumit", Email: "sumit.arya@example.com", Extension: "10", Phone: "+918586848544"}, l.Agent,
				"the answering agent leg, not the busy one before it")
			assert.Equal(t, "+919711636496", l.CallerNumber)
			assert.Equal(t, 39, l.Duration)
			assert.Equal(t, time.Date(2020, 7, 17, 7, 12, 9, 0, time.UTC), l.StartedAt)
			assert.Equal(t, "sales", l.Department)
			assert.Empty(t, l.DID, "system_identifier is null on call.summary")
			assert.Equal(t, &call.Recording{FileName: "e673c2f4a1b94d37a9c1d0e2b3f4a5d0.mp3"}, l.Recording)
			assert.Len(t, l.Legs, 2, "agent legs only")
		}},
		{"v2_call_summary_missed_strings.json", V2Summary, "15.1776144484.2922", func(t *testing.T, ev *V2Event) {
			assert.Equal(t, "918273645", ev.ID, "a numeric event_id")
			assert.Equal(t, call.Missed, ev.Log.Status)
			assert.Equal(t, "2b3c4d5e6f708192", ev.Log.Agent.ID, "missed: the last agent rung, by leg_index")
			assert.Equal(t, "+919876543210", ev.Log.CallerNumber)
			assert.Equal(t, 45, ev.Log.Duration)
			assert.Nil(t, ev.Log.Recording, "empty recording_filename")
		}},
		{"v2_call_summary_outgoing.json", V2Summary, "cb9.1783070100.77", func(t *testing.T, ev *V2Event) {
			assert.Equal(t, call.Outgoing, ev.Log.Direction)
			assert.Equal(t, "1d2e3f4a5b6c7d8e", ev.Log.Agent.ID, "the agent who placed it")
			assert.Equal(t, "+919811122233", ev.Log.CallerNumber, "the customer")
			assert.Equal(t, "support", ev.Log.Department)
		}},
		{"v2_call_summary_voicemail.json", V2Summary, "15.1776146400.3001", func(t *testing.T, ev *V2Event) {
			assert.Equal(t, call.Voicemail, ev.Log.Status)
			assert.Equal(t, call.Incoming, ev.Log.Direction, "from the envelope")
			assert.Equal(t, 30, ev.Log.Duration, "ended_at - started_at")
		}},
		{"v2_call_end.json", V2End, "n2.1596271200.2175207", func(t *testing.T, ev *V2Event) {
			assert.Equal(t, &call.Agent{Phone: "+918586848544"}, ev.Log.Agent, "call.end names agents by phone only")
			assert.Equal(t, "1161568087", ev.Log.DID)
			assert.Equal(t, "5cd40f6559784843", ev.Log.DepartmentID)
		}},
		{"v2_call_disposition.json", V2Disposition, "n2.1596270949.2175190", func(t *testing.T, ev *V2Event) {
			assert.Equal(t, "Interested — Wants a demo on Monday", ev.Amendment.Disposition)
			assert.True(t, ev.Amendment.Recording.Empty())
		}},
		{"v2_unknown_ivr_started.json", V2Unknown, "n2.1596270949.2175190", nil},
		{"v2_unknown_whatsapp.json", V2Unknown, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseV2("acme", readTestdata(t, tt.file), received)
			require.NoError(t, err)
			assert.Equal(t, tt.kind, ev.Kind)
			assert.Equal(t, tt.callID, ev.CallID)
			assert.Equal(t, "5cd40f6554442586", ev.CompanyID)
			assert.NotEmpty(t, ev.ID)
			switch tt.kind {
			case V2Live:
				require.NotNil(t, ev.Live)
				assert.Equal(t, tt.callID, ev.Live.CallID)
			case V2Summary, V2End:
				require.NotNil(t, ev.Log)
				assert.Equal(t, tt.callID, ev.Log.CallID)
				assert.Nil(t, ev.Log.Owner)
				assert.Equal(t, received, ev.Log.ReceivedAt)
			case V2Disposition:
				require.NotNil(t, ev.Amendment)
			default:
				assert.Nil(t, ev.Live)
				assert.Nil(t, ev.Log)
				assert.Nil(t, ev.Amendment)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

// summary builds a call.summary envelope around payload p with the envelope changes.
func summary(p map[string]any, env map[string]any) []byte {
	m := map[string]any{"event_id": "e1", "company_id": "c1", "event_type": "call.summary", "event_version": "1",
		"direction": "incoming", "session_id": "s1", "system_identifier": nil, "payload": p}
	for k, v := range env {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}

func agentLeg(idx int, uuid, ph, result string) map[string]any {
	return map[string]any{"leg_index": idx, "type": "agent", "phone_number": ph, "result": result,
		"agent": map[string]any{"uuid": uuid, "name": uuid, "email": nil, "contact": ph, "extension": "1"}}
}

func TestParseV2Lenient(t *testing.T) {
	t.Parallel()
	base := func() map[string]any {
		return map[string]any{"id": "s1", "status": "bridged", "customer_number": "+919711636496",
			"legs": []any{agentLeg(1, "a1", "+918586848544", "answered")}}
	}
	tests := []struct {
		name  string
		raw   []byte
		check func(t *testing.T, ev *V2Event)
	}{
		{"event_version a number", summary(base(), map[string]any{"event_version": 1}), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, "1", ev.Version)
		}},
		{"event_version missing", summary(base(), map[string]any{"event_version": nil}), nil},
		{"system_identifier empty", summary(base(), map[string]any{"system_identifier": ""}), func(t *testing.T, ev *V2Event) {
			assert.Empty(t, ev.Log.DID)
		}},
		{"system_identifier a number", summary(base(), map[string]any{"system_identifier": 1161568087}), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, "1161568087", ev.Log.DID)
		}},
		{"no session_id: payload id", summary(base(), map[string]any{"session_id": nil}), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, "s1", ev.CallID)
		}},
		{"event type in capitals", summary(base(), map[string]any{"event_type": " Call.Summary "}), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, V2Summary, ev.Kind)
		}},
		{"status in capitals", summary(func() map[string]any { p := base(); p["status"] = "BRIDGED"; return p }(), nil), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, call.Answered, ev.Log.Status)
		}},
		{"direction only from category obd", summary(func() map[string]any { p := base(); p["category"] = "obd"; return p }(),
			map[string]any{"direction": nil}), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, call.Outgoing, ev.Log.Direction)
		}},
		{"answered by dial_status alone", summary(func() map[string]any {
			p := base()
			lg := agentLeg(1, "a1", "+918586848544", "")
			lg["dial_status"] = "ANSWER"
			p["legs"] = []any{lg}
			return p
		}(), nil), func(t *testing.T, ev *V2Event) {
			assert.True(t, ev.Log.Legs[0].Answered)
		}},
		{"transfer: the last agent who answered", summary(func() map[string]any {
			p := base()
			p["legs"] = []any{agentLeg(3, "a3", "+918586848546", "answered"), agentLeg(2, "a2", "+918586848545", "answered")}
			return p
		}(), nil), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, "a3", ev.Log.Agent.ID)
		}},
		{"a leg without type but with an agent; junk legs skipped", summary(func() map[string]any {
			p := base()
			lg := agentLeg(2, "a2", "+918586848545", "answered")
			delete(lg, "type")
			p["legs"] = []any{"junk", 7, nil, map[string]any{"type": "customer", "phone_number": "+919711636496", "result": "connected"}, lg}
			return p
		}(), nil), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, "a2", ev.Log.Agent.ID)
			assert.Len(t, ev.Log.Legs, 1)
		}},
		{"agent given as a string", summary(func() map[string]any {
			p := base()
			lg := agentLeg(1, "a1", "+918586848544", "answered")
			lg["agent"] = "Sumit"
			p["legs"] = []any{lg}
			return p
		}(), nil), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, &call.Agent{Phone: "+918586848544"}, ev.Log.Agent)
		}},
		{"customer from customer_identifier", summary(func() map[string]any { p := base(); delete(p, "customer_number"); return p }(),
			map[string]any{"customer_identifier": "09711636496"}), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, "+919711636496", ev.Log.CallerNumber)
		}},
		{"duration as HH:MM:SS", summary(func() map[string]any { p := base(); p["duration"] = "00:01:05"; return p }(), nil), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, 65, ev.Log.Duration)
		}},
		{"times without a zone are UTC", summary(func() map[string]any { p := base(); p["started_at"] = "2026-04-14T05:28:04"; return p }(), nil), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, time.Date(2026, 4, 14, 5, 28, 4, 0, time.UTC), ev.Log.StartedAt)
		}},
		{"disposition as a string with comments", []byte(`{"event_type":"disposition","session_id":"s1","payload":{"disposition":"Callback","comments":[{"comment":"after 5 pm"}]}}`),
			func(t *testing.T, ev *V2Event) {
				assert.Equal(t, V2Disposition, ev.Kind)
				assert.Equal(t, "Callback — after 5 pm", ev.Amendment.Disposition)
			}},
		{"unknown type without payload", []byte(`{"event_type":"call.ivr_started"}`), func(t *testing.T, ev *V2Event) {
			assert.Equal(t, V2Unknown, ev.Kind)
			assert.Empty(t, ev.ID)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseV2("acme", tt.raw, received)
			require.NoError(t, err)
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

func TestParseV2Errors(t *testing.T) {
	t.Parallel()
	ok := map[string]any{"id": "s1", "status": "bridged", "legs": []any{}}
	tests := []struct {
		name, raw, want string
	}{
		{"not JSON", `{"event_type":`, "invalid JSON"},
		{"an array", `[{"event_type":"call.summary"}]`, "want a JSON object, got array"},
		{"no event_type", `{"session_id":"s1","payload":{}}`, `"event_type" is missing`},
		{"event_type an object", `{"event_type":{"a":1}}`, `"event_type" is missing`},
		{"event_type not a type", `{"event_type":"DROP TABLE calls"}`, "is not an event type"},
		{"call event without a call id", `{"event_type":"call.answered","payload":{}}`, "no call id"},
		{"summary without status", string(summary(map[string]any{"id": "s1"}, nil)), `"status" is missing`},
		{"summary with an unknown status", string(summary(map[string]any{"id": "s1", "status": "exploded"}, nil)), `got "exploded"`},
		{"end without direction", strings.Replace(string(summary(ok, map[string]any{"direction": nil})), "call.summary", "call.end", 1), "no direction"},
		{"disposition without one", `{"event_type":"call.disposition","session_id":"s1","payload":{"comment":"x"}}`, "no disposition"},
		{"huge event_id", `{"event_type":"call.ivr_started","event_id":"` + strings.Repeat("x", 201) + `"}`, "event_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseV2("acme", []byte(tt.raw), received)
			require.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func FuzzParseV2(f *testing.F) {
	addTestdata(f, "v2_*.json")
	for _, s := range []string{``, `{}`, `null`, `{"event_type":"call.end","session_id":1,"payload":"{\"status\":\"missed\",\"direction\":2}"}`,
		`{"event_type":"call.summary","session_id":"s","direction":"outgoing","payload":{"status":"voicemail","legs":{"type":"agent","agent":{"uuid":7}}}}`,
		`{"event_type":"call.disposition","session_id":"s","payload":{"disposition":{"title":9}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := ParseV2("acme", raw, time.Unix(0, 0).UTC())
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.NotEmpty(t, ev.Type)
		// What gets published must encode and match its topic's schema.
		check := func(topic string, v any) {
			b, err := json.Marshal(v)
			require.NoError(t, err)
			require.NoError(t, schemas.Validate(topic, b), "%s", b)
		}
		switch ev.Kind {
		case V2Live:
			require.NotEmpty(t, ev.Live.CallID)
			check(kafkabus.TopicLive, ev.Live)
		case V2Summary, V2End:
			require.NoError(t, ev.Log.Validate())
			check(kafkabus.TopicLog, ev.Log)
		case V2Disposition:
			require.NotEmpty(t, ev.Amendment.Disposition)
			check(kafkabus.TopicRecording, ev.Amendment)
		default:
			require.Nil(t, ev.Live)
			require.Nil(t, ev.Log)
			require.Nil(t, ev.Amendment)
		}
	})
}
