package call

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Strings that encoding/json escapes, each its own way.
var awkward = []string{
	"plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\rcr\bbs\fff", "\x00\x01\x1f\x7f",
	"line\u2028para\u2029sep", "bad \xff\xfe utf-8 \xe2\x82", "emoji 📞 and ñ", "",
}

// fill sets every field reachable from v to something encoding/json writes: strings
// from awkward (the n-th), bools true, numbers, times with nanoseconds in a zone,
// two elements in each slice, a value behind each pointer.
func fill(v reflect.Value, n *int) {
	switch v.Kind() {
	case reflect.String:
		*n++
		s := awkward[*n%len(awkward)]
		if s == "" {
			s = fmt.Sprintf("v%d", *n)
		}
		v.SetString(s)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		*n++
		v.SetInt(int64(*n * 37))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), n)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			*n++
			v.Set(reflect.ValueOf(time.Date(2026, 11, 30, 10, 4, 5, *n*1000+7, time.FixedZone("IST", 5*3600+1800))))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	default:
		panic("fill: a field of kind " + v.Kind().String() + ": teach fill and AppendJSON about it")
	}
}

func assertSameAsMarshal(t *testing.T, v interface{ AppendJSON([]byte) ([]byte, error) }) {
	t.Helper()
	want, err := json.Marshal(v)
	require.NoError(t, err)
	got, err := v.AppendJSON([]byte("prefix"))
	require.NoError(t, err)
	assert.Equal(t, "prefix"+string(want), string(got))
}

// AppendJSON writes what json.Marshal writes, byte for byte: with every field set (a
// field added to Log and not to AppendJSON fails here), with none, and in between.
func TestAppendJSONIsJSONMarshal(t *testing.T) {
	var full Log
	n := 0
	fill(reflect.ValueOf(&full).Elem(), &n)
	assertSameAsMarshal(t, &full)

	var fullRec RecordingEvent
	fill(reflect.ValueOf(&fullRec).Elem(), &n)
	assertSameAsMarshal(t, &fullRec)
	assertSameAsMarshal(t, &RecordingEvent{})

	assertSameAsMarshal(t, &Log{})
	sparse := Log{Tenant: "acme", CallID: "c1", ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Legs: []Leg{{}, {Agents: []Agent{{}}, AnsweredBy: &Agent{}}}, Agent: &Agent{}, Owner: &Owner{}, Recording: &Recording{}}
	assertSameAsMarshal(t, &sparse)
	for i, s := range awkward {
		l := Log{CallID: s, CallerName: s, Agent: &Agent{Name: s}, Disposition: s}
		t.Run(fmt.Sprint(i), func(t *testing.T) { assertSameAsMarshal(t, &l) })
	}
}

// A time encoding/json refuses is refused the same way.
func TestAppendJSONRefusesWhatMarshalRefuses(t *testing.T) {
	for _, l := range []Log{
		{ReceivedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Legs: []Leg{{StartedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	} {
		_, want := json.Marshal(&l)
		require.Error(t, want)
		_, err := l.AppendJSON(nil)
		assert.EqualError(t, err, want.Error())
	}
}
