package schemas_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/schemas"
)

// FuzzProducedEvents: whatever payload the MyOperator parsers accept, the events
// they produce match the schemas. Seeds are the parser fixtures; run with
// go test ./schemas -fuzz FuzzProducedEvents.
func FuzzProducedEvents(f *testing.F) {
	files, _ := filepath.Glob("../internal/myoperator/testdata/*.json")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"_ai":"a1","_ev":1,"_su":1,"_cy":"+1","_cl":"4155550100","_ld":[{"_rr":[{"_id":"u","_nr":"0091 98585 48544"}]}]}`))
	f.Add([]byte(`{"uid":"u1","users":["+14155550100","0091-9858548544"],"clid_raw":"00442071234567","call_state":3}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if l, err := myoperator.ParseAfterCall("acme", raw, receivedAt); err == nil {
			l.Owner = &call.Owner{CRMUserID: "1201", Source: "fallback"}
			b, err := json.Marshal(l)
			if err != nil {
				t.Skip("not marshallable") // e.g. a time out of JSON's range
			}
			if err := schemas.Validate(tLog, b); err != nil {
				t.Errorf("afterCall %s\n→ %s\n%v", raw, b, err)
			}
			if !l.Recording.Empty() {
				b, _ := json.Marshal(call.RecordingEvent{Tenant: l.Tenant, CallID: l.CallID, Recording: *l.Recording, ReceivedAt: l.ReceivedAt})
				if err := schemas.Validate(tRecording, b); err != nil {
					t.Errorf("afterCall %s\n→ recording %s\n%v", raw, b, err)
				}
			}
		}
		if lv, err := myoperator.ParseInCall("acme", raw, receivedAt); err == nil {
			b, err := json.Marshal(lv)
			if err != nil {
				t.Skip("not marshallable")
			}
			if err := schemas.Validate(tLive, b); err != nil {
				t.Errorf("inCall %s\n→ %s\n%v", raw, b, err)
			}
		}
	})
}
