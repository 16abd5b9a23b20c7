package call_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/calltrack/calltrack/internal/call"
)

func TestDispositionName(t *testing.T) {
	t.Parallel()
	picklist := []string{"Interested", "Not interested", "Requested call back", "Call back — later"}
	cases := []struct{ text, want string }{
		{"Interested", "Interested"},
		{"Interested — Wants a demo on Monday", "Interested"},
		{"Not interested — price", "Not interested"},
		{"interested — wants a demo", "Interested"}, // spelt as the picklist spells it
		{"INTERESTED", "Interested"},
		{"Call back — later", "Call back — later"},              // a value that holds the separator itself
		{"Call back — later — after 5 pm", "Call back — later"}, // the longest name wins
		{"Interested in a demo", ""},                            // free text: not a name followed by a comment
		{"Wants a demo next week", ""},
		{"Interested —", ""},
		{"", ""},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, call.DispositionName(tc.text, picklist), "%q", tc.text)
	}
	assert.Empty(t, call.DispositionName("Interested", nil))
}
