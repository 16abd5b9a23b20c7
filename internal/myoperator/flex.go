package myoperator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/calltrack/calltrack/internal/phone"
)

// ErrMalformed is wrapped by every error about a payload we cannot use.
var ErrMalformed = errors.New("malformed MyOperator payload")

// maxCallIDLen bounds a call id: MyOperator's are a few dozen bytes ("n2.1596270949.2175190",
// a v2 session's UUID), and the id goes into Redis keys, trace pages and the CRM
// record's remoteId.
const maxCallIDLen = 128

// checkCallID refuses a call id no MyOperator call has: a JSON object or array (which
// flexString keeps as its JSON text), overlong, not UTF-8, or with control characters
// (a NUL in a Redis key, a log line, a CRM field).
func checkCallID(id string) error { return checkID("call id", id) }

// checkID is checkCallID for an id named name (a log id goes into a Redis key too).
func checkID(name, id string) error {
	if id != "" && flexString(id).scalar() == "" {
		return fmt.Errorf("%s is a JSON object or array: want a string or number", name)
	}
	if len(id) > maxCallIDLen {
		return fmt.Errorf("%s of %d bytes: at most %d", name, len(id), maxCallIDLen)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%s is not UTF-8", name)
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s has a control character (%U)", name, r)
		}
	}
	return nil
}

// malformed builds an error wrapping ErrMalformed; format may use %w itself.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// decodeOptions make encoding/json/v2's decoder (go-json-experiment/json, the
// standard library's from Go 1.27) read a payload as encoding/json does: a member
// name matches a field whatever its case, but '_' and '-' count (v1's
// strings.EqualFold); a name given twice is allowed, the last wins; null leaves a
// struct as it was; invalid UTF-8 is let through (flexString reads a string as v1
// does). v2 validates as it decodes, where v1 scans the whole payload first and again
// for each list item: half the afterCall's decode (issue 14; FuzzDecodeAsV1 holds the
// two readings equal).
var decodeOptions = jsonv2.JoinOptions(
	jsonv2.MatchCaseInsensitiveNames(true),
	jsonv1.MatchCaseSensitiveDelimiter(true),
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
	jsonv1.MergeWithLegacySemantics(true),
)

// decodeObject unmarshals raw, which must be a JSON object, into v (a pointer). The
// fields of v are flex types that accept anything, so only broken JSON or a
// non-object fails.
func decodeObject(raw []byte, v any) error {
	if b := bytes.TrimSpace(raw); len(b) > 0 && b[0] == '{' && jsonv2.Unmarshal(raw, v, decodeOptions) == nil {
		return nil
	}
	// Say why not (checkObject's words). What v1 reads as an object is decoded as v1
	// does, from nothing (not over what v2 filled before it stopped), so nothing v1
	// took is refused.
	reflect.ValueOf(v).Elem().SetZero()
	if err := checkObject(raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decoding: %w", err) // not expected: every field is lenient
	}
	return nil
}

// checkObject reports why raw is not a single JSON object.
func checkObject(raw []byte) error {
	if json.Valid(raw) && kind(raw) == "object" {
		return nil // no copy: the error below is all the slow path is for
	}
	var v json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return fmt.Errorf("invalid JSON at offset %d: %w", se.Offset, se)
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if k := kind(v); k != "object" {
		return fmt.Errorf("want a JSON object, got %s", k)
	}
	return nil
}

// kind names the JSON type of a valid JSON value.
func kind(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// flexString is a scalar MyOperator sends as a string, a number, a bool or null
// ("1" vs 1, "0.65" vs 0.65). Strings are trimmed; null is ""; numbers, bools and
// (unexpected) objects or arrays keep their JSON text, so errors can quote them.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		if s, ok := plainString(b); ok {
			*f = flexString(strings.TrimSpace(s))
			return nil
		}
		var s string
		if json.Unmarshal(b, &s) != nil {
			*f = ""
			return nil
		}
		*f = flexString(strings.TrimSpace(s))
	default:
		*f = flexString(b)
	}
	return nil
}

// UnmarshalJSONFrom is UnmarshalJSON for decodeObject's decoder.
func (f *flexString) UnmarshalJSONFrom(dec *jsontext.Decoder) error { return readInto(dec, f) }

// readInto reads the decoder's next value whole and hands it to u's UnmarshalJSON:
// for the shapes a type reads from bytes (decodeObject's decoder would otherwise
// prefer an embedded type's UnmarshalJSONFrom, or has none to call).
func readInto(dec *jsontext.Decoder, u json.Unmarshaler) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	return u.UnmarshalJSON(v)
}

func (f flexString) String() string { return string(f) }

// quote quotes f for an error message, cut short so a hostile payload cannot
// bloat logs, with its digit runs masked: the message is logged, and a malformed
// field may hold a phone number.
func (f flexString) quote() string {
	const limit = 40
	f = flexString(phone.MaskText(string(f)))
	if r := []rune(string(f)); len(r) > limit {
		return strconv.Quote(string(r[:limit])) + "…"
	}
	return strconv.Quote(string(f))
}

// int reads f as an integer; "1", 1, "1.0" and " 1 " all give 1.
func (f flexString) int() (int64, bool) {
	s := strings.TrimSpace(string(f))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		return 0, false
	}
	return int64(x), true
}

// is reports whether f is the integer n.
func (f flexString) is(n int64) bool {
	v, ok := f.int()
	return ok && v == n
}

// maxEpoch is 9999-12-31T23:59:59Z: later times cannot be marshalled to JSON.
const maxEpoch = 253402300799

// epoch reads f as Unix seconds (milliseconds when it is that large); zero time
// when absent, not a number, or out of range.
func (f flexString) epoch() time.Time {
	x, err := strconv.ParseFloat(strings.TrimSpace(string(f)), 64)
	if err != nil || math.IsNaN(x) {
		return time.Time{}
	}
	if x >= 1e12 {
		x /= 1000
	}
	if x <= 0 || x > maxEpoch {
		return time.Time{}
	}
	sec, frac := math.Modf(x)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// gmtLayout is how MyOperator writes wall-clock times (`_rst`, `call_time`), in GMT.
const gmtLayout = "2006-01-02 15:04:05"

// clock reads f as a GMT "YYYY-MM-DD HH:MM:SS" (or RFC 3339, or epoch) time.
func (f flexString) clock() time.Time {
	s := string(f)
	if t, err := time.Parse(gmtLayout, s); err == nil {
		return t.UTC()
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil && t.Year() <= 9999 {
		return t.UTC()
	}
	return f.epoch()
}

// seconds reads a duration written "HH:MM:SS", "MM:SS" or as plain seconds.
func (f flexString) seconds() (int, bool) {
	s := strings.TrimSpace(string(f))
	if s == "" {
		return 0, false
	}
	total := 0
	for p := range strings.SplitSeq(s, ":") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 1_000_000 {
			return 0, false
		}
		total = total*60 + n
	}
	if strings.Count(s, ":") > 2 {
		return 0, false
	}
	return total, true
}

// flexList is a list MyOperator may send as an array, a single object, null, or
// double-encoded as a JSON string. Null items and items that do not decode into T
// are skipped, and so is a value that is none of these (a bare string, a number).
type flexList[T any] []T

func (l *flexList[T]) UnmarshalJSON(b []byte) error {
	l.read(b)
	return nil
}

// read is UnmarshalJSON, reporting whether it skipped anything but nulls and blanks.
func (l *flexList[T]) read(b []byte) (skipped bool) {
	*l = nil
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return false
	}
	switch b[0] {
	case '[':
		// b is valid JSON (the decoder checked the whole payload before calling here):
		// split it without decoding it twice.
		for _, it := range jsonItems(b, ']') {
			if kind(it) == "null" {
				continue
			}
			var v T
			if unmarshalItem(it, &v) != nil {
				skipped = true
				continue
			}
			*l = append(*l, v)
		}
		return skipped
	case '{':
		var v T
		if json.Unmarshal(b, &v) != nil {
			return true
		}
		*l = flexList[T]{v}
		return false
	case '"':
		var s string
		if json.Unmarshal(b, &s) != nil {
			return true
		}
		// Not yet checked, unlike b: a broken inner list is no list.
		if s = strings.TrimSpace(s); s != "" && (s[0] == '[' || s[0] == '{') && json.Valid([]byte(s)) {
			return l.read([]byte(s))
		}
		return s != ""
	case 'n':
		return false
	}
	return true // a number or a bool
}

// UnmarshalJSONFrom is UnmarshalJSON for decodeObject's decoder: an array's items
// are decoded as they are read; the other shapes go as UnmarshalJSON reads them.
func (l *flexList[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	_, err := l.readFrom(dec)
	return err
}

// readFrom is UnmarshalJSONFrom, reporting whether it skipped anything (read's rule).
func (l *flexList[T]) readFrom(dec *jsontext.Decoder) (skipped bool, err error) {
	*l = nil
	if dec.PeekKind() != '[' {
		v, err := dec.ReadValue()
		if err != nil {
			return false, err
		}
		return l.read(v), nil
	}
	if _, err := dec.ReadToken(); err != nil {
		return false, err
	}
	depth := dec.StackDepth()
	for {
		switch dec.PeekKind() {
		case ']':
			_, err := dec.ReadToken()
			return skipped, err
		case 0: // broken JSON: the decoder says how
			if _, err := dec.ReadToken(); err != nil {
				return skipped, err
			}
			return skipped, errors.New("list: unreadable item")
		case 'n':
			if _, err := dec.ReadToken(); err != nil {
				return skipped, err
			}
			continue
		}
		var v T
		at := dec.InputOffset()
		var err error
		if u, ok := any(&v).(jsonv2.UnmarshalerFrom); ok {
			err = u.UnmarshalJSONFrom(dec) // the item type's own reader, without UnmarshalDecode's options
		} else {
			err = jsonv2.UnmarshalDecode(dec, &v, decodeOptions)
		}
		if dec.StackDepth() != depth || (err != nil && dec.InputOffset() == at) {
			// The item was not read whole, or not at all: stop (decodeObject then
			// decodes as v1), rather than read on from the middle or loop.
			return skipped, fmt.Errorf("list item left unread: %w", err)
		}
		if err != nil {
			skipped = true
			continue
		}
		*l = append(*l, v)
	}
}

// checkedList is a flexList that remembers whether it skipped something MyOperator
// sent: a value that is no list (`"_ld":"x"`), or items that are not a T (`[1,2]` for
// legs). The lists that name a call's agent are read through it, so that a call they
// leave without its agent says why (call.Log.Malformed) instead of going to the
// fallback owner silently.
type checkedList[T any] struct {
	items     flexList[T]
	malformed bool
}

func (c *checkedList[T]) UnmarshalJSON(b []byte) error {
	c.malformed = c.items.read(b)
	return nil
}

// UnmarshalJSONFrom is UnmarshalJSON for decodeObject's decoder.
func (c *checkedList[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) (err error) {
	c.malformed, err = c.items.readFrom(dec)
	return err
}

// kv is a `{ky, vl}` pair (`_pm`, `_us`).
type kv struct {
	Key   flexString `json:"ky"`
	Value flexString `json:"vl"`
}

// unmarshalItem decodes a list item already known to be valid JSON; an item type with
// its own UnmarshalJSON gets the bytes without their being checked yet again.
func unmarshalItem[T any](it []byte, v *T) error {
	if u, ok := any(v).(json.Unmarshaler); ok {
		return u.UnmarshalJSON(it)
	}
	return json.Unmarshal(it, v)
}

// plainString is the value of a valid JSON string with nothing to unescape and
// valid UTF-8 (most of MyOperator's), without json.Unmarshal's second look.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	if bytes.IndexByte(in, '\\') >= 0 || !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}
