package callwriter

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/calltrack/calltrack/internal/call"
)

// A later version of a call fills in the customer's number the written log lacks; a
// number replaces what MyOperator said in its place, which only fills in a log that
// has neither.
func TestMergeLaterCaller(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		dst, later, want call.Log
		changed          bool
	}{
		"number fills none":         {call.Log{}, call.Log{CallerNumber: "+919711636496"}, call.Log{CallerNumber: "+919711636496"}, true},
		"number replaces raw":       {call.Log{CallerRaw: "anonymous"}, call.Log{CallerNumber: "+919711636496"}, call.Log{CallerNumber: "+919711636496"}, true},
		"raw fills none":            {call.Log{}, call.Log{CallerRaw: "anonymous"}, call.Log{CallerRaw: "anonymous"}, true},
		"raw never replaces raw":    {call.Log{CallerRaw: "+1234"}, call.Log{CallerRaw: "anonymous"}, call.Log{CallerRaw: "+1234"}, false},
		"raw never replaces number": {call.Log{CallerNumber: "+919711636496"}, call.Log{CallerRaw: "anonymous"}, call.Log{CallerNumber: "+919711636496"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dst := tc.dst
			assert.Equal(t, tc.changed, mergeLater(&dst, &tc.later))
			assert.Equal(t, tc.want, dst)
		})
	}
}
