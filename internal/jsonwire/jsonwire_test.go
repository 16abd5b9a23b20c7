package jsonwire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// AppendString is encoding/json's string encoding for any string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{
		"plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\rcr\bbs\fff", "\x00\x01\x1f\x7f",
		"line\u2028para\u2029sep", "bad \xff\xfe utf-8 \xe2\x82", "emoji 📞 and ñ", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(AppendString(nil, s)))
	})
}

// AppendTime is encoding/json's time encoding; StrictTime what it refuses.
func TestAppendTime(t *testing.T) {
	for _, tm := range []time.Time{
		{}, time.Date(2026, 12, 1, 17, 4, 5, 0, time.UTC), time.Date(2026, 12, 1, 17, 4, 5, 120_000_000, time.FixedZone("IST", 5*3600+1800)),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.FixedZone("", -23*3600)), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		want, err := json.Marshal(tm)
		assert.Equal(t, err == nil, StrictTime(tm), "%v", tm)
		if err == nil {
			assert.Equal(t, string(want), string(AppendTime(nil, tm)))
		}
	}
}
