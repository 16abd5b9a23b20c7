package zoho_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// skewAhead is how far ahead of its receipt a call log's start is in these tests:
// MyOperator's clock running ahead, or IST wall-clock time read as UTC (5 h 30 min).
const skewAhead = 6 * time.Hour

// futureCall is a completed call received just now whose start and end, by the
// log, are skewAhead in the future.
func futureCall(callID string, status call.Status) crm.Call {
	c := crmtest.NewCall(callID, customer, owner, call.Incoming, status)
	received := time.Now().Truncate(time.Second)
	c.Log.StartedAt = received.Add(skewAhead)
	c.Log.EndedAt = c.Log.StartedAt.Add(time.Duration(c.Log.Duration) * time.Second)
	c.Log.ReceivedAt = received
	return c
}

// Zoho refuses a completed call whose Call_Start_Time is in the future (INVALID_DATA,
// permanent: the call would be dead-lettered). A call whose log starts 6 h ahead is
// written once, starting when calltrack received its log.
func TestFutureStartWrittenAtReceipt(t *testing.T) {
	t.Parallel()
	for _, status := range []call.Status{call.Answered, call.Missed} {
		t.Run(string(status), func(t *testing.T) {
			t.Parallel()
			sb, a, _ := setup(t, sandbox.ZohoOptions{}, nil)
			c := futureCall("future-"+string(status), status)
			id, err := a.CreateCall(t.Context(), c)
			require.NoError(t, err)
			recs := sb.Records()
			require.Len(t, recs, 1)
			assert.Equal(t, id, recs[0].ID)
			start, err := time.Parse(time.RFC3339, recs[0].CallStartTime)
			require.NoError(t, err)
			assert.True(t, start.Equal(c.Log.ReceivedAt), "Call_Start_Time %s, want the receipt %s", recs[0].CallStartTime, c.Log.ReceivedAt)
			assert.Contains(t, recs[0].Description, "Duration: ", "the description still tells the duration")
		})
	}
}

// A write of such a call whose answer is lost is found again by FindCall (which
// looks around the start that was written), so the writer does not write it twice.
func TestFutureStartLostResponseFound(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, nil)
	c := futureCall("future-lost", call.Answered)
	require.NoError(t, sb.SetFaults(sandbox.Faults{LostResponseRate: 1}))
	_, err := a.CreateCall(t.Context(), c)
	require.Error(t, err)
	require.True(t, crm.OutcomeUnknown(err), "a write without an answer has an unknown outcome: %v", err)
	require.NoError(t, sb.SetFaults(sandbox.Faults{}))

	id, found, err := a.FindCall(t.Context(), c)
	require.NoError(t, err)
	require.True(t, found, "the record the lost write made must be found")
	recs := sb.Records()
	require.Len(t, recs, 1)
	assert.Equal(t, recs[0].ID, id)
	assert.Zero(t, sb.Stats().Duplicates)
}
