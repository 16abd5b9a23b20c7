package dlq

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedact(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"call log event",
			`{"call_id":"n2.1596270949.2175190","caller_number":"+919711636496","did":"+911203456789","agent":{"id":"5cd40f6556f2f124","phone":"+918586848544"},"duration_seconds":39,"started_at":"2020-07-17T07:12:09Z"}`,
			`{"agent":{"id":"5cd40f6556f2f124","phone":"+91******8544"},"call_id":"n2.1596270949.2175190","caller_number":"+91******6496","did":"+91******6789","duration_seconds":39,"started_at":"2020-07-17T07:12:09Z"}`},
		{"numbers as numbers under phone keys, epochs kept",
			`{"_cr":9711636496,"_st":1594969929,"users":["918586848544"],"_ms":1594969929123,"_did":"1161568087","id":"1161568087"}`,
			`{"_cr":"******6496","_did":"******8087","_ms":1594969929123,"_st":1594969929,"id":"1161568087","users":["********8544"]}`},
		{"a raw form body",
			`myoperator=%7B%22_cl%22%3A%22%2B919711636496%22%2C%22_st%22%3A1594969929%2C%22_cr%22%3A%229711636496%22%7D`,
			`myoperator=%7B%22_cl%22%3A%22%2B91******6496%22%2C%22_st%22%3A1594969929%2C%22_cr%22%3A%22******6496%22%7D`},
		{"raw JSON text kept as a string",
			`{"body":"{\"clid_raw\":\"919711636496\"}"}`,
			`{"body":"{\"clid_raw\":\"********6496\"}"}`},
		{"a caller id that is no usable number, under a key naming one",
			`{"caller_raw":"+1234","_cl":"1234567890123456789","_cr":"anonymous","caller_name":"Ravi"}`,
			`{"_cl":"***************6789","_cr":"anonymous","caller_name":"Ravi","caller_raw":"*****"}`},
		{"nothing to hide", `{"tenant":"acme","company_id":"5cd40f6554442586"}`, `{"company_id":"5cd40f6554442586","tenant":"acme"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, string(Redact([]byte(tc.in))))
		})
	}
}
