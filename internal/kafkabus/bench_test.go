package kafkabus_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/internal/testenv"
)

// BenchmarkEncodeCallLog is ingest's encoding of one afterCall: the call log as JSON
// and the Kafka message with its CloudEvents headers (issue 14), by call.Log.AppendJSON
// (ingest's) and by json.Marshal (the baseline it replaced, the same bytes):
// go test -run '^$' -bench . -benchmem ./internal/kafkabus/
func BenchmarkEncodeCallLog(b *testing.B) {
	l := sampleLog(b)
	l.Owner = &call.Owner{CRMUserID: "1001", Source: "manual"}
	for _, enc := range []struct {
		name string
		fn   func() ([]byte, error)
	}{
		{"append", func() ([]byte, error) { return l.AppendJSON(make([]byte, 0, 2048)) }},
		{"marshal", func() ([]byte, error) { return json.Marshal(l) }},
	} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			defer testenv.ReportCPUPerOp(b, testenv.CPUTime())
			for b.Loop() {
				val, err := enc.fn()
				if err != nil {
					b.Fatal(err)
				}
				m := kafkabus.Event(kafkabus.TopicLog, call.Key("acme", l.CallID), "calltrack/ingest", "acme", l.CallID, val)
				if len(m.Value) == 0 {
					b.Fatal("empty")
				}
			}
		})
	}
}

// BenchmarkDecodeCallLog is the writer's side: the call log back from JSON.
func BenchmarkDecodeCallLog(b *testing.B) {
	val, _ := json.Marshal(sampleLog(b))
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	defer testenv.ReportCPUPerOp(b, testenv.CPUTime())
	for b.Loop() {
		var got call.Log
		if err := json.Unmarshal(val, &got); err != nil {
			b.Fatal(err)
		}
	}
}

// sampleLog is the sample afterCall (the one `calltrack dev` serves), parsed.
func sampleLog(b *testing.B) *call.Log {
	raw, err := os.ReadFile("../app/samples/aftercall_answered.json")
	if err != nil {
		b.Fatal(err)
	}
	l, err := myoperator.ParseAfterCall("acme", raw, time.Now().UTC())
	if err != nil {
		b.Fatal(err)
	}
	return l
}
