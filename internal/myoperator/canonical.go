package myoperator

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// Canonical is raw, a valid JSON value, as encoding/json writes it back once decoded
// (with UseNumber): object keys sorted (the last of a repeated key kept), no
// whitespace, strings escaped its way — without building the values. Ingest hashes it
// to recognise a redelivered payload whatever its encoding. Invalid JSON comes back
// as it is.
func Canonical(raw []byte) []byte {
	if !json.Valid(raw) {
		return raw
	}
	return appendCanonical(make([]byte, 0, len(raw)), bytes.TrimSpace(raw))
}

// appendCanonical appends the canonical form of v, one valid JSON value, trimmed.
func appendCanonical(dst, v []byte) []byte {
	switch v[0] {
	case '{':
		members := objectMembers(v)
		slices.SortStableFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
		dst = append(dst, '{')
		first := true
		for i, m := range members {
			if i+1 < len(members) && members[i+1].key == m.key {
				continue // a repeated key: the last one counts, as when decoding
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendString(dst, m.key)
			dst = append(dst, ':')
			dst = appendCanonical(dst, m.value)
		}
		return append(dst, '}')
	case '[':
		dst = append(dst, '[')
		for i, it := range jsonItems(v, ']') {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCanonical(dst, it)
		}
		return append(dst, ']')
	case '"':
		s, ok := plainString(v)
		if !ok {
			_ = json.Unmarshal(v, &s)
		}
		return appendString(dst, s)
	}
	return append(dst, v...) // a number (its own text, as json.Number keeps it), true, false, null
}

// appendString appends s quoted as encoding/json quotes it.
func appendString(dst []byte, s string) []byte {
	if strings.ContainsAny(s, "\"\\<>&\u2028\u2029") || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) {
		b, _ := json.Marshal(s)
		return append(dst, b...)
	}
	return append(append(append(dst, '"'), s...), '"')
}

type member struct {
	key   string
	value []byte
}

// objectMembers returns the members of o, a valid JSON object, keys decoded.
func objectMembers(o []byte) []member {
	var out []member
	for _, kv := range jsonItems(o, '}') {
		end := stringEnd(kv)
		key, ok := plainString(kv[:end])
		if !ok {
			_ = json.Unmarshal(kv[:end], &key)
		}
		rest := bytes.TrimSpace(kv[end:])
		out = append(out, member{key: key, value: bytes.TrimSpace(rest[1:])}) // past ':'
	}
	return out
}

// stringEnd is the index just past the JSON string v starts with.
func stringEnd(v []byte) int {
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(v)
}

// jsonItems splits v, a valid JSON array (closing ']') or object (closing '}', items
// `"key": value`), at its top-level commas, each item trimmed, without decoding it.
func jsonItems(v []byte, closing byte) [][]byte {
	var items [][]byte
	depth, start := 0, -1
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			if start < 0 {
				start = i
			}
			i += stringEnd(v[i:]) - 1
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 && c == closing {
				if start >= 0 {
					items = append(items, bytes.TrimSpace(v[start:i]))
				}
				return items
			}
			depth--
		case ',':
			if depth == 0 {
				items = append(items, bytes.TrimSpace(v[start:i]))
				start = -1
				continue
			}
		}
		if start < 0 {
			start = i
		}
	}
	return items
}
