package myoperator

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parsers' output")

// received is a fixed receive time so golden files are stable.
var received = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func TestParseAfterCall(t *testing.T) {
	t.Parallel()
	rec := func(url, file string) *call.Recording { return &call.Recording{URL: url, FileName: file} }
	tests := []struct {
		file        string
		callID      string
		dir         call.Direction
		status      call.Status
		clickToCall bool
		agentID     string // "" with agentPhone: an unmapped agent known by phone only
		agentPhone  string
		caller      string
		duration    int
		recording   *call.Recording
	}{
		{"aftercall_answered.json", "n2.1596270949.2175190", call.Incoming, call.Answered, false,
			"5cd40f6556f2f124", "+918586848544", "+919711636496", 39,
			rec("https://app.myoperator.co/audio/e673c2f4a1b94d37a9c1d0e2b3f4a5d0", "e673c2f4a1b94d37a9c1d0e2b3f4a5d0.mp3")},
		{"aftercall_missed_two_legs.json", "n2.1700000000.1000001", call.Incoming, call.Missed, false,
			"5cd40f6556f2f200", "+919810012345", "+919711636496", 45, nil},
		{"aftercall_outgoing_click_to_call.json", "s1.1700001000.2000002", call.Outgoing, call.Answered, true,
			"5cd40f6556f2f200", "+919810012345", "+919811122233", 130,
			rec("https://app.myoperator.co/audio/0a1b2c3d4e5f60718293a4b5c6d7e8f9", "0a1b2c3d4e5f60718293a4b5c6d7e8f9.mp3")},
		{"aftercall_outgoing_no_legs.json", "s1.1700002000.2000003", call.Outgoing, call.Missed, true,
			"5cd40f6556f2f300", "+919899011111", "+919811122233", 10, nil},
		{"aftercall_transfer.json", "n2.1700003000.3000004", call.Incoming, call.Answered, false,
			"5cd40f6556f2f200", "+919810012345", "+919711636496", 300,
			rec("https://app.myoperator.co/audio/1b2c3d4e5f60718293a4b5c6d7e8f90a", "1b2c3d4e5f60718293a4b5c6d7e8f90a.mp3")},
		{"aftercall_ring_group.json", "n2.1700004000.4000005", call.Incoming, call.Answered, false,
			"5cd40f6556f2f200", "+919810012345", "+919711636496", 70,
			rec("", "2c3d4e5f60718293a4b5c6d7e8f90a1b.mp3")},
		{"aftercall_voicemail.json", "n2.1700005000.5000006", call.Incoming, call.Voicemail, false,
			"5cd40f6556f2f300", "+919899011111", "+919711636496", 50,
			rec("https://app.myoperator.co/audio/3d4e5f60718293a4b5c6d7e8f90a1b2c", "3d4e5f60718293a4b5c6d7e8f90a1b2c.mp3")},
		{"aftercall_unmapped_phone_only.json", "n2.1700006000.6000007", call.Incoming, call.Answered, false,
			"", "+919876543210", "+919711636496", 30, nil},
		{"aftercall_strings.json", "n2.1700007000.7000008", call.Incoming, call.Answered, false,
			"5cd40f6556f2f124", "+918586848544", "+919711636496", 40, // no _dr: _et - _st
			rec("https://app.myoperator.co/audio/4e5f60718293a4b5c6d7e8f90a1b2c3d", "4e5f60718293a4b5c6d7e8f90a1b2c3d.mp3")},
		{"aftercall_minimal.json", "6a01b2c3d4e5f609", call.Incoming, call.Missed, false,
			"", "", "", 0, nil},
		{"aftercall_numbers.json", "n2.1700008000.8000009", call.Incoming, call.Answered, false,
			"5cd40f6556f2f124", "+918586848544", "+919711636496", 20, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			l, err := ParseAfterCall("acme", readTestdata(t, tt.file), received)
			require.NoError(t, err)
			assert.Equal(t, "acme", l.Tenant)
			assert.Equal(t, SourceV1, l.Source)
			assert.Equal(t, tt.callID, l.CallID)
			assert.Equal(t, tt.dir, l.Direction)
			assert.Equal(t, tt.status, l.Status)
			assert.Equal(t, tt.clickToCall, l.ClickToCall)
			assert.Equal(t, tt.caller, l.CallerNumber)
			assert.Equal(t, tt.duration, l.Duration)
			assert.Equal(t, tt.recording, l.Recording)
			assert.Nil(t, l.Owner)
			assert.Equal(t, received, l.ReceivedAt)
			if tt.agentID == "" && tt.agentPhone == "" {
				assert.Nil(t, l.Agent)
				return
			}
			require.NotNil(t, l.Agent)
			assert.Equal(t, tt.agentID, l.Agent.ID)
			assert.Equal(t, tt.agentPhone, l.Agent.Phone)
		})
	}
}

func TestParseAfterCallSample(t *testing.T) {
	t.Parallel()
	l, err := ParseAfterCall("acme", readTestdata(t, "aftercall_answered.json"), received)
	require.NoError(t, err)
	assert.Equal(t, "5f114f490dbe2437", l.LogID)
	assert.Equal(t, "5cd40f6554442586", l.CompanyID)
	assert.Equal(t, "1161568087", l.DID)
	assert.Equal(t, "sales", l.Department)
	assert.Equal(t, "5cd40f6559784843", l.DepartmentID)
	assert.Equal(t, time.Unix(1594969929, 0).UTC(), l.StartedAt)
	assert.Equal(t, time.Unix(1594969968, 0).UTC(), l.EndedAt)
	require.Len(t, l.Legs, 1)
	lg := l.Legs[0]
	assert.Equal(t, time.Date(2020, 7, 17, 7, 12, 28, 0, time.UTC), lg.RingStart)
	assert.Equal(t, "ANSWER", lg.DialStatus)
	assert.Equal(t, "received", lg.Action)
	assert.Equal(t, 9, lg.Duration)
	assert.True(t, lg.Answered)
	want := call.Agent{ID: "5cd40f6556f2f124", Name: "Sumit", Email: "sumit.arya@example.com", Extension: "10", Phone: "+918586848544"}
	assert.Equal(t, []call.Agent{want}, lg.Agents)
	assert.Equal(t, &want, lg.AnsweredBy)
	assert.Equal(t, &want, l.Agent)
}

func TestParseAfterCallTransferAndRingGroup(t *testing.T) {
	t.Parallel()
	l, err := ParseAfterCall("acme", readTestdata(t, "aftercall_transfer.json"), received)
	require.NoError(t, err)
	require.Len(t, l.Legs, 2)
	// A transfer item given as a bare user id.
	assert.Equal(t, []call.Agent{{ID: "5cd40f6556f2f200"}}, l.Legs[0].Transfers)
	assert.Equal(t, "5cd40f6556f2f124", l.Legs[0].AnsweredBy.ID)
	assert.Equal(t, "5cd40f6556f2f200", l.Legs[1].AnsweredBy.ID)

	// Without _us the ring group's answering receiver is unknown and the rule falls
	// back to the last receiver of the answered leg.
	raw := readTestdata(t, "aftercall_ring_group.json")
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	delete(m, "_us")
	raw, err = json.Marshal(m)
	require.NoError(t, err)
	l, err = ParseAfterCall("acme", raw, received)
	require.NoError(t, err)
	assert.Nil(t, l.Legs[0].AnsweredBy)
	assert.Equal(t, "5cd40f6556f2f300", l.Agent.ID)
}

// The agent fields read leniently say what they skipped (call.Log.Malformed): a value
// that is no list, items that are not the documented objects; not null, blanks or ids.
func TestParseAfterCallMalformedAgentFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, fields string
		want         []string
	}{
		{"documented", `"_ld":[{"_ds":"ANSWER","_rr":[{"_id":"a1"}],"_tt":[]}],"_cn":[]`, nil},
		{"null and blank", `"_ld":[null,{"_rr":null,"_tt":""}],"_cn":null`, nil},
		{"double-encoded", `"_ld":"[{\"_rr\":[{\"_id\":\"a1\"}]}]"`, nil},
		{"ids as items", `"_ld":[{"_rr":["a1",2]}]`, nil},
		{"_ld a string", `"_ld":"answered"`, []string{"_ld"}},
		{"_ld a number", `"_ld":7`, []string{"_ld"}},
		{"_ld numbers", `"_ld":[1,2]`, []string{"_ld"}},
		{"_ld broken double-encoded", `"_ld":"[{\"_rr\""`, []string{"_ld"}},
		{"_rr a string", `"_ld":[{"_rr":"Sumit"}]`, []string{"_rr"}},
		{"_rr lists and bools", `"_ld":[{"_rr":[[1],true,{"_id":"a1"}]}]`, []string{"_rr"}},
		{"_tt and _cn", `"_ld":[{"_tt":false}],"_cn":"x"`, []string{"_tt", "_cn"}},
		{"every one once", `"_ld":[1,{"_rr":"x"},{"_rr":"y"}]`, []string{"_ld", "_rr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseAfterCall("acme", []byte(`{"_ai":"x","_ev":2,"_su":1,`+tc.fields+`}`), received)
			require.NoError(t, err, "taken all the same")
			assert.Equal(t, tc.want, l.Malformed)
		})
	}
}

func TestParseAfterCallLenient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		check     func(t *testing.T, l *call.Log)
	}{
		{"double-encoded _ld and _pm", `{"_ev":"1","_su":"1","_pm":"[{\"ky\":\"ui\",\"vl\":\"u1\"}]","_ld":"[{\"_ds\":\"ANSWER\",\"_rr\":[{\"_id\":\"a1\"}]}]"}`,
			func(t *testing.T, l *call.Log) {
				assert.Equal(t, "u1", l.CallID)
				assert.Equal(t, "a1", l.Agent.ID)
			}},
		{"single leg object", `{"_ai":"x","_ev":1,"_su":1,"_ld":{"_ac":"received","_rr":{"_id":"a1"}}}`,
			func(t *testing.T, l *call.Log) { assert.Equal(t, "a1", l.Agent.ID) }},
		{"garbage items skipped", `{"_ai":"x","_ev":1.0,"_su":" 2 ","_ld":[1,"x",null,{"_rr":[null,true,{},{"_em":"a@example.com"}]}],"_pm":[5,{"ky":"ui","vl":null}]}`,
			func(t *testing.T, l *call.Log) {
				assert.Equal(t, "x", l.CallID)
				require.Len(t, l.Legs, 1)
				assert.Equal(t, []call.Agent{{Email: "a@example.com"}}, l.Legs[0].Agents)
				assert.Equal(t, "a@example.com", l.Agent.Email)
			}},
		{"ms timestamps and MM:SS", `{"_ai":"x","_ev":2,"_su":1,"_st":1700000000000,"_et":"1700000065000","_dr":"01:05"}`,
			func(t *testing.T, l *call.Log) {
				assert.Equal(t, time.Unix(1700000000, 0).UTC(), l.StartedAt)
				assert.Equal(t, 65, l.Duration)
				assert.Nil(t, l.Agent)
			}},
		{"out of range times ignored", `{"_ai":"x","_ev":1,"_su":2,"_st":-5,"_et":1e300,"_dr":"bad"}`,
			func(t *testing.T, l *call.Log) {
				assert.True(t, l.StartedAt.IsZero())
				assert.True(t, l.EndedAt.IsZero())
				assert.Zero(t, l.Duration)
			}},
		{"ring group resolved by _tc talk time", `{"_ai":"x","_ev":1,"_su":1,"_ld":[{"_ds":"ANSWER","_rr":[{"_id":"a"},{"_id":"b"},{"_id":"c"}]}],"_tc":[{"ye":"a","yf":0},{"ye":"b","yf":"12"}]}`,
			func(t *testing.T, l *call.Log) { assert.Equal(t, "b", l.Agent.ID) }},
		{"disposition", `{"_ai":"x","_ev":1,"_su":1,"_dsp":"Interested"}`,
			func(t *testing.T, l *call.Log) { assert.Equal(t, "Interested", l.Disposition) }},
		{"anonymous caller", `{"_ai":"x","_ev":1,"_su":2,"_cl":"anonymous","_cr":"anonymous"}`,
			func(t *testing.T, l *call.Log) { assert.Empty(t, l.CallerNumber) }},
		{"click-to-call with _ev 1 attributed to the placer", `{"_ai":"x","_ev":1,"_su":1,"_ns":"1","_ld":[{"_ac":"received","_rr":[{"_id":"placer"}]},{"_ac":"received","_rr":[{"_id":"other"}]}]}`,
			func(t *testing.T, l *call.Log) {
				assert.Equal(t, call.Incoming, l.Direction)
				assert.Equal(t, "placer", l.Agent.ID)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := ParseAfterCall("acme", []byte(tt.raw), received)
			require.NoError(t, err)
			tt.check(t, l)
		})
	}
}

func TestParseAfterCallErrors(t *testing.T) {
	t.Parallel()
	const prefix = "malformed MyOperator payload: afterCall: "
	tests := []struct {
		name, tenant, raw, want string
	}{
		{"empty", "acme", ``, prefix + "invalid JSON at offset 0: unexpected end of JSON input"},
		{"invalid JSON", "acme", `{"_ai": x}`, prefix + "invalid JSON at offset 9: invalid character 'x' looking for beginning of value"},
		{"truncated", "acme", `{"_ai":`, prefix + "invalid JSON at offset 7: unexpected end of JSON input"},
		{"array", "acme", `[{"_ai":"x"}]`, prefix + "want a JSON object, got array"},
		{"missing id", "acme", `{"_ev":1,"_su":1,"_pm":[{"ky":"ui","vl":""}]}`, prefix + "no call id: neither _pm ui nor _ai"},
		{"bad _ev", "acme", `{"_ai":"x","_ev":"7","_su":1}`, prefix + `"_ev" must be 1 (incoming) or 2 (outgoing), got "7"`},
		{"object _ev", "acme", `{"_ai":"x","_ev":{"v":1},"_su":1}`, prefix + `"_ev" must be 1 (incoming) or 2 (outgoing), got "{\"v\":1}"`},
		{"long _ev", "acme", `{"_ai":"x","_ev":"` + strings.Repeat("x", 100) + `","_su":1}`, prefix + `"_ev" must be 1 (incoming) or 2 (outgoing), got "` + strings.Repeat("x", 40) + `"…`},
		{"missing _ev", "acme", `{"_ai":"x","_su":1}`, prefix + `"_ev" is missing; want 1 (incoming) or 2 (outgoing)`},
		{"bad _su", "acme", `{"_ai":"x","_ev":1,"_su":1.5}`, prefix + `"_su" must be 1 (answered), 2 (missed) or 3 (voicemail), got "1.5"`},
		{"missing _su", "acme", `{"_ai":"x","_ev":2,"_su":null}`, prefix + `"_su" is missing; want 1 (answered), 2 (missed) or 3 (voicemail)`},
		{"no tenant", "", `{"_ai":"x","_ev":1,"_su":1}`, prefix + "call log: tenant is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := ParseAfterCall(tt.tenant, []byte(tt.raw), received)
			assert.Nil(t, l)
			require.ErrorIs(t, err, ErrMalformed)
			assert.EqualError(t, err, tt.want)
		})
	}
}

func TestParseInCall(t *testing.T) {
	t.Parallel()
	l, err := ParseInCall("acme", readTestdata(t, "incall_ringing.json"), received)
	require.NoError(t, err)
	assert.Equal(t, &call.Live{
		Tenant:       "acme",
		CallID:       "n2.1596270949.2175190",
		LogID:        "5f25296c4122c135",
		CompanyID:    "5cd40f6554442586",
		Source:       SourceV1,
		State:        call.Ringing,
		Direction:    call.Incoming,
		CallerNumber: "+919711636496",
		AgentPhones:  []string{"+918586848544"},
		CallTime:     time.Date(2020, 8, 1, 8, 35, 56, 0, time.UTC),
		ReceivedAt:   received,
	}, l)

	l, err = ParseInCall("acme", readTestdata(t, "incall_answered_numbers.json"), received)
	require.NoError(t, err)
	assert.Equal(t, call.LiveAnswered, l.State)
	assert.Equal(t, "+919711636496", l.CallerNumber) // clid, clid_raw is null
	assert.Equal(t, "1161568087", l.DID)
	assert.Equal(t, []string{"+918586848544", "+919810012345"}, l.AgentPhones)
	assert.Equal(t, time.Date(2023, 11, 15, 0, 43, 20, 0, time.UTC), l.CallTime) // from created
}

func TestParseInCallStates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state string // JSON value of call_state, "" to omit it
		want  call.LiveState
	}{
		{`0`, call.Ringing}, {`"0"`, call.Ringing}, {`1`, call.LiveAnswered}, {`"1"`, call.LiveAnswered},
		{`2`, call.Ended}, {`"3"`, call.LiveMissed}, {`null`, call.Ringing}, {"", call.Ringing},
		// No published meaning: no event, rather than a "ringing" pop-up mid-call.
		{`"9"`, ""}, {`5`, ""}, {`"6"`, ""}, {`"busy"`, ""}, {`-1`, ""}, {`1.5`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			t.Parallel()
			raw := `{"uid":"u1"`
			if tt.state != "" {
				raw += `,"call_state":` + tt.state
			}
			l, err := ParseInCall("acme", []byte(raw+"}"), received)
			if tt.want == "" {
				assert.Nil(t, l)
				require.ErrorIs(t, err, ErrIgnored)
				assert.NotErrorIs(t, err, ErrMalformed, "well formed: answered 200, not kept as rejected")
				assert.Contains(t, err.Error(), `inCall "u1": call_state `)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, l.State)
		})
	}
}

// What tells a call the agent placed from an incoming one, and who the customer is.
func TestParseInCallDirection(t *testing.T) {
	t.Parallel()
	const base = `"uid":"u1","clid_raw":"919711636496","clid":"9711636496","users":["918586848544"],"rdnis":"1161568087","event":"1","call_state":"0"`
	tests := []struct {
		name, extra, clid string
		dir               call.Direction
		caller, did       string
	}{
		{"no marker: incoming", ``, "", call.Incoming, "+919711636496", "1161568087"},
		{"event 2 is an update, not a direction", `,"event":"2"`, "", call.Incoming, "+919711636496", "1161568087"},
		{"direction key", `,"direction":"Outgoing"`, "", call.Outgoing, "+919711636496", "1161568087"},
		{"direction key incoming wins over markers", `,"direction":"inbound","client_ref_id":"crm-42"`, "", call.Incoming, "+919711636496", "1161568087"},
		{"click-to-call nature", `,"_ns":"1"`, "", call.Outgoing, "+919711636496", "1161568087"},
		{"OBD nature", `,"_ns":2`, "", call.Outgoing, "+919711636496", "1161568087"},
		{"normal nature", `,"_ns":"0","client_ref_id":"x"`, "", call.Incoming, "+919711636496", "1161568087"},
		{"placed through the API: client_ref_id", `,"client_ref_id":"crm-42"`, "", call.Outgoing, "+919711636496", "1161568087"},
		{"OBD campaign job", `,"job_id":"5f25296c41"`, "", call.Outgoing, "+919711636496", "1161568087"},
		{"empty markers", `,"client_ref_id":"","job_id":null`, "", call.Incoming, "+919711636496", "1161568087"},
		// The agent rung first as the caller: the customer is the dialled number.
		{"agent as the caller", ``, `"clid_raw":"918586848544","clid":"8586848544","rdnis":"9811122233"`, call.Outgoing, "+919811122233", ""},
		{"agent as the caller, no dialled number", ``, `"clid_raw":"918586848544","clid":"8586848544","rdnis":"unknown"`, call.Outgoing, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := `{` + base + tt.extra + `}`
			if tt.clid != "" {
				raw = `{"uid":"u1","users":["918586848544"],"call_state":"0",` + tt.clid + tt.extra + `}`
			}
			l, err := ParseInCall("acme", []byte(raw), received)
			require.NoError(t, err)
			assert.Equal(t, tt.dir, l.Direction)
			assert.Equal(t, tt.caller, l.CallerNumber, "the customer")
			assert.Equal(t, tt.did, l.DID)
			assert.Equal(t, []string{"+918586848544"}, l.AgentPhones)
		})
	}
}

func TestParseInCallUsers(t *testing.T) {
	t.Parallel()
	tests := []struct{ users, want string }{
		{`["918586848544"]`, "+918586848544"},
		{`[918586848544, "+91 98100 12345"]`, "+918586848544 +919810012345"},
		{`"[\"918586848544\",\"919810012345\"]"`, "+918586848544 +919810012345"}, // a JSON-encoded list
		{`"918586848544"`, "+918586848544"},                                      // a plain string
		{`"918586848544, 919810012345"`, "+918586848544 +919810012345"},
		{`"918586848544;919810012345"`, "+918586848544 +919810012345"},
		{`918586848544`, "+918586848544"},
		{`""`, ""}, {`null`, ""}, {`[]`, ""}, {`"not a number"`, ""}, {`{"a":1}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.users, func(t *testing.T) {
			t.Parallel()
			l, err := ParseInCall("acme", []byte(`{"uid":"u1","call_state":"0","users":`+tt.users+`}`), received)
			require.NoError(t, err)
			assert.Equal(t, tt.want, strings.Join(l.AgentPhones, " "))
		})
	}
}

func TestParseInCallErrors(t *testing.T) {
	t.Parallel()
	const prefix = "malformed MyOperator payload: inCall: "
	tests := []struct {
		name, tenant, raw, want string
	}{
		{"invalid JSON", "acme", `{"uid":"u1",}`, prefix + "invalid JSON at offset 13: invalid character '}' looking for beginning of object key string"},
		{"string", "acme", `"u1"`, prefix + "want a JSON object, got string"},
		{"missing uid", "acme", `{"id":"5f25296c4122c135","uid":""}`, prefix + `no call id: "uid" is missing`},
		{"no tenant", "", `{"uid":"u1"}`, prefix + "tenant is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := ParseInCall(tt.tenant, []byte(tt.raw), received)
			assert.Nil(t, l)
			require.ErrorIs(t, err, ErrMalformed)
			assert.EqualError(t, err, tt.want)
		})
	}
}

// TestSameCall: the inCall and afterCall of one call share its call id.
func TestSameCall(t *testing.T) {
	t.Parallel()
	live, err := ParseInCall("acme", readTestdata(t, "incall_ringing.json"), received)
	require.NoError(t, err)
	log, err := ParseAfterCall("acme", readTestdata(t, "aftercall_answered.json"), received)
	require.NoError(t, err)
	assert.Equal(t, call.Key(log.Tenant, log.CallID), call.Key(live.Tenant, live.CallID))
	assert.Equal(t, log.CompanyID, live.CompanyID)
}

func TestCompanyID(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, want string }{
		{string(readTestdata(t, "aftercall_answered.json")), "5cd40f6554442586"},
		{string(readTestdata(t, "incall_ringing.json")), "5cd40f6554442586"},
		{`{"company_id":12345}`, "12345"},
		{`{"_ai":"x"}`, ""},
		{`[1]`, ""},
		{`{`, ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, CompanyID([]byte(tt.raw)), tt.raw)
	}
}

// TestSharedFixtures keeps the testdata copies in step with ../shared/fixtures,
// when that checkout is beside the repository.
func TestSharedFixtures(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "..", "shared", "fixtures", "myoperator")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared fixtures not found: %v", err)
	}
	for _, name := range []string{"aftercall_answered.json", "incall_ringing.json"} {
		shared, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.JSONEq(t, string(shared), string(readTestdata(t, name)), "testdata/%s differs from %s", name, dir)
	}
}

// TestGolden compares the parsed form of every testdata payload with its
// .golden file; run with -update to rewrite them.
func TestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw := readTestdata(t, name)
			var v any
			var err error
			if strings.HasPrefix(name, "incall_") {
				v, err = ParseInCall("acme", raw, received)
			} else if strings.HasPrefix(name, "v2_") {
				v, err = ParseV2("acme", raw, received)
			} else if strings.HasPrefix(name, "search_") {
				v, err = ParseSearchHit("acme", raw, received)
			} else {
				v, err = ParseAfterCall("acme", raw, received)
			}
			require.NoError(t, err)
			got, err := json.MarshalIndent(v, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			golden := filepath.Join("testdata", strings.TrimSuffix(name, ".json")+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			if errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s missing: run go test -update", golden)
			}
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
		})
	}
}

// calltrack's click-to-call: the outbound API's reference_id comes back as _cri; the
// call is a click-to-call that carries the reference (for its trace).
func TestParseAfterCallClickRef(t *testing.T) {
	t.Parallel()
	raw := strings.Replace(string(readTestdata(t, "aftercall_answered.json")), `"_cri":""`, `"_cri":"c2c-0123456789abcdef"`, 1)
	l, err := ParseAfterCall("acme", []byte(raw), received)
	require.NoError(t, err)
	assert.True(t, l.ClickToCall)
	assert.Equal(t, "c2c-0123456789abcdef", l.ClickRef)

	l, err = ParseAfterCall("acme", readTestdata(t, "aftercall_answered.json"), received)
	require.NoError(t, err)
	assert.Empty(t, l.ClickRef, "no _cri, no reference")
}
