package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/schemas"
)

var update = flag.Bool("update", false, "rewrite the composed schemas (retry, dlq, held, parked) from the log and recording schemas")

var (
	tLog       = kafkabus.TopicLog
	tLive      = kafkabus.TopicLive
	tRecording = kafkabus.TopicRecording
	tRetry     = kafkabus.TopicRetry
	tDLQ       = kafkabus.TopicDLQ
	tRejected  = kafkabus.TopicRejected
	tMapping   = kafkabus.TopicMapping
	tHeld      = kafkabus.TopicHeld
	tParked    = kafkabus.TopicParked
)

var receivedAt = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// ---------------------------------------------------------------------------
// The schema files themselves.

func TestTopicsAreKafkaTopics(t *testing.T) {
	want := []string{tDLQ, tLive, tLog, tRecording, tRetry, tMapping, tRejected, tHeld, tParked}
	slices.Sort(want)
	if got := schemas.Topics(); !slices.Equal(got, want) {
		t.Fatalf("Topics() = %v, want the topics of kafkabus %v", got, want)
	}
}

func TestEverySchemaCompiles(t *testing.T) {
	for _, topic := range schemas.Topics() {
		t.Run(topic, func(t *testing.T) {
			if _, err := schemas.Compile(topic); err != nil {
				t.Fatal(err)
			}
			doc := loadDoc(t, topic)
			if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %v, want draft 2020-12", doc["$schema"])
			}
			if doc["$id"] != schemas.URL(topic) || schemas.URL(topic) != "https://calltrack.dev/schemas/"+topic+".json" {
				t.Errorf("$id = %v, want %s", doc["$id"], schemas.URL(topic))
			}
			for _, k := range []string{"title", "description"} {
				if s, _ := doc[k].(string); !strings.Contains(s, topic) {
					t.Errorf("%s should name the topic %s: %q", k, topic, s)
				}
			}
			// Self-contained: every $ref is local and resolves.
			walk(doc, func(m map[string]any) {
				ref, ok := m["$ref"].(string)
				if !ok {
					return
				}
				if !strings.HasPrefix(ref, "#/") {
					t.Errorf("$ref %q leaves the document", ref)
					return
				}
				if _, err := pointer(doc, ref); err != nil {
					t.Errorf("$ref %q: %v", ref, err)
				}
			})
		})
	}
	if _, err := schemas.Compile("calltrack.nope.v1"); !errors.Is(err, schemas.ErrUnknownTopic) {
		t.Errorf("Compile(unknown) = %v, want ErrUnknownTopic", err)
	}
	if err := schemas.Validate("calltrack.nope.v1", []byte(`{}`)); !errors.Is(err, schemas.ErrUnknownTopic) {
		t.Errorf("Validate(unknown) = %v, want ErrUnknownTopic", err)
	}
	if _, err := schemas.Source(tLog); err != nil {
		t.Errorf("Source: %v", err)
	}
}

// The examples in each schema are valid instances of it.
func TestSchemaExamples(t *testing.T) {
	for _, topic := range schemas.Topics() {
		doc := loadDoc(t, topic)
		ex, _ := doc["examples"].([]any)
		if len(ex) == 0 {
			t.Errorf("%s: no examples", topic)
		}
		for i, e := range ex {
			var value []byte
			if s, ok := e.(string); ok && topic == tRejected {
				value = []byte(s)
			} else {
				value = mustJSON(t, e)
			}
			if err := schemas.Validate(topic, value); err != nil {
				t.Errorf("%s: example %d: %v", topic, i, err)
			}
			if topic != tRejected {
				validStrict(t, topic, value)
			}
		}
	}
}

// The retry and DLQ schemas inline the log and recording schemas; the copies must
// stay identical. Regenerate with: go test ./schemas -run TestComposedSchemas -update
func TestComposedSchemas(t *testing.T) {
	log := readObject(t, tLog+".json")
	rec := readObject(t, tRecording+".json")
	for _, topic := range []string{tRetry, tDLQ} {
		file := topic + ".json"
		have := readObject(t, file)
		want, err := compose(have, log, rec)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			b, err := json.MarshalIndent(want, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !jsonEqual(mustJSON(t, have), mustJSON(t, want)) {
			t.Errorf("%s is out of date with %s.json and %s.json: run go test ./schemas -run TestComposedSchemas -update", file, tLog, tRecording)
		}
	}
	// The held and parked topics' values are call logs: their schemas are the log's,
	// each with its own $id, title and description.
	for _, topic := range []string{tHeld, tParked} {
		file := topic + ".json"
		have := readObject(t, file)
		want := append(object{}, log...)
		for i, m := range want {
			if m.Key == "$id" || m.Key == "title" || m.Key == "description" {
				want[i].Value = have.get(m.Key)
			}
		}
		if *update {
			b, err := json.MarshalIndent(want, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		} else if !jsonEqual(mustJSON(t, have), mustJSON(t, want)) {
			t.Errorf("%s is out of date with %s.json: run go test ./schemas -run TestComposedSchemas -update", file, tLog)
		}
	}
}

// The parked topic is compacted: a tombstone (an empty value) is valid.
func TestParkedTombstone(t *testing.T) {
	if err := schemas.Validate(tParked, nil); err != nil {
		t.Errorf("a tombstone is valid: %v", err)
	}
}

// Every field of the Go types is in the schema under its JSON name, with the JSON
// type it marshals to, and it is required exactly when it has no omitempty/omitzero
// (those are always present). Every schema property is a field of the Go type.
func TestSchemasMatchGoTypes(t *testing.T) {
	cases := []struct {
		topic, ptr string
		typ        reflect.Type
	}{
		{tLog, "", reflect.TypeFor[call.Log]()},
		{tHeld, "", reflect.TypeFor[call.Log]()},
		{tLive, "", reflect.TypeFor[call.Live]()},
		{tRecording, "", reflect.TypeFor[call.RecordingEvent]()},
		{tMapping, "", reflect.TypeFor[call.Mapping]()},
		{tParked, "", reflect.TypeFor[call.Log]()},
		{tRetry, "#/$defs/log", reflect.TypeFor[call.Log]()},
		{tRetry, "#/$defs/recording_event", reflect.TypeFor[call.RecordingEvent]()},
		{tDLQ, "#/$defs/log", reflect.TypeFor[call.Log]()},
		{tDLQ, "#/$defs/recording_event", reflect.TypeFor[call.RecordingEvent]()},
	}
	for _, c := range cases {
		t.Run(c.topic+c.ptr, func(t *testing.T) {
			doc := loadDoc(t, c.topic)
			s := doc
			if c.ptr != "" {
				v, err := pointer(doc, c.ptr)
				if err != nil {
					t.Fatal(err)
				}
				s = v.(map[string]any)
			}
			matchType(t, doc, s, c.typ, c.typ.Name())
		})
	}
}

func matchType(t *testing.T, doc, s map[string]any, typ reflect.Type, path string) {
	t.Helper()
	s = resolve(t, doc, s)
	switch {
	case typ == reflect.TypeFor[time.Time]():
		if s["type"] != "string" || s["format"] != "date-time" {
			t.Errorf("%s: a time.Time should be {type: string, format: date-time}, got %v", path, s)
		}
	case typ.Kind() == reflect.Pointer:
		matchType(t, doc, s, typ.Elem(), path)
	case typ.Kind() == reflect.Slice:
		if s["type"] != "array" {
			t.Errorf("%s: type %v, want array", path, s["type"])
		}
		items, _ := s["items"].(map[string]any)
		if items == nil {
			t.Errorf("%s: no items", path)
			return
		}
		matchType(t, doc, items, typ.Elem(), path+"[]")
	case typ.Kind() == reflect.String:
		if enum, ok := s["enum"].([]any); ok {
			for _, e := range enum {
				if _, ok := e.(string); !ok {
					t.Errorf("%s: enum value %v is not a string", path, e)
				}
			}
		} else if s["type"] != "string" {
			t.Errorf("%s: type %v, want string", path, s["type"])
		}
	case typ.Kind() == reflect.Bool:
		if s["type"] != "boolean" {
			t.Errorf("%s: type %v, want boolean", path, s["type"])
		}
	case typ.Kind() == reflect.Int:
		if s["type"] != "integer" {
			t.Errorf("%s: type %v, want integer", path, s["type"])
		}
	case typ.Kind() == reflect.Struct:
		if s["type"] != "object" {
			t.Errorf("%s: type %v, want object", path, s["type"])
		}
		props, _ := s["properties"].(map[string]any)
		var required []string
		for _, r := range asSlice(s["required"]) {
			required = append(required, r.(string))
		}
		seen := map[string]bool{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			seen[name] = true
			fp := path + "." + name
			p, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("%s: Go field %s.%s is not in the schema", fp, typ.Name(), f.Name)
				continue
			}
			omit := slices.ContainsFunc(strings.Split(opts, ","), func(o string) bool { return o == "omitempty" || o == "omitzero" })
			if req := slices.Contains(required, name); req == omit {
				t.Errorf("%s: required=%v in the schema, but the Go field is always present=%v", fp, req, !omit)
			}
			matchType(t, doc, p, f.Type, fp)
		}
		for name := range props {
			if !seen[name] {
				t.Errorf("%s.%s: schema property has no field in Go type %s", path, name, typ.Name())
			}
		}
	default:
		t.Errorf("%s: Go kind %s not handled by the test", path, typ.Kind())
	}
}

// ---------------------------------------------------------------------------
// Events built in Go.

func fullLog() call.Log {
	sumit := call.Agent{ID: "5cd40f6556f2f124", Name: "Sumit", Email: "sumit.arya@example.com", Extension: "10", Phone: "+918586848544"}
	priya := call.Agent{ID: "5cd40f6556f2f200", Name: "Priya", Email: "priya.nair@example.com", Extension: "11", Phone: "+919810012345"}
	start := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	return call.Log{
		Tenant: "acme", CallID: "n2.1700000000.1000001", LogID: "6a01b2c3d4e5f601", CompanyID: "5cd40f6554442586",
		Source: myoperator.SourceV1, Direction: call.Incoming, Status: call.Answered, ClickToCall: true,
		CallerNumber: "+919711636496", DID: "1161568087", Department: "sales", DepartmentID: "5cd40f6559784843",
		StartedAt: start, EndedAt: start.Add(95 * time.Second), Duration: 95,
		Legs: []call.Leg{
			{RingStart: start.Add(5 * time.Second), DialStatus: "ANSWER", Action: "transferred", DID: "1161568087",
				StartedAt: start.Add(5 * time.Second), EndedAt: start.Add(45 * time.Second), Duration: 40, Answered: true,
				Agents: []call.Agent{sumit}, AnsweredBy: &sumit, Transfers: []call.Agent{priya}},
			{RingStart: start.Add(45 * time.Second), DialStatus: "ANSWER", Action: "received",
				StartedAt: start.Add(46 * time.Second), EndedAt: start.Add(95500 * time.Millisecond), Duration: 49, Answered: true,
				Agents: []call.Agent{priya}, AnsweredBy: &priya},
		},
		Agent:       &priya,
		Owner:       &call.Owner{CRMUserID: "1201", Email: "priya.nair@example.com", Name: "Priya Nair", Source: call.MappingEmailMatch},
		Recording:   &call.Recording{URL: "https://app.myoperator.co/audio/e673c2f4", FileName: "e673c2f4.mp3"},
		Disposition: "interested",
		ReceivedAt:  time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.FixedZone("IST", 19800)),
	}
}

func minimalLog() call.Log {
	return call.Log{Tenant: "acme", CallID: "6a01b2c3d4e5f609", Source: myoperator.SourceV1,
		Direction: call.Outgoing, Status: call.Missed, ReceivedAt: receivedAt}
}

func TestLogEvents(t *testing.T) {
	full := fullLog()
	validEvent(t, tLog, full)
	// Every property of the schema (and of its $defs) is exercised by fullLog.
	b := mustJSON(t, full)
	for _, prop := range []string{"log_id", "company_id", "caller_number", "did", "department", "department_id",
		"started_at", "ended_at", "legs", "ring_start", "dial_status", "action", "answered_by", "transfers",
		"agent", "extension", "owner", "crm_user_id", "recording", "file_name", "disposition"} {
		if !bytes.Contains(b, []byte(`"`+prop+`"`)) {
			t.Errorf("fullLog does not exercise %q", prop)
		}
	}
	validEvent(t, tLog, minimalLog())

	voicemail := minimalLog()
	voicemail.Status, voicemail.Direction = call.Voicemail, call.Incoming
	voicemail.Owner = &call.Owner{CRMUserID: "fallback-7", Source: "fallback"}
	voicemail.Recording = &call.Recording{FileName: "vm.mp3"}
	validEvent(t, tLog, voicemail)

	// The retry and DLQ topics carry call logs unchanged.
	for _, topic := range []string{tRetry, tDLQ} {
		validEvent(t, topic, full)
		validEvent(t, topic, minimalLog())
	}
}

func TestLogNegative(t *testing.T) {
	cases := map[string]struct {
		mutate func(m map[string]any)
		want   string // in the error
	}{
		"status bogus":                {func(m map[string]any) { m["status"] = "bogus" }, "/status"},
		"direction bogus":             {func(m map[string]any) { m["direction"] = "sideways" }, "/direction"},
		"missing call_id":             {func(m map[string]any) { delete(m, "call_id") }, "call_id"},
		"empty call_id":               {func(m map[string]any) { m["call_id"] = "" }, "/call_id"},
		"missing tenant":              {func(m map[string]any) { delete(m, "tenant") }, "tenant"},
		"missing received_at":         {func(m map[string]any) { delete(m, "received_at") }, "received_at"},
		"missing click_to_call":       {func(m map[string]any) { delete(m, "click_to_call") }, "click_to_call"},
		"caller number not E.164":     {func(m map[string]any) { m["caller_number"] = "9711636496" }, "/caller_number"},
		"caller number with a 0":      {func(m map[string]any) { m["caller_number"] = "+09711636496" }, "/caller_number"},
		"caller number too long":      {func(m map[string]any) { m["caller_number"] = "+9197116364961234" }, "/caller_number"},
		"agent phone not E.164":       {func(m map[string]any) { m["agent"].(map[string]any)["phone"] = "98585-48544" }, "/agent/phone"},
		"leg agent phone":             {func(m map[string]any) { leg0(m)["agents"].([]any)[0].(map[string]any)["phone"] = "x" }, "/legs/0/agents/0/phone"},
		"owner without crm_user_id":   {func(m map[string]any) { delete(m["owner"].(map[string]any), "crm_user_id") }, "crm_user_id"},
		"owner with empty crm user":   {func(m map[string]any) { m["owner"].(map[string]any)["crm_user_id"] = "" }, "/owner/crm_user_id"},
		"negative duration":           {func(m map[string]any) { m["duration_seconds"] = -1 }, "/duration_seconds"},
		"fractional duration":         {func(m map[string]any) { m["duration_seconds"] = 1.5 }, "/duration_seconds"},
		"duration as string":          {func(m map[string]any) { m["duration_seconds"] = "39" }, "/duration_seconds"},
		"received_at not a date-time": {func(m map[string]any) { m["received_at"] = "2024-01-02 03:04:05" }, "/received_at"},
		"leg without answered":        {func(m map[string]any) { delete(leg0(m), "answered") }, "answered"},
		"empty recording":             {func(m map[string]any) { m["recording"] = map[string]any{} }, "/recording"},
		"owner null":                  {func(m map[string]any) { m["owner"] = nil }, "/owner"},
		"empty agent":                 {func(m map[string]any) { m["agent"] = map[string]any{} }, "/agent"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			v := mutate(t, fullLog(), c.mutate)
			for _, topic := range []string{tLog, tRetry, tDLQ} {
				invalid(t, topic, v, c.want)
			}
		})
	}
	for _, raw := range []string{``, `null`, `[]`, `"x"`, `{`, `{} {}`} {
		if err := schemas.Validate(tLog, []byte(raw)); err == nil {
			t.Errorf("Validate(%q) passed", raw)
		}
	}
}

func leg0(m map[string]any) map[string]any { return m["legs"].([]any)[0].(map[string]any) }

func fullLive() call.Live {
	m := call.Mapping{MyOperatorUserID: "5cd40f6556f2f124", CRMUserID: "1201", Email: "sumit.arya@example.com",
		Name: "Sumit Arya", Phones: []string{"+918586848544"}, Source: call.MappingEmailMatch, Status: call.MappingActive}
	return call.Live{
		Tenant: "acme", CallID: "n2.1596270949.2175190", LogID: "5f25296c4122c135", CompanyID: "5cd40f6554442586",
		Source: myoperator.SourceV1, State: call.LiveAnswered, Direction: call.Outgoing, CallerNumber: "+919711636496",
		DID: "1161568087", AgentPhones: []string{"+918586848544", "+919810012345"},
		Agents:   []call.Agent{{ID: m.MyOperatorUserID, Email: m.Email, Name: m.Name, Phone: "+918586848544"}},
		Owners:   []call.Owner{*m.Owner()},
		CallTime: time.Date(2020, 8, 1, 8, 35, 56, 0, time.UTC), ReceivedAt: receivedAt,
	}
}

func TestLiveEvents(t *testing.T) {
	validEvent(t, tLive, fullLive())
	for _, st := range []call.LiveState{call.Ringing, call.LiveAnswered, call.Ended, call.LiveMissed} {
		validEvent(t, tLive, call.Live{Tenant: "acme", CallID: "n2.1", Source: myoperator.SourceV1, State: st, ReceivedAt: receivedAt})
	}
	cases := map[string]struct {
		mutate func(m map[string]any)
		want   string
	}{
		"state bogus":            {func(m map[string]any) { m["state"] = "bogus" }, "/state"},
		"missing state":          {func(m map[string]any) { delete(m, "state") }, "state"},
		"missing call_id":        {func(m map[string]any) { delete(m, "call_id") }, "call_id"},
		"agent phone not E.164":  {func(m map[string]any) { m["agent_phones"] = []any{"918586848544"} }, "/agent_phones/0"},
		"duplicate agent phones": {func(m map[string]any) { m["agent_phones"] = []any{"+918586848544", "+918586848544"} }, "/agent_phones"},
		"owner without crm user": {func(m map[string]any) { m["owners"] = []any{map[string]any{"name": "x"}} }, "crm_user_id"},
		"call_time not a time":   {func(m map[string]any) { m["call_time"] = "2020-08-01 08:35:56" }, "/call_time"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { invalid(t, tLive, mutate(t, fullLive(), c.mutate), c.want) })
	}
}

func TestRecordingEvents(t *testing.T) {
	ev := call.RecordingEvent{Tenant: "acme", CallID: "n2.1596270949.2175190",
		Recording: call.Recording{URL: "https://app.myoperator.co/audio/e673c2f4", FileName: "e673c2f4.mp3"}, ReceivedAt: receivedAt}
	for _, topic := range []string{tRecording, tRetry, tDLQ} {
		validEvent(t, topic, ev)
		validEvent(t, topic, call.RecordingEvent{Tenant: "acme", CallID: "c1", Recording: call.Recording{URL: "https://x/y"}, ReceivedAt: receivedAt})
		validEvent(t, topic, call.RecordingEvent{Tenant: "acme", CallID: "c1", Recording: call.Recording{FileName: "y.mp3"}, ReceivedAt: receivedAt})
		// A disposition alone (the recording is then {}), and both.
		validEvent(t, topic, call.RecordingEvent{Tenant: "acme", CallID: "c1", Disposition: "callback", ReceivedAt: receivedAt})
		both := ev
		both.Disposition = "interested"
		validEvent(t, topic, both)
		// Neither a recording nor a disposition is nothing to add.
		invalid(t, topic, mustJSON(t, call.RecordingEvent{Tenant: "acme", CallID: "c1", ReceivedAt: receivedAt}), "recording")
		invalid(t, topic, []byte(`{"tenant":"acme","call_id":"c1","recording":{},"disposition":"","received_at":"2024-01-02T03:04:05Z"}`), "")
		invalid(t, topic, mutate(t, ev, func(m map[string]any) { delete(m, "call_id") }), "call_id")
	}
	invalid(t, tRecording, mutate(t, ev, func(m map[string]any) { delete(m, "recording") }), "recording")
	// Neither a log nor a recording event.
	for _, topic := range []string{tRetry, tDLQ} {
		invalid(t, topic, []byte(`{"tenant":"acme","call_id":"c1"}`), "")
	}
}

func TestMappingEvents(t *testing.T) {
	// As the admin API stores it.
	m := call.Mapping{MyOperatorUserID: "5cd40f6556f2f124", CRMUserID: "1201", Email: "sumit.arya@example.com",
		Phones: []string{"+918586848544", "+14155550100"}, Name: "Sumit Arya", Source: call.MappingManual,
		Status: call.MappingActive, UpdatedAt: time.Now().UTC(), UpdatedBy: "admin-api"}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	validEvent(t, tMapping, m)
	for _, st := range []string{call.MappingActive, call.MappingPending, call.MappingSuspended} {
		validEvent(t, tMapping, call.Mapping{MyOperatorUserID: "u1", CRMUserID: "c1", Source: call.MappingEmailMatch, Status: st})
	}
	// A tombstone (deleted mapping) has no value and is not validated.
	for _, tomb := range [][]byte{nil, {}} {
		if err := schemas.Validate(tMapping, tomb); err != nil {
			t.Errorf("tombstone: %v", err)
		}
	}
	cases := map[string]struct {
		mutate func(m map[string]any)
		want   string
	}{
		"status bogus":        {func(m map[string]any) { m["status"] = "bogus" }, "/status"},
		"phone not E.164":     {func(m map[string]any) { m["phones"] = []any{"9711636496"} }, "/phones/0"},
		"missing crm_user_id": {func(m map[string]any) { delete(m, "crm_user_id") }, "crm_user_id"},
		"blank crm_user_id":   {func(m map[string]any) { m["crm_user_id"] = "  " }, "/crm_user_id"},
		"blank agent":         {func(m map[string]any) { m["myoperator_user_id"] = "" }, "/myoperator_user_id"},
		"missing updated_at":  {func(m map[string]any) { delete(m, "updated_at") }, "updated_at"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { invalid(t, tMapping, mutate(t, m, c.mutate), c.want) })
	}
	invalid(t, tMapping, []byte(`null`), "")
}

func TestRejected(t *testing.T) {
	for _, body := range []string{
		"myoperator=%7B%22_ai%22%3A1%7D",
		`{"_ai":"5f114f490dbe2437","_ev":9}`,
		"not json at all",
		"",
		"\xff\xfe binary \x00",
	} {
		if err := schemas.Validate(tRejected, []byte(body)); err != nil {
			t.Errorf("Validate(rejected, %q) = %v", body, err)
		}
	}
	if err := schemas.Validate(tRejected, bytes.Repeat([]byte("x"), 1<<20+1)); err == nil {
		t.Error("a body over the 1 MiB limit passed")
	}
}

// ---------------------------------------------------------------------------
// Events produced by the MyOperator parsers from the fixtures.

func TestMyOperatorFixtures(t *testing.T) {
	var files []string
	for _, pat := range []string{"../internal/myoperator/testdata/*.json", "../internal/app/samples/*.json"} {
		f, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f...)
	}
	if len(files) == 0 {
		t.Skip("no MyOperator fixtures")
	}
	var logs, lives int
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, "../internal/"), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := myoperator.ExtractJSON("application/json", body, nil)
			if err != nil {
				t.Skipf("negative fixture: %v", err)
			}
			l, lerr := myoperator.ParseAfterCall("acme", raw, receivedAt)
			lv, verr := myoperator.ParseInCall("acme", raw, receivedAt)
			if lerr != nil && verr != nil {
				t.Skipf("negative fixture: %v; %v", lerr, verr)
			}
			incall := strings.Contains(filepath.Base(f), "incall")
			if incall && verr != nil || !incall && lerr != nil {
				t.Logf("note: parsed by the other parser than its name says (afterCall: %v; inCall: %v)", lerr, verr)
			}
			if lerr == nil {
				logs++
				checkProducedLog(t, l)
			}
			if verr == nil {
				lives++
				checkProducedLive(t, lv)
			}
		})
	}
	if logs == 0 || lives == 0 {
		t.Errorf("fixtures gave %d call logs and %d live events; want some of each", logs, lives)
	}
}

// checkProducedLog validates what ingest publishes for an afterCall: the log as
// parsed (unattributed), attributed to a mapped owner or the fallback owner, and the
// recording event; and the same values on retry and DLQ.
func checkProducedLog(t *testing.T, l *call.Log) {
	t.Helper()
	if l.Owner != nil {
		t.Errorf("parser set an owner: %+v", l.Owner)
	}
	validEvent(t, tLog, l)
	m := call.Mapping{MyOperatorUserID: "5cd40f6556f2f124", CRMUserID: "1201", Email: "sumit.arya@example.com",
		Name: "Sumit Arya", Source: call.MappingEmailMatch, Status: call.MappingActive}
	for _, owner := range []*call.Owner{m.Owner(), {CRMUserID: "42", Source: "fallback"}} {
		attributed := *l
		attributed.Owner = owner
		for _, topic := range []string{tLog, tRetry, tDLQ} {
			validEvent(t, topic, &attributed)
		}
	}
	if !l.Recording.Empty() {
		rec := call.RecordingEvent{Tenant: l.Tenant, CallID: l.CallID, Recording: *l.Recording, ReceivedAt: l.ReceivedAt}
		for _, topic := range []string{tRecording, tRetry, tDLQ} {
			validEvent(t, topic, rec)
		}
	}
}

// checkProducedLive validates an inCall event as parsed and as ingest completes it
// with the mapped agents and owners.
func checkProducedLive(t *testing.T, lv *call.Live) {
	t.Helper()
	validEvent(t, tLive, lv)
	withOwners := *lv
	for i, p := range lv.AgentPhones {
		m := call.Mapping{MyOperatorUserID: fmt.Sprintf("5cd40f6556f2f1%02d", i), CRMUserID: fmt.Sprint(1200 + i),
			Email: fmt.Sprintf("agent%d@example.com", i), Phones: []string{p}, Source: call.MappingManual, Status: call.MappingActive}
		withOwners.Agents = append(withOwners.Agents, call.Agent{ID: m.MyOperatorUserID, Email: m.Email, Name: m.Name, Phone: p})
		withOwners.Owners = append(withOwners.Owners, *m.Owner())
	}
	validEvent(t, tLive, &withOwners)
}

// The golden files of the parser tests are marshalled events too.
func TestMyOperatorGoldens(t *testing.T) {
	files, _ := filepath.Glob("../internal/myoperator/testdata/*.golden")
	if len(files) == 0 {
		t.Skip("no golden files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(filepath.Base(f), "v2_") {
			checkV2Golden(t, f, b)
			continue
		}
		topic := tLog
		if strings.Contains(filepath.Base(f), "incall") {
			topic = tLive
		}
		if err := schemas.Validate(topic, b); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
		validStrict(t, topic, b)
	}
}

func TestConcurrentUse(t *testing.T) {
	values := map[string][]byte{
		tLog: mustJSON(t, fullLog()), tLive: mustJSON(t, fullLive()), tRetry: mustJSON(t, minimalLog()), tDLQ: mustJSON(t, fullLog()),
		tRecording: []byte(`{"tenant":"a","call_id":"c","recording":{"url":"u"},"received_at":"2024-01-02T03:04:05Z"}`),
		tMapping:   nil, tRejected: []byte("myoperator=x"),
	}
	var wg sync.WaitGroup
	for range 8 {
		for topic, v := range values {
			wg.Go(func() {
				for range 20 {
					if _, err := schemas.Compile(topic); err != nil {
						t.Error(err)
					}
					if err := schemas.Validate(topic, v); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
}

// ---------------------------------------------------------------------------
// Helpers.

// validEvent marshals v with encoding/json (as the producers do) and checks it
// passes the topic's schema, and also a strict copy of it that refuses undeclared
// properties: a produced event uses only documented properties.
func validEvent(t *testing.T, topic string, v any) {
	t.Helper()
	b := mustJSON(t, v)
	if err := schemas.Validate(topic, b); err != nil {
		t.Errorf("%s: %v\nvalue: %s", topic, err, b)
		return
	}
	validStrict(t, topic, b)
}

func invalid(t *testing.T, topic string, value []byte, want string) {
	t.Helper()
	err := schemas.Validate(topic, value)
	if err == nil {
		t.Errorf("%s: invalid value passed: %s", topic, value)
		return
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) && !bytes.Equal(value, []byte("null")) {
		t.Errorf("%s: error is not a *jsonschema.ValidationError: %v", topic, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error does not mention %q: %v", topic, want, err)
	}
}

var strictCache sync.Map // topic → *jsonschema.Schema

func validStrict(t *testing.T, topic string, value []byte) {
	t.Helper()
	sch, ok := strictCache.Load(topic)
	if !ok {
		doc := loadDoc(t, topic)
		walk(doc, func(m map[string]any) {
			// Only object shapes: not constraint-only subschemas like {"properties": {"recording": ...}}.
			if _, ok := m["properties"].(map[string]any); ok && m["type"] == "object" {
				if _, set := m["additionalProperties"]; !set {
					m["additionalProperties"] = false
				}
			}
		})
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource(schemas.URL(topic), doc); err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile(schemas.URL(topic))
		if err != nil {
			t.Fatal(err)
		}
		sch, _ = strictCache.LoadOrStore(topic, s)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.(*jsonschema.Schema).Validate(inst); err != nil {
		t.Errorf("%s: the value has properties the schema does not declare: %v", topic, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mutate marshals v, lets f change the decoded object, and marshals it again.
func mutate(t *testing.T, v any, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(mustJSON(t, v), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	return mustJSON(t, m)
}

func loadDoc(t *testing.T, topic string) map[string]any {
	t.Helper()
	b, err := schemas.Source(topic)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}

// walk calls f on every JSON object in v.
func walk(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		f(v)
		for _, x := range v {
			walk(x, f)
		}
	case []any:
		for _, x := range v {
			walk(x, f)
		}
	}
}

// pointer resolves a local "#/a/b" JSON pointer in doc.
func pointer(doc any, ref string) (any, error) {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not in an object", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("%s: no %q", ref, tok)
		}
	}
	return cur, nil
}

// resolve follows $ref until a schema without one.
func resolve(t *testing.T, doc, s map[string]any) map[string]any {
	t.Helper()
	for range 10 {
		ref, ok := s["$ref"].(string)
		if !ok {
			// {"allOf": [{"$ref": shape}, {"$ref": constraint}]}: the shape comes first.
			if all := asSlice(s["allOf"]); len(all) > 0 && s["type"] == nil {
				s = all[0].(map[string]any)
				continue
			}
			return s
		}
		v, err := pointer(doc, ref)
		if err != nil {
			t.Fatal(err)
		}
		s = v.(map[string]any)
	}
	t.Fatal("$ref loop")
	return nil
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// object is a JSON object that keeps the order of its members.
type object []member

type member struct {
	Key   string
	Value json.RawMessage
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.Key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.Value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o object) get(key string) json.RawMessage {
	for _, m := range o {
		if m.Key == key {
			return m.Value
		}
	}
	return nil
}

func (o object) without(keys ...string) object {
	var out object
	for _, m := range o {
		if !slices.Contains(keys, m.Key) {
			out = append(out, m)
		}
	}
	return out
}

func parseObject(b []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o = append(o, member{tok.(string), v})
	}
	return o, nil
}

func readObject(t *testing.T, file string) object {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseObject(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return o
}

// oneOf of a retry/DLQ schema: a call log, or a recording event. A call log may
// carry a recording, so it would pass as a recording event too; the second branch
// is therefore only for values with none of the properties a call log requires and
// a recording event lacks, and a broken call log is not taken for a recording event.
const oneOf = `[
  {"$ref": "#/$defs/log"},
  {"$ref": "#/$defs/recording_event",
   "not": {"anyOf": [{"required": ["source"]}, {"required": ["direction"]}, {"required": ["status"]},
                     {"required": ["click_to_call"]}, {"required": ["duration_seconds"]}]}}
]`

// compose builds a retry/DLQ schema: the root keywords of have ($id, title,
// description, ...) and oneOf the inlined log and recording-event schemas, whose
// $defs are merged into the root's (they refer to them as "#/$defs/...").
func compose(have, log, rec object) (object, error) {
	marshal := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	strip := []string{"$schema", "$id", "$defs", "examples"}
	defs := object{{"log", marshal(log.without(strip...))}, {"recording_event", marshal(rec.without(strip...))}}
	var examples []json.RawMessage
	for _, src := range []object{log, rec} {
		d, err := parseObject(src.get("$defs"))
		if err != nil {
			return nil, err
		}
		for _, m := range d {
			if prev := defs.get(m.Key); prev != nil {
				if m.Key == "log" || m.Key == "recording_event" || !jsonEqual(prev, m.Value) {
					return nil, fmt.Errorf("$defs/%s clashes between the log and recording schemas", m.Key)
				}
				continue
			}
			defs = append(defs, m)
		}
		var ex []json.RawMessage
		if err := json.Unmarshal(src.get("examples"), &ex); err != nil {
			return nil, err
		}
		examples = append(examples, ex...)
	}
	out := have.without("oneOf", "anyOf", "$defs", "examples")
	out = append(out,
		member{"oneOf", json.RawMessage(oneOf)},
		member{"$defs", marshal(defs)},
		member{"examples", marshal(examples)})
	return out, nil
}
