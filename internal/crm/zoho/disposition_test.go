package zoho_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/myoperator"
)

// MyOperator's sample call.disposition carries a name ("Interested") and the
// agent's comment: Call_Result gets the name (a value of the strict sandbox's
// picklist), the description the whole disposition with its comment. Before, the
// name and comment were matched as one string, never a picklist value, so
// Call_Result stayed empty.
func TestDispositionWithCommentSetsCallResult(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../myoperator/testdata/v2_call_disposition.json")
	require.NoError(t, err)
	ev, err := myoperator.ParseV2("acme", raw, time.Now())
	require.NoError(t, err)
	require.Equal(t, myoperator.V2Disposition, ev.Kind)
	require.Equal(t, "Interested — Wants a demo on Monday", ev.Amendment.Disposition, "the notes' text: name and comment")

	sb, a, _ := setup(t, sandbox.ZohoOptions{Users: []sandbox.ZohoUser{{ID: owner, FullName: "Asha", Email: "asha@example.com"}}}, nil)
	cases := []struct{ disposition, result string }{
		{ev.Amendment.Disposition, "Interested"},
		{"requested call back — after 5 pm", "Requested call back"}, // the picklist's spelling
		{"Requested call back", "Requested call back"},
		{"Interested in a demo", ""}, // free text stays in the description only
	}
	for i, tc := range cases {
		c := crmtest.NewCall(ev.CallID+"-"+string(rune('a'+i)), customer, owner, call.Incoming, call.Answered)
		id, err := a.CreateCall(t.Context(), c)
		require.NoError(t, err)
		c.Log.Disposition = tc.disposition // as the writer applies the amendment
		require.NoError(t, a.UpdateCall(t.Context(), id, c), tc.disposition)

		c2 := crmtest.NewCall(ev.CallID+"-new-"+string(rune('a'+i)), customer, owner, call.Incoming, call.Answered)
		c2.Log.Disposition = tc.disposition // known when the record is created
		_, err = a.CreateCall(t.Context(), c2)
		require.NoError(t, err, tc.disposition)
	}
	recs := sb.Records()
	require.Len(t, recs, 2*len(cases))
	for i, tc := range cases {
		for _, r := range recs[2*i : 2*i+2] {
			assert.Equal(t, tc.result, r.CallResult, "%q", tc.disposition)
			assert.Contains(t, strings.Split(r.Description, "\n"), "Disposition: "+tc.disposition, "the comment stays in the description")
		}
	}
}
