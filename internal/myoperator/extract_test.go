package myoperator

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const formCT = "application/x-www-form-urlencoded"

// perKey spreads a log over one parameter per key, as a legacy GET does.
func perKey(t *testing.T, raw []byte) url.Values {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &m))
	v := url.Values{}
	for k, val := range m {
		var s string
		if json.Unmarshal(val, &s) != nil {
			s = string(val) // numbers, arrays and objects as their JSON text
		}
		v.Set(k, s)
	}
	return v
}

func multipartBody(t *testing.T, fields url.Values) (contentType string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, vals := range fields {
		for _, v := range vals {
			require.NoError(t, w.WriteField(k, v))
		}
	}
	require.NoError(t, w.Close())
	return w.FormDataContentType(), buf.Bytes()
}

func TestExtractJSON(t *testing.T) {
	t.Parallel()
	for _, fixture := range []string{"aftercall_answered.json", "incall_ringing.json"} {
		raw := readTestdata(t, fixture)
		quoted, err := json.Marshal(string(raw))
		require.NoError(t, err)
		form := url.Values{"myoperator": {string(raw)}}
		mpCT, mpBody := multipartBody(t, form)
		mpKeysCT, mpKeysBody := multipartBody(t, perKey(t, raw))
		withToken := func(v url.Values) url.Values { v.Set("token", "s3cret"); return v }

		tests := []struct {
			name        string
			contentType string
			body        []byte
			query       url.Values
			exact       bool // the log comes back byte for byte
		}{
			{"form", formCT, []byte(form.Encode()), nil, true},
			{"form with charset and auth query", formCT + "; charset=UTF-8", []byte(form.Encode()), url.Values{"token": {"s3cret"}}, true},
			{"form without content type", "", []byte(form.Encode()), nil, true},
			{"form with one field per key", formCT, []byte(perKey(t, raw).Encode()), nil, false},
			{"multipart", mpCT, mpBody, nil, true},
			{"multipart with one field per key", mpKeysCT, mpKeysBody, nil, false},
			{"JSON body", "application/json", raw, nil, true},
			{"JSON body with form content type", formCT, raw, nil, true},
			{"JSON body with BOM and whitespace", "application/json; charset=utf-8", append([]byte("\xef\xbb\xbf \n"), raw...), nil, true},
			{"JSON wrapped object", "application/json", []byte(`{"myoperator":` + string(raw) + `}`), nil, true},
			{"JSON wrapped string", "application/json", []byte(`{"myoperator":` + string(quoted) + `}`), nil, true},
			{"GET myoperator param", "", nil, withToken(url.Values{"myoperator": {string(raw)}}), true},
			{"GET one param per key", "", nil, withToken(perKey(t, raw)), false},
			{"POST with empty body, data in query", formCT, []byte("  "), perKey(t, raw), false},
		}
		for _, tt := range tests {
			t.Run(fixture+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				got, err := ExtractJSON(tt.contentType, tt.body, tt.query)
				require.NoError(t, err)
				if tt.exact {
					assert.Equal(t, string(bytes.TrimSpace(raw)), string(got))
				}
				assert.NotContains(t, string(got), "s3cret")
				// Whatever the shape, the parsed call is the same.
				if fixture == "incall_ringing.json" {
					want, err := ParseInCall("acme", raw, received)
					require.NoError(t, err)
					live, err := ParseInCall("acme", got, received)
					require.NoError(t, err)
					assert.Equal(t, want, live)
					return
				}
				want, err := ParseAfterCall("acme", raw, received)
				require.NoError(t, err)
				log, err := ParseAfterCall("acme", got, received)
				require.NoError(t, err)
				assert.Equal(t, want, log)
			})
		}
	}
}

func TestExtractJSONErrors(t *testing.T) {
	t.Parallel()
	const prefix = "malformed MyOperator payload: "
	tests := []struct {
		name, contentType, body string
		query                   url.Values
		want                    string
	}{
		{"nothing", "", "", nil, prefix + "empty payload"},
		{"only auth query", formCT, "", url.Values{"token": {"s3cret"}}, prefix + "empty payload"},
		{"form field not JSON", formCT, "myoperator=hello", nil, prefix + `form field "myoperator": invalid JSON at offset 1: invalid character 'h' looking for beginning of value`},
		{"form field empty", formCT, "myoperator=", nil, prefix + `form field "myoperator" is empty`},
		{"form field array", formCT, "myoperator=%5B%5D", nil, prefix + `form field "myoperator": want a JSON object, got array`},
		{"JSON body invalid", "application/json", `{"_ai":"x",}`, nil, prefix + `JSON body: invalid JSON at offset 12: invalid character '}' looking for beginning of object key string`},
		{"JSON body array", "application/json", `[{"_ai":"x"}]`, nil, prefix + "JSON body: want a JSON object, got array"},
		{"JSON body not JSON", "application/json", `myoperator=x`, nil, prefix + "JSON body: invalid JSON at offset 1: invalid character 'm' looking for beginning of value"},
		{"wrapped number", "application/json", `{"myoperator":5}`, nil, prefix + `JSON body "myoperator": want a JSON object, got number`},
		{"wrapped bad string", "application/json", `{"myoperator":"{nope"}`, nil, prefix + `JSON body "myoperator": invalid JSON at offset 2: invalid character 'n' looking for beginning of object key string`},
		{"multipart without boundary", "multipart/form-data", "--x\r\n", nil, prefix + "multipart body: no boundary in Content-Type"},
		{"form with bad escape", formCT, "%zz", nil, prefix + `form body: invalid URL escape "%zz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ExtractJSON(tt.contentType, []byte(tt.body), tt.query)
			assert.Nil(t, got)
			require.ErrorIs(t, err, ErrMalformed)
			assert.EqualError(t, err, tt.want)
		})
	}
}

// formFieldValue, where it answers, gives what url.ParseQuery gives the myoperator
// field: the fast path reads no form differently.
func FuzzFormFieldValue(f *testing.F) {
	for _, s := range []string{
		"myoperator=%7B%22a%22%3A1%7D", "a=1&myoperator=x+y%20z", "myoperator=%zz&myoperator=ok",
		"my%6Fperator=1&myoperator=2", "a;b=1&myoperator=1", "myoperator=1;2&myoperator=3", "&&myoperator",
		"myoperator=%4", "token=t&myoperator=%C3%A9", "=x&myoperator=", "myoperator+=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, ok := formFieldValue([]byte(body))
		if !ok {
			return
		}
		v, _ := url.ParseQuery(body)
		want, present := v[formField]
		if !present || string(got) != want[0] {
			t.Fatalf("formFieldValue(%q) = %q; ParseQuery gives %q", body, got, want)
		}
	})
}

// MyOperator's own form (myoperator=<urlencoded JSON>) takes the fast path.
func TestFormFieldValueReadsMyOperatorsForm(t *testing.T) {
	raw := readTestdata(t, "aftercall_answered.json")
	got, ok := formFieldValue([]byte("token=t&myoperator=" + url.QueryEscape(string(raw))))
	require.True(t, ok)
	assert.Equal(t, string(raw), string(got))
}

// The fast path's edges read as url.ParseQuery reads them: a field named without "="
// is present and empty (the body still wins over the query), and a body past net/url's
// parameter limit is refused whole.
func TestFormFieldEdges(t *testing.T) {
	q := url.Values{"myoperator": {`{"a":1}`}}
	_, err := ExtractJSON(formCT, []byte("myoperator&x=1"), q)
	require.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), `form field "myoperator" is empty`)

	huge := "myoperator=%7B%7D" + strings.Repeat("&", 10000)
	_, err = ExtractJSON(formCT, []byte(huge), nil)
	require.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), "exceeded limit")
}

// A form or query field's object is checked by its first byte; the parse that follows
// refuses broken JSON, with where it broke — what ingest answers 400 and keeps.
func TestBrokenFieldObjectRefusedByTheParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, body string
		query      url.Values
	}{
		{"query field truncated", "", url.Values{"myoperator": {`{"_ai":"x"`}}},
		{"form field truncated", "myoperator=" + url.QueryEscape(`{"_ai":"x"`), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := ExtractJSON(formCT, []byte(tt.body), tt.query)
			require.NoError(t, err)
			_, err = ParseAfterCall("acme", raw, received)
			require.ErrorIs(t, err, ErrMalformed)
			assert.EqualError(t, err, "malformed MyOperator payload: afterCall: invalid JSON at offset 10: unexpected end of JSON input")
			_, err = ParseInCall("acme", raw, received)
			require.ErrorIs(t, err, ErrMalformed)
			assert.Empty(t, CompanyID(raw))
		})
	}
}

// unescapeQuery reads what url.QueryUnescape reads, and refuses what it refuses.
func FuzzUnescapeQuery(f *testing.F) {
	for _, s := range []string{"", "a+b", "%7B%22a%22%3A1%7D", "%zz", "%4", "%", "x%41", "%e2%82%AC+", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := unescapeQuery([]byte(s))
		want, err := url.QueryUnescape(s)
		require.Equal(t, err == nil, ok, "%q", s)
		if ok {
			require.Equal(t, want, string(got), "%q", s)
		}
	})
}
