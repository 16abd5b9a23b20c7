package myoperator

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeAndMarshal is what Canonical stands for: the value decoded and written again.
func decodeAndMarshal(raw []byte) []byte {
	var v any
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

var canonicalSeeds = []string{
	`{"b":1,"a":[1, 2.50, -0, 1e3, true, false, null],"c":{"z":"","y":{}}, "d":[]}`,
	` { "k" : "v\"q\\\u00e9\u2028<a>&b\ttab" , "k2":"é\u00e9" } `,
	`{"a":1,"a":2,"b":{"x":1,"x":[3]}}`,
	`{"\u0061":1,"a\\":2,"<":3}`,
	`[{"s":"x,y]}"},"[{\"ky\":\"a\"}]"]`,
	`"\ud83d\ude00 and \/ slash"`,
	`"bad utf8 \xff here"`,
	`{"n":12345678901234567890123}`,
	`not json`,
}

func TestCanonicalIsDecodeAndMarshal(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	in := canonicalSeeds
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		in = append(in, string(b))
	}
	for _, s := range in {
		assert.Equal(t, string(decodeAndMarshal([]byte(s))), string(Canonical([]byte(s))), s)
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range canonicalSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return // ingest hashes only what ExtractJSON found to be a JSON object
		}
		if want, got := decodeAndMarshal([]byte(s)), Canonical([]byte(s)); string(want) != string(got) {
			t.Fatalf("Canonical(%q) = %q, want %q", s, got, want)
		}
	})
}
