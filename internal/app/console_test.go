package app

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/tenant"
)

// `serve` with a Redis it cannot reach says so without printing the password of the
// connection string, in its error or its log.
func TestUnreachableRedisPrintsNoPassword(t *testing.T) {
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	cfg := config.Config{RedisAddr: "redis://:hunter2-secret@127.0.0.1:1/0", KafkaBrokers: []string{"127.0.0.1:1"}, RedisPrefix: "ct"}
	_, err := Open(ctx, cfg, NewLogger(&logs, "debug"), tenant.NewRegistry())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redis://:xxxxx@127.0.0.1:1/0")
	assert.NotContains(t, err.Error()+logs.String(), "hunter2-secret")
}

// syncBuffer is a log sink that go-redis's goroutines may write to while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
