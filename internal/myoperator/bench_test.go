package myoperator

import (
	"net/url"
	"testing"

	"github.com/calltrack/calltrack/internal/testenv"
)

// The parsers' cost per webhook (issue 14): go test -run '^$' -bench . -benchmem ./internal/myoperator/
// Figures and the machine are in BENCHMARKS.md.

func BenchmarkParseAfterCall(b *testing.B) {
	raw := readTestdata(b, "aftercall_answered.json")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	defer testenv.ReportCPUPerOp(b, testenv.CPUTime())
	for b.Loop() {
		if _, err := ParseAfterCall("acme", raw, received); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseInCall(b *testing.B) {
	raw := readTestdata(b, "incall_ringing.json")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	defer testenv.ReportCPUPerOp(b, testenv.CPUTime())
	for b.Loop() {
		if _, err := ParseInCall("acme", raw, received); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseV2Summary(b *testing.B) {
	raw := readTestdata(b, "v2_call_summary.json")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	defer testenv.ReportCPUPerOp(b, testenv.CPUTime())
	for b.Loop() {
		if _, err := ParseV2("acme", raw, received); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExtractJSONForm is the form-encoded delivery (myoperator=<json>) as
// MyOperator posts it: the body is unescaped before parsing.
func BenchmarkExtractJSONForm(b *testing.B) {
	raw := readTestdata(b, "aftercall_answered.json")
	body := []byte("myoperator=" + url.QueryEscape(string(raw)))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	defer testenv.ReportCPUPerOp(b, testenv.CPUTime())
	for b.Loop() {
		if _, err := ExtractJSON("application/x-www-form-urlencoded", body, nil); err != nil {
			b.Fatal(err)
		}
	}
}
