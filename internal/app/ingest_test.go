package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/spool"
)

// flakyKafka refuses its first `fails` publishes, then acknowledges (fails < 0: never).
type flakyKafka struct {
	mu    sync.Mutex
	fails int
	tries int
	got   int
}

func (k *flakyKafka) Publish(_ context.Context, msgs ...kafka.Message) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tries++
	if k.fails < 0 || k.tries <= k.fails {
		return errors.New("kafka: dial tcp: connection refused")
	}
	k.got += len(msgs)
	return nil
}

// closingApp is the part of an App closeDrain uses: a spool holding n calls, the
// drainer already stopped.
func closingApp(t *testing.T, n int, timeout time.Duration) *App {
	t.Helper()
	s, err := spool.Open(t.TempDir(), spool.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	for i := range n {
		require.NoError(t, s.Append(context.Background(), []kafka.Message{{Topic: "calltrack.call.log.v1", Value: fmt.Appendf(nil, "call-%d", i)}}))
	}
	a := &App{Cfg: config.Config{ShutdownTimeout: timeout}, Log: zerolog.Nop(), Spool: s}
	a.stopDrain = func() {}
	a.drainDone = make(chan struct{})
	close(a.drainDone)
	return a
}

// On the way out (SIGTERM) the spool is drained while CALLTRACK_SHUTDOWN_TIMEOUT lasts,
// as the README promises, not once: Kafka refusing its first 5 publishes still gets
// every spooled call before the deadline.
func TestCloseDrainRetriesWhileTheShutdownTimeoutLasts(t *testing.T) {
	a := closingApp(t, 30, 10*time.Second)
	k := &flakyKafka{fails: 5}
	start := time.Now()
	require.NoError(t, a.closeDrain(&spool.Drainer{Spool: a.Spool, Kafka: k, Batch: 10, Log: zerolog.Nop()}))
	assert.True(t, a.Spool.Empty(), "everything forwarded")
	assert.Equal(t, 30, k.got)
	assert.Equal(t, 5+3, k.tries)
	assert.Less(t, time.Since(start), 8*time.Second, "well within the timeout")
}

// Kafka refusing for good: closeDrain returns when the shutdown timeout ends, and the
// calls stay on the spool for the next process.
func TestCloseDrainGivesUpAtTheShutdownTimeout(t *testing.T) {
	a := closingApp(t, 3, 800*time.Millisecond)
	k := &flakyKafka{fails: -1}
	start := time.Now()
	require.NoError(t, a.closeDrain(&spool.Drainer{Spool: a.Spool, Kafka: k, Log: zerolog.Nop()}))
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, 750*time.Millisecond, "it kept trying until the timeout")
	assert.Less(t, took, 3*time.Second, "and stopped at it")
	assert.Greater(t, k.tries, 2)
	assert.Equal(t, uint64(3), a.Spool.Stats().Entries, "left on the spool")
}
