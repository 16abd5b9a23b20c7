package myoperator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/calltrack/calltrack/internal/jsonwire"
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
	return Object(raw).AppendCanonical(make([]byte, 0, len(raw)))
}

// Object is a JSON object as ExtractJSON found it: a JSON body checked whole, a form or
// query field by its first byte (the parse that follows validates it).
type Object []byte

// AppendCanonical appends Canonical(o) to dst without checking o (a check here and
// ExtractJSON's were 5 % of serve's CPU between them, profile of serve): o must be
// valid JSON — ingest hashes only payloads its parse accepted.
func (o Object) AppendCanonical(dst []byte) []byte {
	c := canonPool.Get().(*canonicaliser)
	dst = c.append(dst, bytes.TrimSpace(o))
	if cap(c.members) <= 1024 { // an odd, huge payload's scratch is not kept
		canonPool.Put(c)
	}
	return dst
}

// canonicaliser holds the members of the objects being written and their sort order,
// for every nesting level at once: each object takes a segment past its parent's and
// gives it back when done. The order is sorted as indexes: moving a member (three
// slices) in a sort cost more than the rest of the work together (profile of ingest).
type canonicaliser struct {
	members []member
	order   []int32
}

var canonPool = sync.Pool{New: func() any { return &canonicaliser{members: make([]member, 0, 64), order: make([]int32, 0, 64)} }}

// append appends the canonical form of v, one valid JSON value, trimmed.
func (c *canonicaliser) append(dst, v []byte) []byte {
	switch v[0] {
	case '{':
		base, obase := len(c.members), len(c.order)
		c.members = objectMembers(c.members, v)
		members := c.members[base:] // stays readable if a nested object grows c.members
		for i := range members {
			c.order = append(c.order, int32(i))
		}
		order := c.order[obase:]
		slices.SortFunc(order, func(a, b int32) int {
			if n := bytes.Compare(members[a].key, members[b].key); n != 0 {
				return n
			}
			return cmp.Compare(a, b) // as a stable sort: a repeated key's last one comes last
		})
		dst = append(dst, '{')
		first := true
		for i, o := range order {
			m := members[o]
			if i+1 < len(order) && bytes.Equal(members[order[i+1]].key, m.key) {
				continue // a repeated key: the last one counts, as when decoding
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendStringLiteral(dst, m.rawKey)
			dst = append(dst, ':')
			dst = c.append(dst, m.value)
		}
		clear(c.members[base:]) // no references kept into raw while pooled
		c.members, c.order = c.members[:base], c.order[:obase]
		return append(dst, '}')
	case '[':
		dst = append(dst, '[')
		first := true
		eachItem(v, ']', func(it []byte) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = c.append(dst, it)
		})
		return append(dst, ']')
	case '"':
		return appendStringLiteral(dst, v)
	}
	return append(dst, v...) // a number (its own text, as json.Number keeps it), true, false, null
}

// appendStringLiteral appends the JSON string lit (quotes included) as encoding/json
// writes it once decoded. Most of MyOperator's strings are written unchanged, and its
// escaped slashes ("\/", PHP's habit) are dropped without decoding; anything else
// is decoded and quoted again.
func appendStringLiteral(dst, lit []byte) []byte {
	in := lit[1 : len(lit)-1]
	if safeString(in) {
		return append(dst, lit...)
	}
	if bytes.IndexByte(in, '\\') >= 0 && onlySlashEscapes(in) {
		n := len(dst)
		dst = append(dst, '"')
		for i := 0; i < len(in); i++ {
			if in[i] != '\\' {
				dst = append(dst, in[i])
			}
		}
		if safeString(dst[n+1:]) {
			return append(dst, '"')
		}
		dst = dst[:n]
	}
	var s string
	_ = json.Unmarshal(lit, &s)
	return jsonwire.AppendString(dst, s)
}

// safeString reports whether encoding/json writes the string s (no quotes) as it is:
// valid UTF-8, no control characters, quote, backslash, <, >, & or U+2028/U+2029.
func safeString(s []byte) bool {
	ascii := true
	for _, c := range s {
		switch {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if ascii {
		return true
	}
	return utf8.Valid(s) && !bytes.Contains(s, []byte("\u2028")) && !bytes.Contains(s, []byte("\u2029"))
}

// onlySlashEscapes reports whether every escape in the string s is "\/".
func onlySlashEscapes(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if i+1 >= len(s) || s[i+1] != '/' {
				return false
			}
			i++
		}
	}
	return true
}

// member is one member of a JSON object: its key decoded (for sorting), the key's
// literal and the value's bytes.
type member struct {
	key    []byte
	rawKey []byte
	value  []byte
}

// objectMembers appends the members of o, a valid JSON object, keys decoded.
func objectMembers(out []member, o []byte) []member {
	eachItem(o, '}', func(kv []byte) {
		end := stringEnd(kv)
		key := kv[1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			var k string
			_ = json.Unmarshal(kv[:end], &k)
			key = []byte(k)
		}
		rest := bytes.TrimSpace(kv[end:])
		out = append(out, member{key: key, rawKey: kv[:end], value: bytes.TrimSpace(rest[1:])}) // past ':'
	})
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
	eachItem(v, closing, func(it []byte) { items = append(items, it) })
	return items
}

// eachItem calls fn with each item of v as jsonItems splits it, without collecting them.
func eachItem(v []byte, closing byte, fn func([]byte)) {
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
					fn(bytes.TrimSpace(v[start:i]))
				}
				return
			}
			depth--
		case ',':
			if depth == 0 {
				fn(bytes.TrimSpace(v[start:i]))
				start = -1
				continue
			}
		}
		if start < 0 {
			start = i
		}
	}
}
