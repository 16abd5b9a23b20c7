package myoperator

import (
	"errors"
	"strings"
	"testing"
)

// A call id goes into Redis keys, trace pages and the CRM record: one no MyOperator
// call has (a NUL, other control characters, thousands of bytes) is a malformed
// payload — answered 400 and kept on the rejected topic — not a call.
func TestCallIDChecked(t *testing.T) {
	after := string(readTestdata(t, "aftercall_answered.json"))
	in := string(readTestdata(t, "incall_ringing.json"))
	v2 := string(readTestdata(t, "v2_call_summary.json"))
	const id = "n2.1596270949.2175190"
	for _, c := range []struct {
		name, callID string
		ok           bool
	}{
		{"MyOperator's", "obd.1796173655.e46f9724", true},
		{"128 bytes", strings.Repeat("a", 128), true},
		{"129 bytes", strings.Repeat("a", 129), false},
		{"a NUL", `n2.1\u0000`, false},
		{"a newline", `n2.1\n2`, false},
		{"a DEL", "n2.1\u007f", false},
	} {
		for _, p := range []struct {
			kind  string
			parse func() error
		}{
			{"afterCall", func() error {
				_, err := ParseAfterCall("acme", []byte(strings.ReplaceAll(after, id, c.callID)), received)
				return err
			}},
			{"afterCall's log id", func() error {
				_, err := ParseAfterCall("acme", []byte(strings.ReplaceAll(after, "5f114f490dbe2437", c.callID)), received)
				return err
			}},
			{"inCall", func() error {
				_, err := ParseInCall("acme", []byte(strings.ReplaceAll(in, id, c.callID)), received)
				return err
			}},
			{"v2", func() error {
				_, err := ParseV2("acme", []byte(strings.ReplaceAll(v2, id, c.callID)), received)
				return err
			}},
		} {
			err := p.parse()
			if c.ok && err != nil {
				t.Errorf("%s, %s: %v", p.kind, c.name, err)
			}
			if !c.ok && !errors.Is(err, ErrMalformed) {
				t.Errorf("%s, %s: want ErrMalformed, got %v", p.kind, c.name, err)
			}
		}
	}
}
