package myoperator

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withJSON returns the fixture name with set applied to its decoded object.
func withJSON(t *testing.T, name string, set func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(readTestdata(t, name), &m))
	set(m)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// A caller MyOperator gives no usable number for keeps what it sent (CallerRaw), for
// a CRM that must show something (Kylas's phoneNumber); a number keeps none.
func TestCallerRaw(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		cl, cr     any
		number     string
		raw        string
		v2Customer any
	}{
		{"withheld", "anonymous", "anonymous", "", "anonymous", "anonymous"},
		{"upper case, padded", " PRIVATE ", nil, "", "PRIVATE", " PRIVATE "},
		{"empty", "", "", "", "", ""},
		{"null", nil, nil, "", "", nil},
		{"too short", "+1234", "1234", "", "+1234", "+1234"},
		{"19 digits", "1234567890123456789", "1234567890123456789", "", "1234567890123456789", "1234567890123456789"},
		{"_cl garbled, _cr a number", "anonymous", "9711636496", "+919711636496", "", "+919711636496"},
		{"no caller id but a long text", strings.Repeat("x", maxRawCaller+1), "", "", "", strings.Repeat("x", maxRawCaller+1)},
		{"a control character", "anon\u0000ymous", "", "", "", "anon\u0000ymous"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := withJSON(t, "aftercall_answered.json", func(m map[string]any) { m["_cl"], m["_cr"] = tt.cl, tt.cr })
			l, err := ParseAfterCall("acme", raw, received)
			require.NoError(t, err)
			assert.Equal(t, tt.number, l.CallerNumber, "afterCall")
			assert.Equal(t, tt.raw, l.CallerRaw, "afterCall")
			require.NotNil(t, l.Agent, "the call is still attributed")
			assert.Equal(t, "5cd40f6556f2f124", l.Agent.ID)

			v2 := withJSON(t, "v2_call_summary.json", func(m map[string]any) {
				m["customer_identifier"] = tt.v2Customer
				p := m["payload"].(map[string]any)
				p["customer_number"] = tt.v2Customer
				for _, lg := range p["legs"].([]any) {
					if lg := lg.(map[string]any); lg["type"] == "customer" {
						lg["phone_number"] = tt.v2Customer
					}
				}
			})
			ev, err := ParseV2("acme", v2, received)
			require.NoError(t, err)
			require.NotNil(t, ev.Log)
			assert.Equal(t, tt.number, ev.Log.CallerNumber, "v2 call.summary")
			assert.Equal(t, tt.raw, ev.Log.CallerRaw, "v2 call.summary")
		})
	}
}
