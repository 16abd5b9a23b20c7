package app

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
)

// Redis loses the writer's data (call states, parked set, epoch) while `work` runs and
// no call arrives: the writer notices by its own check (not the Redis guard's marker,
// which a serve replica may have set again after restoring the mappings) and restores
// the parked calls from their journal, without waiting for a call to be written.
func TestWriterRestoresParkedCallsWithoutANewCall(t *testing.T) {
	env := testenv.New(t)
	cfg := config.Config{KafkaBrokers: env.Brokers, KafkaPartitions: 3, KafkaRepl: 1, TopicSuffix: env.Suffix,
		RedisAddr: env.RedisAddr, RedisPrefix: env.Prefix, AdminToken: "op-token", WriterGroup: "writer" + env.Suffix,
		ShutdownTimeout: 5 * time.Second, V2SummaryWait: time.Minute, WriterLease: time.Minute, WriterSettle: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, err := Open(ctx, cfg, NewLogger(io.Discard, "warn"), tenant.NewRegistry(&tenant.Tenant{ID: "acme", WebhookToken: "tok"}))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	a.Guard.Interval = 200 * time.Millisecond // the guard's and the writer's checks (10 s in production)

	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.RunWriter(wctx, a.Writer()) }()
	t.Cleanup(func() { stop(); <-done })

	testenv.Eventually(t, 30*time.Second, "the writer's epoch and the guard's marker", func() bool {
		_, ok, err := a.State.Epoch(ctx)
		n, _ := env.Redis.Exists(ctx, env.Prefix+":redisguard:marker").Result()
		return err == nil && ok && n == 1
	})
	keys := []string{a.State.Keys().Epoch(), a.State.Keys().Parked("acme")}
	for i := range 8 {
		l := &call.Log{Tenant: "acme", CallID: fmt.Sprintf("n2.%d.parked", 1700000000+i), Source: "myoperator.v1",
			Direction: call.Incoming, Status: call.Missed, ReceivedAt: time.Now()}
		require.NoError(t, a.Parking.Park(ctx, l))
		keys = append(keys, a.State.Keys().Call("acme", l.CallID))
	}
	parked, err := a.State.Parked(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, parked, 8)

	// The restore the first epoch began ends first (it could otherwise bring the calls
	// back after the loss below, before the writer notices it).
	a.restores.Wait()
	// Redis loses the writer's data; the guard's marker stays (serve restored the
	// mappings and set it), and no call arrives.
	require.NoError(t, env.Redis.Del(ctx, keys...).Err())
	testenv.Eventually(t, 30*time.Second, "the parked calls restored without a new call", func() bool {
		p, err := a.State.Parked(ctx, "acme")
		return err == nil && len(p) == 8
	})
	testenv.Eventually(t, 30*time.Second, "the epoch started again", func() bool {
		_, ok, err := a.State.Epoch(ctx)
		return err == nil && ok
	})
}
