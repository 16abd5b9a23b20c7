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
// The body wins over the query. Errors wrap ErrMalformed.
func ExtractJSON(contentType string, body []byte, query url.Values) ([]byte, error) {
	body = bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	if len(body) > 0 {
		fields, isJSON, err := bodyFields(contentType, body)
		if err != nil {
			return nil, err
		}
		if isJSON {
			return fromJSONBody(body)
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

// bodyFields decodes a form body; isJSON says the body is JSON instead. JSON is
// recognised by its first byte too, since senders get Content-Type wrong.
func bodyFields(contentType string, body []byte) (fields url.Values, isJSON bool, err error) {
	mt, params, _ := mime.ParseMediaType(contentType)
	switch {
	case body[0] == '{' || body[0] == '[' || body[0] == '"' || mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return nil, true, nil
	case mt == "multipart/form-data":
		fields, err := multipartFields(body, params["boundary"])
		if err != nil {
			return nil, false, malformed("multipart body: %w", err)
		}
		return fields, false, nil
	}
	fields, err = url.ParseQuery(string(body))
	if err != nil && len(fields) == 0 {
		return nil, false, malformed("form body: %w", err)
	}
	return fields, false, nil
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
func fromJSONBody(body []byte) ([]byte, error) {
	if err := checkObject(body); err != nil {
		return nil, malformed("JSON body: %w", err)
	}
	var wrapper map[string]json.RawMessage
	if err := json.Unmarshal(body, &wrapper); err != nil {
		return nil, malformed("JSON body: %w", err)
	}
	inner, ok := wrapper[formField]
	if !ok {
		return body, nil
	}
	if kind(inner) == "string" {
		var s string
		if err := json.Unmarshal(inner, &s); err != nil {
			return nil, malformed("JSON body %q: %w", formField, err)
		}
		inner = []byte(strings.TrimSpace(s))
	}
	if err := checkObject(inner); err != nil {
		return nil, malformed("JSON body %q: %w", formField, err)
	}
	return inner, nil
}

// fromValues takes the log from the myoperator field, or builds it from every
// field (but the auth ones) when there is none.
func fromValues(where string, v url.Values) ([]byte, error) {
	if _, ok := v[formField]; ok {
		s := []byte(strings.TrimSpace(v.Get(formField)))
		if len(s) == 0 {
			return nil, malformed("%s field %q is empty", where, formField)
		}
		if err := checkObject(s); err != nil {
			return nil, malformed("%s field %q: %w", where, formField, err)
		}
		return s, nil
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

// isIgnored reports query parameters that authenticate the request, not data.
func isIgnored(k string) bool { return strings.EqualFold(k, "token") }
