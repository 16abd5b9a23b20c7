package ingest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/idempotency"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

type nopPublisher struct {
	mu sync.Mutex
	n  int
}

func (p *nopPublisher) Deliver(_ context.Context, msgs ...kafka.Message) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += len(msgs)
	return false, nil
}

// FuzzV2Endpoint: whatever the body, the v2 endpoint answers 2xx or 400, never 5xx
// (MyOperator would retry a 5xx for 24 h) and never panics.
func FuzzV2Endpoint(f *testing.F) {
	files, _ := filepath.Glob("../myoperator/testdata/v2_*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	for _, s := range []string{``, `{}`, `[]`, `null`, `"x"`, `{"event_type":"call.end","session_id":"s","payload":{"status":"missed","direction":"incoming"}}`,
		`myoperator=%7B%7D`, `{"event_type":"call.summary","company_id":"other","session_id":"s","direction":"incoming","payload":{"status":"bridged"}}`} {
		f.Add([]byte(s))
	}
	mr := miniredis.NewMiniRedis()
	require.NoError(f, mr.Start())
	f.Cleanup(mr.Close)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	f.Cleanup(func() { _ = rdb.Close() })
	h := &Handler{Tenants: tenant.NewRegistry(&tenant.Tenant{ID: "acme", WebhookToken: "tok", CompanyID: "5cd40f6554442586"}),
		Redis: rdb, Mappings: mapping.NewStore(rdb, "f"), Publisher: &nopPublisher{}, Topics: kafkabus.DefaultTopics(),
		Dedupe: idempotency.New(rdb, "f"), Trace: trace.New(rdb, "f"), Metrics: metrics.New(), Log: zerolog.Nop()}
	e := web.New(zerolog.Nop(), h.Metrics, nil)
	(&V2{Handler: h}).Register(e)

	f.Fuzz(func(t *testing.T, body []byte) {
		mr.FlushAll() // each body is a first delivery
		req := httptest.NewRequest(http.MethodPost, "/webhooks/myoperator/acme/v2?token=tok", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden: // 403: another company's event
		default:
			t.Fatalf("HTTP %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
