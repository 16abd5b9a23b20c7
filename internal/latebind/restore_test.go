package latebind_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callstate"
	"github.com/calltrack/calltrack/internal/callwriter"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/latebind"
	"github.com/calltrack/calltrack/internal/testenv"
)

// Parked calls outlive Redis: after Redis loses everything, the journal topic gives
// back every call still parked — with the amendment kept in its parked copy — and
// none that was written meanwhile.
func TestParkedCallsAreRestoredFromTheJournal(t *testing.T) {
	env := testenv.New(t)
	k := env.Kafka(t)
	prod := kafkabus.NewProducer(k)
	t.Cleanup(func() { _ = prod.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	state := callstate.NewRedis(env.Redis, env.Prefix)
	p := &latebind.Parking{State: state, Publisher: prod, Topic: env.Topics.Parked}

	logOf := func(tenant, id string) *call.Log {
		return &call.Log{Tenant: tenant, CallID: id, Direction: call.Incoming, Status: call.Missed, Agent: &call.Agent{ID: "a9"}, ReceivedAt: time.Now().UTC()}
	}
	for _, l := range []*call.Log{logOf("acme", "c1"), logOf("acme", "c2"), logOf("beta", "c3"), logOf("acme", "c4")} {
		require.NoError(t, p.Park(ctx, l))
	}
	amended := logOf("acme", "c1")
	amended.Disposition = "Interested"
	require.NoError(t, p.Park(ctx, amended)) // the newer copy wins
	require.NoError(t, p.Unpark(ctx, "acme", "c2"))
	// c4 was written, but its tombstone never made it (the writer died): its state says written.
	lease, _, err := state.Claim(ctx, "acme", "c4", time.Minute)
	require.NoError(t, err)
	require.NoError(t, state.Save(ctx, lease, callwriter.State{Status: callwriter.StatusWritten, RecordID: "r4"}, true))

	// Redis loses the parked sets.
	require.NoError(t, env.Redis.Del(ctx, state.Keys().Parked("acme"), state.Keys().Parked("beta")).Err())

	st, err := latebind.Restore(ctx, k, env.Topics.Parked, state)
	require.NoError(t, err)
	assert.Equal(t, 6, st.Records)
	assert.Equal(t, 1, st.Tombstones)
	assert.Equal(t, 3, st.Parked)
	assert.Equal(t, 2, st.Restored, "c1 and c3; c4 is written")

	acme, err := state.Parked(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, acme, 1)
	assert.Equal(t, "c1", acme[0].CallID)
	assert.Equal(t, "Interested", acme[0].Disposition)
	beta, err := state.Parked(ctx, "beta")
	require.NoError(t, err)
	require.Len(t, beta, 1)

	// Again: no harm.
	st, err = latebind.Restore(ctx, k, env.Topics.Parked, state)
	require.NoError(t, err)
	assert.Equal(t, 2, st.Restored)
}
