// Package jsonwire appends JSON values exactly as encoding/json writes them, for the
// encoders of the webhook path that skip its reflection (issue 14): the same bytes,
// at a fraction of the cost.
package jsonwire

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// AppendOmitEmpty appends member (its leading comma, name and colon: `,"name":`) and
// the string v, unless v is empty — a field tagged omitempty.
func AppendOmitEmpty(b []byte, member, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, member...)
	return AppendString(b, v)
}

// AppendOmitZero appends member and the time t, unless t is zero — a field tagged
// omitzero.
func AppendOmitZero(b []byte, member string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(b, member...)
	return AppendTime(b, t)
}

// AppendMarshal appends encoding/json's encoding of v, or returns its error: the
// hand-written encoders' way out for what they do not write themselves (a time
// encoding/json refuses).
func AppendMarshal(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// AppendTime appends t as encoding/json encodes a time.Time (RFC 3339 with
// nanoseconds, quoted), for a t it encodes without error: years 0–9999, offsets
// under a day (StrictTime).
func AppendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// StrictTime reports whether encoding/json encodes t without an error (time.Time's
// MarshalJSON refuses years outside 0–9999 and offsets of a day or more).
func StrictTime(t time.Time) bool {
	_, off := t.Zone()
	y := t.Year()
	return y >= 0 && y <= 9999 && off > -24*3600 && off < 24*3600
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as encoding/json encodes a string, HTML escaping included: <, > and &
// as \u003c, \u003e, \u0026; control characters; U+2028 and U+2029; invalid UTF-8 as
// \ufffd.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
