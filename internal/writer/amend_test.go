package writer_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/idempotency"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/writer"
)

// slowAdapter holds CreateCall until released, to open the window in which an
// amendment arrives while the record is being created.
type slowAdapter struct {
	mu      sync.Mutex
	entered chan struct{}
	release chan struct{}
	creates int
	updates []crm.Call
}

func (a *slowAdapter) CreateCall(context.Context, crm.Call) (string, error) {
	a.mu.Lock()
	a.creates++
	a.mu.Unlock()
	close(a.entered)
	<-a.release
	return "rec-1", nil
}

// FindCall: this fake's creates always answer, so no lookup is ever needed.
func (a *slowAdapter) FindCall(context.Context, crm.Call) (string, bool, error) {
	return "", false, nil
}

func (a *slowAdapter) UpdateCall(_ context.Context, _ string, c crm.Call) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.updates = append(a.updates, c)
	return nil
}

// A disposition that arrives while its call's record is being created is not lost: it
// is retried and lands on the record, which is created once.
func TestAmendmentDuringCreationIsNotLost(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	ad := &slowAdapter{entered: make(chan struct{}), release: make(chan struct{})}
	pub := &published{}
	w := &writer.Writer{Tenants: tenant.NewRegistry(&tenant.Tenant{ID: "acme"}),
		Adapters: func(*tenant.Tenant) (crm.Adapter, error) { return ad, nil },
		Mappings: mapping.NewStore(env.Redis, env.Prefix), Idem: idempotency.New(env.Redis, env.Prefix),
		Trace: trace.New(env.Redis, env.Prefix), Redis: env.Redis, Prefix: env.Prefix, Publisher: pub,
		Topics: env.Topics, Retry: writer.DefaultRetryPolicy(), Metrics: metrics.New(), Log: zerolog.Nop()}
	l := call.Log{Tenant: "acme", CallID: "c1", Source: "myoperator.v1", Direction: call.Incoming, Status: call.Answered,
		Owner: &call.Owner{CRMUserID: "101"}, ReceivedAt: time.Now().UTC()}
	lv, _ := json.Marshal(l)
	done := make(chan error)
	go func() { done <- w.Handle(ctx, kafkabus.Event(env.Topics.Log, "acme:c1", "test", "acme", "c1", lv)) }()
	<-ad.entered

	am, _ := json.Marshal(call.RecordingEvent{Tenant: "acme", CallID: "c1", Disposition: "Interested"})
	require.NoError(t, w.Handle(ctx, kafkabus.Event(env.Topics.Recording, "acme:c1", "test", "acme", "c1", am)))
	close(ad.release)
	require.NoError(t, <-done)

	// The amendment went to the retry topic rather than being dropped; when due, it applies.
	var retry *kafka.Message
	for _, m := range pub.all() {
		if m.Topic == env.Topics.Retry {
			m := m
			retry = &m
		}
	}
	require.NotNil(t, retry, "amendment scheduled for a retry")
	require.NoError(t, w.HandleRetry(ctx, *retry))
	assert.Equal(t, 1, ad.creates)
	require.Len(t, ad.updates, 1)
	assert.Equal(t, "Interested", ad.updates[0].Log.Disposition)
}
