package myoperator

import (
	"net/url"
	"testing"

	"github.com/calltrack/calltrack/internal/testenv"
)

// BenchmarkParse is the parsers' cost per webhook (issue 14), each on a testdata payload:
// go test -run '^$' -bench . -benchmem ./internal/myoperator/ (figures in BENCHMARKS.md).
func BenchmarkParse(b *testing.B) {
	formBody := func(raw []byte) []byte { return []byte("myoperator=" + url.QueryEscape(string(raw))) }
	for _, bc := range []struct {
		name, file string
		prepare    func([]byte) []byte
		parse      func([]byte) error
	}{
		{"AfterCall", "aftercall_answered.json", nil, func(raw []byte) error { _, err := ParseAfterCall("acme", raw, received); return err }},
		{"InCall", "incall_ringing.json", nil, func(raw []byte) error { _, err := ParseInCall("acme", raw, received); return err }},
		{"V2Summary", "v2_call_summary.json", nil, func(raw []byte) error { _, err := ParseV2("acme", raw, received); return err }},
		// What ingest hashes to recognise a redelivery.
		{"Canonical", "aftercall_answered.json", nil, func(raw []byte) error { Canonical(raw); return nil }},
		// The form-encoded delivery (myoperator=<json>) as MyOperator posts it: unescaped first.
		{"ExtractJSONForm", "aftercall_answered.json", formBody, func(body []byte) error {
			_, err := ExtractJSON("application/x-www-form-urlencoded", body, nil)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := readTestdata(b, bc.file)
			if bc.prepare != nil {
				in = bc.prepare(in)
			}
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			defer testenv.ReportCPUPerOp(b, testenv.CPUTime())
			for b.Loop() {
				if err := bc.parse(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
