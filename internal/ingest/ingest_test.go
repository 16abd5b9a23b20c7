package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/idempotency"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/metrics"
	"github.com/calltrack/calltrack/internal/redisbatch"
	"github.com/calltrack/calltrack/internal/spool"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/testenv"
	"github.com/calltrack/calltrack/internal/trace"
	"github.com/calltrack/calltrack/internal/web"
)

// fakePublisher stands in for Kafka where a test is about the HTTP side only.
type fakePublisher struct {
	mu   sync.Mutex
	fail error
	msgs []kafka.Message
}

func (f *fakePublisher) Deliver(_ context.Context, msgs ...kafka.Message) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return false, f.fail
	}
	f.msgs = append(f.msgs, msgs...)
	return false, nil
}

func newServer(t testing.TB) (*httptest.Server, *fakePublisher) {
	return newServerFor(t, &tenant.Tenant{ID: "acme", WebhookToken: "tok"})
}

// newServerFor is newServer for tenant ten.
func newServerFor(t testing.TB, ten *tenant.Tenant) (*httptest.Server, *fakePublisher) {
	return newServerLogging(t, ten, zerolog.Nop())
}

// newServerLogging is newServerFor with the handler logging to log.
func newServerLogging(t testing.TB, ten *tenant.Tenant, log zerolog.Logger) (*httptest.Server, *fakePublisher) {
	env := testenv.New(t)
	pub := &fakePublisher{}
	m := metrics.New()
	h := &Handler{Tenants: tenant.NewRegistry(ten),
		Redis: env.Redis, Mappings: mapping.NewStore(env.Redis, env.Prefix), Publisher: pub, Topics: env.Topics,
		Dedupe: idempotency.New(env.Redis, env.Prefix), Trace: trace.New(env.Redis, env.Prefix), Metrics: m, Log: log,
		After: redisbatch.New(env.Redis, redisbatch.Options{}), Before: redisbatch.New(env.Redis, redisbatch.Options{})} // as serve runs it
	t.Cleanup(func() { _ = h.After.Close(context.Background()); _ = h.Before.Close(context.Background()) })
	e := web.New(zerolog.Nop(), m, nil)
	h.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, pub
}

func sample(t testing.TB) string {
	b, err := os.ReadFile("../myoperator/testdata/aftercall_answered.json")
	require.NoError(t, err)
	return string(b)
}

// Kafka down: 503 so MyOperator retries, and the retry is not mistaken for a duplicate.
func TestPublishFailureLetsTheRetryThrough(t *testing.T) {
	srv, pub := newServer(t)
	post := func() (int, string) {
		res, err := http.PostForm(srv.URL+"/webhooks/myoperator/acme/aftercall?token=tok", url.Values{"myoperator": {sample(t)}})
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	pub.fail = errors.New("kafka: leader not available")
	code, body := post()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, `"code":"unavailable"`)
	assert.NotContains(t, body, "leader", "internal errors are not shown to the caller")

	pub.fail = nil
	code, body = post()
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"status":"accepted"`)
	assert.Len(t, pub.msgs, 2, "call log and recording published")
	code, body = post()
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"status":"duplicate"`)
}

// Legacy GET delivery with the payload in query parameters.
func TestLegacyGET(t *testing.T) {
	srv, pub := newServer(t)
	q := url.Values{"token": {"tok"}, "myoperator": {sample(t)}}
	res, err := http.Get(srv.URL + "/webhooks/myoperator/acme/aftercall?" + q.Encode())
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.NotEmpty(t, pub.msgs)
}

// FuzzWebhook: whatever the body, the endpoint never panics and never answers 5xx.
func FuzzWebhook(f *testing.F) {
	srv, _ := newServer(f)
	f.Add("application/x-www-form-urlencoded", "myoperator="+url.QueryEscape(sample(f)))
	f.Add("application/json", sample(f))
	f.Add("application/json", `{"myoperator":`+sample(f)+`}`)
	f.Add("application/json", `{"_ai":1,"_ev":"2","_su":[],"_ld":{"_rr":7}}`)
	f.Add("text/plain", "\x00\xff{")
	f.Add("multipart/form-data; boundary=x", "--x\r\n")
	f.Fuzz(func(t *testing.T, contentType, body string) {
		for _, kind := range []string{"aftercall", "incall"} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/myoperator/acme/"+kind+"?token=tok", strings.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return // a header no HTTP client would send (control characters)
			}
			res.Body.Close()
			if res.StatusCode >= 500 {
				t.Fatalf("%s: HTTP %d for %q %q", kind, res.StatusCode, contentType, body)
			}
		}
	})
}

// With tracing on, a webhook's own log lines carry its trace and span ids, so an
// operator goes from a log line to the trace and back.
func TestLogLinesCarryTheTrace(t *testing.T) {
	env := testenv.New(t)
	var logged testenv.LogBuffer
	m := metrics.New()
	h := &Handler{Tenants: tenant.NewRegistry(&tenant.Tenant{ID: "acme", WebhookToken: "tok"}),
		Redis: env.Redis, Mappings: mapping.NewStore(env.Redis, env.Prefix), Publisher: &fakePublisher{}, Topics: env.Topics,
		Dedupe: idempotency.New(env.Redis, env.Prefix), Trace: trace.New(env.Redis, env.Prefix), Metrics: m, Log: zerolog.New(&logged)}
	e := web.New(zerolog.Nop(), m, nil)
	h.Register(e)
	sc := oteltrace.NewSpanContext(oteltrace.SpanContextConfig{TraceID: oteltrace.TraceID{0xab, 1}, SpanID: oteltrace.SpanID{0xcd, 2},
		TraceFlags: oteltrace.FlagsSampled})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.ServeHTTP(w, r.WithContext(oteltrace.ContextWithSpanContext(r.Context(), sc))) // as the tracing middleware leaves it
	}))
	defer srv.Close()
	res, err := http.PostForm(srv.URL+"/webhooks/myoperator/acme/aftercall?token=tok", url.Values{"myoperator": {sample(t)}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, logged.String(), `"message":"webhook accepted"`)
	assert.Contains(t, logged.String(), `"trace_id":"`+sc.TraceID().String()+`","span_id":"`+sc.SpanID().String()+`"`)
}

// A payload of another company than the tenant's, with the right token, is answered
// 403 wrong_company naming both companies (not 401 "wrong token": a company_id set
// wrong would lose every call behind the wrong cause) and is kept on the rejected topic.
func TestAnotherCompanysPayloadIsRefusedAndKept(t *testing.T) {
	srv, pub := newServerFor(t, &tenant.Tenant{ID: "acme", WebhookToken: "tok", CompanyID: "1111111111111111"})
	for _, kind := range []string{"aftercall", "incall"} {
		payload := sample(t) // company 5cd40f6554442586
		if kind == "incall" {
			b, err := os.ReadFile("../myoperator/testdata/incall_ringing.json")
			require.NoError(t, err)
			payload = string(b)
		}
		pub.msgs = nil
		res, err := http.PostForm(srv.URL+"/webhooks/myoperator/acme/"+kind+"?token=tok", url.Values{"myoperator": {payload}})
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusForbidden, res.StatusCode, kind)
		assert.JSONEq(t, `{"error":{"code":"wrong_company","message":"the payload is company \"5cd40f6554442586\"'s; tenant acme takes only company \"1111111111111111\"'s (company_id in the tenants file)"}}`, string(b), kind)
		require.Len(t, pub.msgs, 1, "%s: kept", kind)
		assert.Equal(t, "wrong_company", kafkabus.Header(pub.msgs[0], kafkabus.HeaderReason))
		assert.Equal(t, url.Values{"myoperator": {payload}}.Encode(), string(pub.msgs[0].Value), "the body as it came")
	}
}

// A malformed webhook is answered 400 once its raw payload is kept (on the rejected
// topic). When neither Kafka nor the spool keeps it, it is answered 503 — spool_full or
// unavailable, the JSON error of any 503 — since MyOperator does not retry a 4xx and the
// payload would be nowhere.
func TestMalformedWebhookNotKeptIsAnswered503(t *testing.T) {
	srv, pub := newServer(t)
	const bad = `{"_ai": "5f114f490dbe1", "_su": 7`
	post := func() (int, string) {
		res, err := http.PostForm(srv.URL+"/webhooks/myoperator/acme/aftercall?token=tok", url.Values{"myoperator": {bad}})
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	pub.fail = spool.ErrFull // Kafka did not answer, the spool is full
	code, body := post()
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.JSONEq(t, `{"error":{"code":"spool_full","message":"Kafka is not answering and calltrack's local spool is full: the call was not taken; retry later"}}`, body)

	pub.fail = fmt.Errorf("%w: write 00000000000000000001: no space left on device", spool.ErrFailed)
	code, body = post()
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.JSONEq(t, `{"error":{"code":"unavailable","message":"calltrack cannot take the call right now; retry"}}`, body)
	assert.Empty(t, pub.msgs)

	pub.fail = nil // MyOperator's retry, Kafka or the spool taking it again
	code, body = post()
	assert.Equal(t, http.StatusBadRequest, code, body)
	assert.Contains(t, body, `"code":"malformed_payload"`)
	require.Len(t, pub.msgs, 1, "the raw payload kept")
	assert.Equal(t, url.Values{"myoperator": {bad}}.Encode(), string(pub.msgs[0].Value), "the body as it came")
	assert.Equal(t, "malformed_payload", kafkabus.Header(pub.msgs[0], kafkabus.HeaderReason))
}

// An afterCall whose agent fields are malformed (not the documented objects) is still
// taken — read without them, it goes to the fallback owner — but says so: a warning
// naming the field (no phone number) and a trace stage on the call.
func TestMalformedAgentFieldIsLoggedAndTraced(t *testing.T) {
	const caller = "9711636496" // the sample's caller: never in the log line
	for _, tc := range []struct {
		name, field string
		edit        func(p map[string]any)
	}{
		{"_ld a string", "_ld", func(p map[string]any) { p["_ld"] = "answered by Sumit" }},
		{"_ld a list of numbers", "_ld", func(p map[string]any) { p["_ld"] = []int{1, 2} }},
		{"_rr a string", "_rr", func(p map[string]any) { p["_ld"].([]any)[0].(map[string]any)["_rr"] = "Sumit" }},
		{"_rr a list of lists", "_rr", func(p map[string]any) { p["_ld"].([]any)[0].(map[string]any)["_rr"] = []any{[]int{1}, true} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			var logged testenv.LogBuffer
			pub := &fakePublisher{}
			m := metrics.New()
			h := &Handler{Tenants: tenant.NewRegistry(&tenant.Tenant{ID: "acme", WebhookToken: "tok", FallbackOwner: "9000"}),
				Redis: env.Redis, Mappings: mapping.NewStore(env.Redis, env.Prefix), Publisher: pub, Topics: env.Topics,
				Dedupe: idempotency.New(env.Redis, env.Prefix), Trace: trace.New(env.Redis, env.Prefix), Metrics: m, Log: zerolog.New(&logged)}
			e := web.New(zerolog.Nop(), m, nil)
			h.Register(e)
			srv := httptest.NewServer(e)
			t.Cleanup(srv.Close)

			var p map[string]any
			require.NoError(t, json.Unmarshal([]byte(sample(t)), &p))
			tc.edit(p)
			payload, err := json.Marshal(p)
			require.NoError(t, err)
			res, err := http.PostForm(srv.URL+"/webhooks/myoperator/acme/aftercall?token=tok", url.Values{"myoperator": {string(payload)}})
			require.NoError(t, err)
			res.Body.Close()
			require.Equal(t, http.StatusOK, res.StatusCode, "taken all the same")

			pub.mu.Lock()
			require.Len(t, pub.msgs, 2, "call log and recording")
			var l call.Log
			require.NoError(t, json.Unmarshal(pub.msgs[0].Value, &l))
			pub.mu.Unlock()
			assert.Nil(t, l.Agent)
			require.NotNil(t, l.Owner)
			assert.Equal(t, "9000", l.Owner.CRMUserID, "the fallback owner")

			var warning string
			for line := range strings.Lines(logged.String()) {
				if strings.Contains(line, "agent fields malformed") {
					warning = line
				}
			}
			require.NotEmpty(t, warning, "a warning: %s", logged.String())
			assert.Contains(t, warning, `"level":"warn"`)
			assert.Contains(t, warning, `"fields":["`+tc.field+`"]`)
			assert.Contains(t, warning, `"call_id":"n2.1596270949.2175190"`)
			assert.Contains(t, warning, `"owner":"9000"`)
			assert.NotContains(t, warning, caller)

			tr, err := trace.New(env.Redis, env.Prefix).Get(t.Context(), "acme", "n2.1596270949.2175190")
			require.NoError(t, err)
			var detail string
			for _, st := range tr.Stages {
				if st.Stage == StageAgentFieldMalformed {
					detail = st.Detail
				}
			}
			assert.Contains(t, detail, tc.field+" malformed")
			assert.Contains(t, detail, "no agent")
		})
	}
}

// A call id or log id sent as a JSON object or array is no id MyOperator has: it is
// answered 400 malformed_payload and kept on the rejected topic, not taken as a call
// whose id is the object's JSON text. A number stays a fine id.
func TestObjectCallIDIsRefusedAndKept(t *testing.T) {
	srv, pub := newServer(t)
	incall, err := os.ReadFile("../myoperator/testdata/incall_ringing.json")
	require.NoError(t, err)
	for _, tc := range []struct {
		name, kind, payload, id, with string
		status                        int
	}{
		{"inCall uid an object", "incall", string(incall), `"n2.1596270949.2175190"`, `{"x":[1,2]}`, http.StatusBadRequest},
		{"inCall uid an array", "incall", string(incall), `"n2.1596270949.2175190"`, `["n2.1"]`, http.StatusBadRequest},
		{"inCall id an object", "incall", string(incall), `"5f25296c4122c135"`, `{"x":1}`, http.StatusBadRequest},
		{"afterCall ui an object", "aftercall", sample(t), `"n2.1596270949.2175190"`, `{"x":1}`, http.StatusBadRequest},
		{"afterCall _ai an array", "aftercall", sample(t), `"5f114f490dbe2437"`, `[1]`, http.StatusBadRequest},
		{"inCall uid a number", "incall", string(incall), `"n2.1596270949.2175190"`, `1596270949`, http.StatusOK},
		{"afterCall ui a number", "aftercall", sample(t), `"n2.1596270949.2175190"`, `1596270949`, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, tc.payload, tc.id)
			payload := strings.Replace(tc.payload, tc.id, tc.with, 1)
			pub.msgs = nil
			res, err := http.PostForm(srv.URL+"/webhooks/myoperator/acme/"+tc.kind+"?token=tok", url.Values{"myoperator": {payload}})
			require.NoError(t, err)
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			require.Equal(t, tc.status, res.StatusCode, "%s", b)
			if tc.status == http.StatusOK {
				return
			}
			assert.Contains(t, string(b), `"code":"malformed_payload"`)
			assert.Contains(t, string(b), "is a JSON object or array")
			require.Len(t, pub.msgs, 1, "kept")
			assert.Equal(t, "malformed_payload", kafkabus.Header(pub.msgs[0], kafkabus.HeaderReason))
			assert.Equal(t, url.Values{"myoperator": {payload}}.Encode(), string(pub.msgs[0].Value), "the body as it came")
		})
	}
}

// A malformed field's value is quoted in the answer and the logged reason with its
// digit runs masked: phone numbers are never in the log unmasked, even where
// MyOperator puts none.
func TestMalformedFieldValueIsMasked(t *testing.T) {
	const number = "919811100001"
	incall, err := os.ReadFile("../myoperator/testdata/incall_ringing.json")
	require.NoError(t, err)
	for _, tc := range []struct {
		name, kind, payload, field, with, logged string
		status                                   int
	}{
		{"afterCall _su", "aftercall", sample(t), `"_su":1`, `"_su":"+` + number + `"`, "malformed webhook rejected", http.StatusBadRequest},
		{"afterCall _ev", "aftercall", sample(t), `"_ev":1`, `"_ev":` + number, "malformed webhook rejected", http.StatusBadRequest},
		{"inCall call_state", "incall", string(incall), `"call_state":"0"`, `"call_state":"+` + number + `"`, "webhook ignored", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logged testenv.LogBuffer
			srv, _ := newServerLogging(t, &tenant.Tenant{ID: "acme", WebhookToken: "tok"}, zerolog.New(&logged))
			require.Contains(t, tc.payload, tc.field)
			payload := strings.Replace(tc.payload, tc.field, tc.with, 1)
			res, err := http.PostForm(srv.URL+"/webhooks/myoperator/acme/"+tc.kind+"?token=tok", url.Values{"myoperator": {payload}})
			require.NoError(t, err)
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			require.Equal(t, tc.status, res.StatusCode, "%s", b)
			assert.Contains(t, string(b), `******0001`, "masked in the answer")
			assert.NotContains(t, string(b), number)
			require.Contains(t, logged.String(), tc.logged)
			assert.Contains(t, logged.String(), `******0001`, "masked in the log")
			assert.NotContains(t, logged.String(), number)
		})
	}
}
