package myoperator

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func addTestdata(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	require.NoError(f, err)
	for _, p := range files {
		f.Add(readTestdata(f, filepath.Base(p)))
	}
}

func FuzzParseAfterCall(f *testing.F) {
	addTestdata(f, "aftercall_*.json")
	for _, s := range []string{``, `{}`, `[]`, `null`, `{"_ai":"x","_ev":1,"_su":1,"_ld":"[{\"_rr\":\"[1]\"}]"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := ParseAfterCall("acme", raw, time.Unix(0, 0))
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.NoError(t, l.Validate())
		_, err = json.Marshal(l) // what gets published must encode
		require.NoError(t, err)
	})
}

func FuzzParseSearchHit(f *testing.F) {
	addTestdata(f, "search_*.json")
	for _, s := range []string{``, `{}`, `{"_source":[]}`, `{"_id":"x","_source":{"event":1,"status":1,"log_details":{"received_by":"x"}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := ParseSearchHit("acme", raw, time.Unix(0, 0))
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.NoError(t, l.Validate())
		_, err = json.Marshal(l)
		require.NoError(t, err)
	})
}

func FuzzParseInCall(f *testing.F) {
	addTestdata(f, "incall_*.json")
	for _, s := range []string{``, `{}`, `{"uid":1,"users":"[1]"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := ParseInCall("acme", raw, time.Unix(0, 0))
		if err != nil {
			if !errors.Is(err, ErrIgnored) {
				require.ErrorIs(t, err, ErrMalformed)
			}
			return
		}
		require.NotEmpty(t, l.CallID)
		_, err = json.Marshal(l)
		require.NoError(t, err)
	})
}

func FuzzExtractJSON(f *testing.F) {
	raw := readTestdata(f, "aftercall_answered.json")
	form := url.Values{"myoperator": {string(raw)}}.Encode()
	f.Add(formCT, []byte(form), "")
	f.Add("application/json", raw, "token=x")
	f.Add("application/json", []byte(`{"myoperator":"{}"}`), "")
	f.Add("multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"myoperator\"\r\n\r\n{}\r\n--b--\r\n"), "")
	f.Add("", []byte(nil), "myoperator="+url.QueryEscape(string(raw)))
	f.Add("", []byte(nil), `_ai=x&_ev=1&_su=1&_pm=[{"ky":"ui","vl":"u"}]&token=t`)
	f.Fuzz(func(t *testing.T, contentType string, body []byte, rawQuery string) {
		query, _ := url.ParseQuery(rawQuery)
		got, err := ExtractJSON(contentType, body, query)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		// An object by its first byte (a form or query field's is validated by the parse).
		require.Equal(t, byte('{'), bytes.TrimSpace(got)[0])
		_, aerr := ParseAfterCall("acme", got, time.Unix(0, 0))
		_, ierr := ParseInCall("acme", got, time.Unix(0, 0))
		_ = CompanyID(got)
		if checkObject(got) != nil { // broken JSON: every parser refuses it
			require.ErrorIs(t, aerr, ErrMalformed)
			require.ErrorIs(t, ierr, ErrMalformed)
		}
	})
}

// FuzzDecodeAsV1 holds decodeObject (encoding/json/v2's decoder, one pass) to
// encoding/json's reading of the same payload: the same fields, lists and items for
// every payload v1 decodes, and an error for every one it refuses.
func FuzzDecodeAsV1(f *testing.F) {
	addTestdata(f, "*.json")
	for _, s := range []string{``, `{}`, `[]`, `null`, `{"_CL":"x","_cl":"y"}`, `{"_ai":1,"_ai":null}`,
		`{"_ld":[{"_rr":[[1,2],"7",null,{"_ID":"x"}]},[3],"x",{}]}`, `{"_pm":"[{\"ky\":\"ui\"}]","_us":{"ky":1}}`,
		`{"a_i":"x","AI":"y","_a-i":"z"}`, "{\"_cm\":\"\xff\\ud800\"}", `{"users":["1",2,{"_id":3}],"uid":"u"}`,
		`{"_id":"a","_source":{"id":"x"},"_source":null}`, `{"_ld":[{"_rr":[{"_id":"x"}]},{"_rr":null}]}`,
		`{"_ld":[1,`, `{"_ld":[1 2]}`, `{"_pm":[{"ky":1},`, `{"_ld":[[],{}],"_ld":[{"_su":1}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameAsV1[afterCall](t, raw)
		sameAsV1[inCall](t, raw)
		sameAsV1[searchHit](t, raw)
		sameAsV1[v2Envelope](t, raw)
		sameAsV1[v2Payload](t, raw)
	})
}

func sameAsV1[T any](t *testing.T, raw []byte) {
	t.Helper()
	var got, want T
	err := decodeObject(raw, &got)
	if kind(raw) != "object" || json.Unmarshal(raw, &want) != nil {
		require.Error(t, err, "v1 does not decode %q", raw)
		return
	}
	require.NoError(t, err)
	require.Equal(t, want, got)
}
