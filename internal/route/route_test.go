package route_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callwriter"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/route"
)

// fakeService answers each call with the next scripted result.
type fakeService struct {
	mu      sync.Mutex
	results []result
	calls   int
}

type result struct {
	o   callwriter.Outcome
	err error
}

func (s *fakeService) next() (callwriter.Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.results) == 0 {
		return callwriter.Written, nil
	}
	r := s.results[0]
	if len(s.results) > 1 {
		s.results = s.results[1:]
	}
	return r.o, r.err
}

func (s *fakeService) WriteLog(context.Context, *call.Log) (callwriter.Outcome, error) {
	return s.next()
}
func (s *fakeService) Amend(context.Context, *call.RecordingEvent) (callwriter.Outcome, error) {
	return s.next()
}

type fakePublisher struct {
	mu   sync.Mutex
	msgs []kafka.Message
	err  error
}

func (p *fakePublisher) Publish(_ context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

var topics = kafkabus.DefaultTopics()

func logMsg(t *testing.T) kafka.Message {
	l := call.Log{Tenant: "acme", CallID: "c1", Source: "myoperator.v1", Direction: call.Incoming, Status: call.Answered, ReceivedAt: time.Now()}
	b, err := json.Marshal(l)
	require.NoError(t, err)
	m := kafkabus.Event(topics.Log, "acme:c1", "test", "acme", "c1", b)
	m.Partition, m.Offset = 2, 41
	return m
}

// retried is m as the retry topic holds it after n attempts.
func retried(m kafka.Message, n int) kafka.Message {
	m.Headers = kafkabus.WithHeaders(m, kafka.Header{Key: kafkabus.HeaderOrigTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: kafkabus.HeaderOrigPart, Value: []byte("2")}, kafka.Header{Key: kafkabus.HeaderOrigOff, Value: []byte("41")},
		kafka.Header{Key: kafkabus.HeaderAttempts, Value: []byte(strconv.Itoa(n))})
	m.Topic, m.Partition, m.Offset = topics.Retry, 0, 7
	return m
}

var (
	transient = &crm.Error{Op: "create", Status: http.StatusServiceUnavailable}
	permanent = &crm.Error{Op: "create", Status: http.StatusBadRequest, Permanent: true}
	unknown   = errors.Join(callwriter.ErrOutcomeUnknown, &crm.Error{Op: "create", Err: context.DeadlineExceeded})
	infra     = errors.Join(callwriter.ErrInfra, errors.New("redis: connection refused"))
)

// Every routing decision of the writer's Kafka side, with a fake service and publisher.
func TestRouting(t *testing.T) {
	cases := []struct {
		name      string
		msg       func(t *testing.T) kafka.Message
		retryTopi bool
		results   []result
		wantErr   error  // returned to the consumer (not routed)
		wantTopic string // where the message went; "" for nowhere
		wantCalls int    // service calls
		check     func(t *testing.T, out kafka.Message)
		outcome   string
	}{
		{name: "written: done", msg: logMsg, results: []result{{o: callwriter.Written}}, wantCalls: 1, outcome: "written"},
		{name: "duplicate: done", msg: logMsg, results: []result{{o: callwriter.Duplicate}}, wantCalls: 1, outcome: "duplicate"},
		{name: "parked: done", msg: logMsg, results: []result{{o: callwriter.Parked}}, wantCalls: 1, outcome: "unattributed"},
		{name: "amended: done", msg: logMsg, results: []result{{o: callwriter.Amended}}, wantCalls: 1, outcome: "amended"},
		{name: "a blip is retried in place", msg: logMsg, results: []result{{err: transient}, {o: callwriter.Written}}, wantCalls: 2, outcome: "written"},
		{name: "a failure that outlasts the in-place tries goes to the retry topic", msg: logMsg,
			results: []result{{err: transient}}, wantCalls: 3, wantTopic: topics.Retry, outcome: "retry",
			check: func(t *testing.T, out kafka.Message) {
				assert.Equal(t, "1", kafkabus.Header(out, kafkabus.HeaderAttempts))
				assert.Equal(t, topics.Log, kafkabus.Header(out, kafkabus.HeaderOrigTopic))
				assert.Equal(t, "2", kafkabus.Header(out, kafkabus.HeaderOrigPart))
				assert.Equal(t, "41", kafkabus.Header(out, kafkabus.HeaderOrigOff))
				assert.Equal(t, "503", kafkabus.Header(out, kafkabus.HeaderStatus))
				assert.True(t, route.DueAt(out).After(time.Now()))
			}},
		{name: "a rejection is dead-lettered at once", msg: logMsg, results: []result{{err: permanent}}, wantCalls: 1,
			wantTopic: topics.DLQ, outcome: "dead_lettered",
			check: func(t *testing.T, out kafka.Message) {
				assert.Equal(t, kafkabus.ReasonCRMRejected, kafkabus.Header(out, kafkabus.HeaderReason))
				assert.Empty(t, kafkabus.Header(out, kafkabus.HeaderDueAt))
			}},
		{name: "an unknown outcome is not retried in place: it waits for a lookup", msg: logMsg, results: []result{{err: unknown}},
			wantCalls: 1, wantTopic: topics.Retry, outcome: "retry"},
		{name: "an unknown outcome still unresolved at the last attempt is dead-lettered as such",
			msg: func(t *testing.T) kafka.Message { return retried(logMsg(t), 9) }, retryTopi: true, results: []result{{err: unknown}},
			wantCalls: 1, wantTopic: topics.DLQ, outcome: "dead_lettered",
			check: func(t *testing.T, out kafka.Message) {
				assert.Equal(t, kafkabus.ReasonOutcomeUnknown, kafkabus.Header(out, kafkabus.HeaderReason))
				assert.Equal(t, "10", kafkabus.Header(out, kafkabus.HeaderAttempts))
				assert.Equal(t, "41", kafkabus.Header(out, kafkabus.HeaderOrigOff), "the original offset is kept")
			}},
		{name: "an unknown outcome too recent to look up costs no attempt",
			msg: func(t *testing.T) kafka.Message { return retried(logMsg(t), 9) }, retryTopi: true,
			results:   []result{{err: fmt.Errorf("%w: 2s ago", callwriter.ErrSettling)}},
			wantCalls: 1, wantTopic: topics.Retry, outcome: "retry",
			check: func(t *testing.T, out kafka.Message) {
				assert.Equal(t, "9", kafkabus.Header(out, kafkabus.HeaderAttempts))
			}},
		{name: "a settling call is due when its settle ends, not at each back-off step before it",
			msg: func(t *testing.T) kafka.Message { return retried(logMsg(t), 1) }, retryTopi: true,
			results:   []result{{err: &callwriter.SettlingError{CallID: "c1", Age: 30 * time.Second, Left: 90 * time.Second}}},
			wantCalls: 1, wantTopic: topics.Retry, outcome: "retry",
			check: func(t *testing.T, out kafka.Message) {
				assert.Equal(t, "1", kafkabus.Header(out, kafkabus.HeaderAttempts), "no attempt spent")
				wait := time.Until(route.DueAt(out))
				assert.Greater(t, wait, 85*time.Second)
				assert.LessOrEqual(t, wait, 90*time.Second)
			}},
		{name: "the last retry failing transiently: retries exhausted",
			msg: func(t *testing.T) kafka.Message { return retried(logMsg(t), 9) }, retryTopi: true, results: []result{{err: transient}},
			wantCalls: 1, wantTopic: topics.DLQ, outcome: "dead_lettered",
			check: func(t *testing.T, out kafka.Message) {
				assert.Equal(t, kafkabus.ReasonRetriesExhausted, kafkabus.Header(out, kafkabus.HeaderReason))
			}},
		{name: "a busy call is tried again soon, at no attempt's cost, even at the last attempt",
			msg: func(t *testing.T) kafka.Message { return retried(logMsg(t), 9) }, retryTopi: true,
			results: []result{{err: fmt.Errorf("call c1: %w", callwriter.ErrBusy)}}, wantCalls: 1, wantTopic: topics.Retry, outcome: "retry",
			check: func(t *testing.T, out kafka.Message) {
				assert.Equal(t, "9", kafkabus.Header(out, kafkabus.HeaderAttempts))
				// BusyWait 5 s ±50 %, not attempt 9's back-off (a minute): due 2.5–7.5 s after
				// the handler began; read after it ended, so the lower bound gets slack.
				wait := time.Until(route.DueAt(out))
				assert.Less(t, wait, 7500*time.Millisecond)
				assert.Greater(t, wait, 2*time.Second)
			}},
		{name: "an undecodable event is dead-lettered", msg: func(t *testing.T) kafka.Message {
			m := logMsg(t)
			m.Value = []byte(`{"tenant":`)
			return m
		}, wantTopic: topics.DLQ, outcome: "dead_lettered",
			check: func(t *testing.T, out kafka.Message) {
				assert.Equal(t, kafkabus.ReasonUndecodable, kafkabus.Header(out, kafkabus.HeaderReason))
			}},
		{name: "an unknown tenant is dead-lettered", msg: logMsg, results: []result{{err: callwriter.ErrUnknownTenant}}, wantCalls: 1,
			wantTopic: topics.DLQ, outcome: "dead_lettered",
			check: func(t *testing.T, out kafka.Message) {
				assert.Equal(t, kafkabus.ReasonUnknownTenant, kafkabus.Header(out, kafkabus.HeaderReason))
			}},
		{name: "calltrack's own dependency down: returned to the consumer, not routed", msg: logMsg, results: []result{{err: infra}},
			wantCalls: 1, wantErr: callwriter.ErrInfra},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			svc := &fakeService{results: tc.results}
			pub := &fakePublisher{}
			m := metrics.New()
			h := &route.Handlers{Service: svc, Publisher: pub, Topics: topics, Metrics: m, Log: zerolog.Nop(),
				Policy: route.Policy{InPlace: 3, InPlaceWait: time.Millisecond, MaxAttempts: 10, Base: time.Second, Cap: time.Minute,
					BusyWait: 5 * time.Second}}
			handle := h.Main()
			if tc.retryTopi {
				handle = h.Retry()
			}
			err := handle(context.Background(), tc.msg(t))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.wantCalls, svc.calls, "service calls")
			if tc.wantTopic == "" {
				assert.Empty(t, pub.msgs)
			} else {
				require.Len(t, pub.msgs, 1)
				assert.Equal(t, tc.wantTopic, pub.msgs[0].Topic)
				assert.Equal(t, []byte("acme:c1"), pub.msgs[0].Key)
				if tc.check != nil {
					tc.check(t, pub.msgs[0])
				}
			}
			if tc.outcome != "" {
				assert.Equal(t, 1.0, testutil.ToFloat64(m.WriterOutcomes.WithLabelValues("acme", "log", tc.outcome)))
			}
		})
	}
}

// A CRM that keeps failing opens the tenant's circuit: its next calls go straight to
// the retry topic without an attempt, and are tried there when due.
func TestBreakerSchedulesWithoutTrying(t *testing.T) {
	svc := &fakeService{results: []result{{err: transient}}}
	pub := &fakePublisher{}
	h := &route.Handlers{Service: svc, Publisher: pub, Topics: topics, Metrics: metrics.New(), Log: zerolog.Nop(),
		Policy: route.Policy{InPlace: 1, MaxAttempts: 10, Base: time.Second, Cap: time.Minute}}
	for range 5 {
		require.NoError(t, h.Main()(context.Background(), logMsg(t)))
	}
	require.Equal(t, 5, svc.calls)
	require.NoError(t, h.Main()(context.Background(), logMsg(t)))
	assert.Equal(t, 5, svc.calls, "open circuit: not tried")
	last := pub.msgs[len(pub.msgs)-1]
	assert.Equal(t, "0", kafkabus.Header(last, kafkabus.HeaderAttempts), "no attempt spent")
	require.NoError(t, h.Retry()(context.Background(), last))
	assert.Equal(t, 6, svc.calls, "the retry topic still tries it")
}

// A 429 with Retry-After pauses the tenant's credential for every replica.
func TestTooManyRequestsPausesTheTenant(t *testing.T) {
	svc := &fakeService{results: []result{{err: &crm.Error{Op: "create", Status: http.StatusTooManyRequests, RetryAfter: 5 * time.Second}}}}
	var paused []time.Duration
	h := &route.Handlers{Service: svc, Publisher: &fakePublisher{}, Topics: topics, Metrics: metrics.New(), Log: zerolog.Nop(),
		Policy: route.DefaultPolicy(), Pause: func(_ context.Context, tenant string, d time.Duration) {
			assert.Equal(t, "acme", tenant)
			paused = append(paused, d)
		}}
	require.NoError(t, h.Main()(context.Background(), logMsg(t)))
	assert.Equal(t, []time.Duration{5 * time.Second}, paused)
	assert.Equal(t, 1, svc.calls, "a long Retry-After is scheduled, not waited for in place")
}

// Waiting for another writer's lead create is calltrack's own wait, not the CRM's: it
// pauses no credential and opens no circuit, however often it happens.
func TestLeadBeingCreatedIsNotTheCRMs(t *testing.T) {
	waiting := &crm.Error{Op: "crm: lead claim", Err: crm.ErrLeadBeingCreated, RetryAfter: time.Second}
	svc := &fakeService{results: []result{{err: waiting}}}
	paused := 0
	h := &route.Handlers{Service: svc, Publisher: &fakePublisher{}, Topics: topics, Metrics: metrics.New(), Log: zerolog.Nop(),
		Policy: route.Policy{InPlace: 1, MaxAttempts: 10, Base: time.Second, Cap: time.Minute, BusyWait: time.Second},
		Pause:  func(context.Context, string, time.Duration) { paused++ }}
	for range 6 {
		require.NoError(t, h.Main()(context.Background(), logMsg(t)))
	}
	assert.Zero(t, paused, "no pause of the tenant's credential")
	assert.Equal(t, 6, svc.calls, "every message tried: the circuit stayed closed")
}

// Deferring a message costs no attempt, but each deferral of it waits longer.
func TestDeferBacksOff(t *testing.T) {
	pub := &fakePublisher{}
	h := &route.Handlers{Service: &fakeService{}, Publisher: pub, Topics: topics, Metrics: metrics.New(), Log: zerolog.Nop(),
		Policy: route.Policy{InPlace: 1, MaxAttempts: 10, Base: time.Second, Cap: 2 * time.Minute}}
	m := retried(logMsg(t), 2)
	var dues []time.Duration
	for i := 1; i <= 8; i++ {
		start := time.Now()
		require.NoError(t, h.Defer(context.Background(), m))
		m = pub.msgs[len(pub.msgs)-1]
		assert.Equal(t, strconv.Itoa(i), kafkabus.Header(m, kafkabus.HeaderDeferrals))
		assert.Equal(t, "2", kafkabus.Header(m, kafkabus.HeaderAttempts), "no attempt spent")
		dues = append(dues, route.DueAt(m).Sub(start))
	}
	assert.Less(t, dues[0], 2*time.Second)
	assert.Greater(t, dues[7], 60*time.Second, "the 8th deferral waits the capped delay: %v", dues)
	pub.err = errors.New("kafka down")
	require.ErrorIs(t, h.Defer(context.Background(), m), callwriter.ErrInfra)
}
