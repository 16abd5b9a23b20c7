package dlq

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/calltrack/calltrack/internal/phone"
)

// Redact masks the phone numbers in a payload with phone.Mask. A JSON payload is walked:
// a string that reads as a phone number is masked, and so is a number under a key that
// names one (MyOperator sends `_cr` as a number at times). Any other payload (a rejected
// form body) has its runs of 10-15 digits masked, epoch timestamps excepted.
func Redact(v []byte) []byte {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&doc); err == nil && !dec.More() {
		out, err := json.Marshal(redactValue("", doc))
		if err == nil {
			return out
		}
	}
	return []byte(phone.MaskText(string(v)))
}

func redactValue(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = redactValue(k, e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = redactValue(key, e) // a list keeps its key: "phones": [...]
		}
		return x
	case string:
		if looksLikePhone(x, phoneKey(key)) {
			return phone.Mask(x)
		}
		// A JSON or form payload kept as a string (the rejected topic's raw bodies).
		if strings.ContainsAny(x, "{=") {
			return phone.MaskText(x)
		}
		return x
	case json.Number:
		if phoneKey(key) && looksLikePhone(x.String(), true) {
			return phone.Mask(x.String())
		}
		return x
	}
	return v
}

// looksLikePhone: only phone characters, 10 to 15 digits, and a number phone.E164 takes;
// not an epoch timestamp unless the key names a number (a DID may start with 1). Under
// a key that names a number, any run of 4 or more digits is one: the caller id
// MyOperator sends for a caller with no usable number ("+1234", 19 digits) is a
// number, or a part of one, all the same (call.Log.CallerRaw).
func looksLikePhone(s string, keyed bool) bool {
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("+ -().", r):
		default:
			return false
		}
	}
	if keyed && digits >= 4 {
		return true
	}
	return digits >= 10 && digits <= 15 && phone.E164(s, "") != "" && !phone.Epoch(s)
}

var phoneKeys = []string{"phone", "number", "clid", "contact", "_cr", "_cl", "_nr", "_ct", "users", "did", "rdnis", "customer", "caller"}

func phoneKey(k string) bool {
	k = strings.ToLower(k)
	for _, p := range phoneKeys {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}
