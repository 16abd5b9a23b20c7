package myoperator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
)

// formField is the form / query / wrapper field that carries the log.
const formField = "myoperator"

// ExtractJSON returns the MyOperator log (a JSON object) from any request shape
// MyOperator uses or may use:
//   - a form body (urlencoded or multipart) with field myoperator=<json>;
//   - a JSON body: the bare log, {"myoperator": {...}} or {"myoperator": "<json>"};
//   - GET with ?myoperator=<json>, or with each key as its own query parameter
//     (values that are JSON arrays or objects, like _pm and _ld, are decoded;
//     the auth parameter "token" is dropped).
//
// The body wins over the query. Errors wrap ErrMalformed. A form or query field's
// object is checked by its first byte only: the parse validates it (ParseAfterCall,
// ParseInCall, ParseV2 refuse broken JSON with ErrMalformed and its offset).
func ExtractJSON(contentType string, body []byte, query url.Values) (Object, error) {
	body = bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	if len(body) > 0 {
		fields, field, isJSON, err := bodyFields(contentType, body)
		if err != nil {
			return nil, err
		}
		if isJSON {
			return fromJSONBody(body)
		}
		if field != nil {
			return fromField("form", field)
		}
		if len(fields) > 0 {
			return fromValues("form", fields)
		}
	}
	if len(query) > 0 {
		return fromValues("query", query)
	}
	return nil, malformed("empty payload")
}

// bodyFields decodes a form body — only its myoperator field when that can be read
// alone (field), all its fields otherwise; isJSON says the body is JSON instead. JSON
// is recognised by its first byte too, since senders get Content-Type wrong.
func bodyFields(contentType string, body []byte) (fields url.Values, field []byte, isJSON bool, err error) {
	mt, params, _ := mime.ParseMediaType(contentType)
	switch {
	case body[0] == '{' || body[0] == '[' || body[0] == '"' || mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return nil, nil, true, nil
	case mt == "multipart/form-data":
		fields, err := multipartFields(body, params["boundary"])
		if err != nil {
			return nil, nil, false, malformed("multipart body: %w", err)
		}
		return fields, nil, false, nil
	}
	if field, ok := formFieldValue(body); ok {
		return nil, field, false, nil
	}
	fields, err = url.ParseQuery(string(body))
	if err != nil && len(fields) == 0 {
		return nil, nil, false, malformed("form body: %w", err)
	}
	return fields, nil, false, nil
}

// fastFormFields bounds the forms formFieldValue reads: a webhook's has a field or
// two, and a big one is ParseQuery's to judge (past net/url's limit on parameters,
// 10,000 unless GODEBUG urlmaxqueryparams says otherwise, it reads no field at all).
const fastFormFields = 64

// formFieldValue is the value url.ParseQuery gives the urlencoded body's first
// myoperator field, read without decoding the other fields into a map (a seventh of
// the bytes a webhook allocated, profile of serve); ok is false when the body needs
// ParseQuery's full reading: an escaped key comes first, the value's escapes are
// malformed, or there is no such field. FuzzFormFieldValue holds it to ParseQuery.
func formFieldValue(body []byte) (value []byte, ok bool) {
	if bytes.Count(body, []byte("&")) >= fastFormFields {
		return nil, false
	}
	for rest := body; len(rest) > 0; {
		var pair []byte
		pair, rest, _ = bytes.Cut(rest, []byte("&"))
		if bytes.IndexByte(pair, ';') >= 0 {
			continue // ParseQuery skips such a pair
		}
		key, v, _ := bytes.Cut(pair, []byte("="))
		if bytes.ContainsAny(key, "%+") {
			return nil, false // might unescape to the field's name
		}
		if string(key) == formField {
			if v == nil {
				v = []byte{} // "myoperator" without "=": present, empty
			}
			return unescapeQuery(v)
		}
	}
	return nil, false
}

// unescapeQuery decodes s as url.QueryUnescape does ('+' is a space); ok is false
// for a malformed escape.
func unescapeQuery(s []byte) (out []byte, ok bool) {
	if !bytes.ContainsAny(s, "%+") {
		return s, true
	}
	out = make([]byte, 0, max(len(s)-2*bytes.Count(s, []byte("%")), 0)) // an escape's three bytes make one
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			out = append(out, ' ')
		case '%':
			if i+2 >= len(s) {
				return nil, false
			}
			hi, lo := unhex(s[i+1]), unhex(s[i+2])
			if hi > 15 || lo > 15 {
				return nil, false
			}
			out = append(out, hi<<4|lo)
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out, true
}

// unhex is a hex digit's value; over 15 for anything else.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// multipartFields reads the parts of a multipart/form-data body as fields.
func multipartFields(body []byte, boundary string) (url.Values, error) {
	if boundary == "" {
		return nil, fmt.Errorf("no boundary in Content-Type")
	}
	fields := url.Values{}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			return fields, nil
		}
		if err != nil {
			return nil, err
		}
		v, err := io.ReadAll(part)
		if err != nil {
			return nil, err
		}
		if name := part.FormName(); name != "" {
			fields.Add(name, string(v))
		}
	}
}

// fromJSONBody unwraps {"myoperator": ...} or returns the bare log.
// The decode into the wrapper validates the body: checkObject scans it again only to
// say why it is refused.
func fromJSONBody(body []byte) ([]byte, error) {
	var wrapper map[string]json.RawMessage
	if kind(body) != "object" || json.Unmarshal(body, &wrapper) != nil {
		if err := checkObject(body); err != nil {
			return nil, malformed("JSON body: %w", err)
		}
		return nil, malformed("JSON body: not a JSON object") // not reached: an object decodes
	}
	inner, ok := wrapper[formField]
	if !ok {
		return body, nil
	}
	checked := true // a member of the valid body: only its kind is left to check
	if kind(inner) == "string" {
		var s string
		if err := json.Unmarshal(inner, &s); err != nil {
			return nil, malformed("JSON body %q: %w", formField, err)
		}
		inner, checked = []byte(strings.TrimSpace(s)), false
	}
	if !checked || kind(inner) != "object" {
		if err := checkObject(inner); err != nil {
			return nil, malformed("JSON body %q: %w", formField, err)
		}
	}
	return inner, nil
}

// fromValues takes the log from the myoperator field, or builds it from every
// field (but the auth ones) when there is none.
func fromValues(where string, v url.Values) ([]byte, error) {
	if _, ok := v[formField]; ok {
		return fromField(where, []byte(v.Get(formField)))
	}
	obj := make(map[string]json.RawMessage, len(v))
	for k, vals := range v {
		if len(vals) == 0 || isIgnored(k) {
			continue
		}
		val := strings.TrimSpace(vals[0])
		if val != "" && (val[0] == '[' || val[0] == '{') && json.Valid([]byte(val)) {
			obj[k] = json.RawMessage(val)
			continue
		}
		b, err := json.Marshal(vals[0])
		if err != nil {
			return nil, malformed("%s parameter %q: %w", where, k, err)
		}
		obj[k] = b
	}
	if len(obj) == 0 {
		return nil, malformed("empty payload")
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, malformed("%s parameters: %w", where, err)
	}
	return b, nil
}

// fromField takes the myoperator field's value: a JSON object. One that is an object
// by its first byte is returned unchecked — every parser that follows validates it
// whole as it decodes (decodeObject) and says where it broke; json.Valid here as well
// was 3.5 % of serve's CPU (profile of serve). Anything else is refused now, in
// checkObject's words.
func fromField(where string, value []byte) ([]byte, error) {
	s := bytes.TrimSpace(value)
	if len(s) == 0 {
		return nil, malformed("%s field %q is empty", where, formField)
	}
	if s[0] != '{' {
		if err := checkObject(s); err != nil {
			return nil, malformed("%s field %q: %w", where, formField, err)
		}
	}
	return s, nil
}

// isIgnored reports query parameters that authenticate the request, not data.
func isIgnored(k string) bool { return strings.EqualFold(k, "token") }
