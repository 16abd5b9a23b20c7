package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/app"
	"github.com/calltrack/calltrack/internal/backfill"
)

// recordInMyOperator puts a call into the sandbox MyOperator's call log, as having
// ended `ago` ago, without delivering its webhook (POST /calls?at=).
func (s *stack) recordInMyOperator(payload string, ago time.Duration) {
	s.t.Helper()
	at := time.Now().Add(-ago).UTC().Format(time.RFC3339)
	req, _ := http.NewRequest(http.MethodPost, s.moSrv.URL+"/calls?at="+at, strings.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	r := s.do(req)
	require.Equal(s.t, http.StatusCreated, r.Status, "%v", r.Body)
}

func (s *stack) backfill(body map[string]any) response {
	s.t.Helper()
	return s.admin(http.MethodPost, "/backfill", body)
}

// A call MyOperator never delivered reaches the CRM through the admin endpoint, once;
// a dry run counts it without writing; a call whose webhook came is known.
func TestBackfillThroughAdminAPI(t *testing.T) {
	s := newStack(t, stackOpts{noWriter: true})
	acme, _ := s.app.Tenants.Get(tenantID)
	acme.Backfill.Disabled = true // only the runs of this test, none periodic
	s.startWriter()
	s.mapAgent(sumit.id, "1001", sumit.email)

	lost := newUID()
	s.recordInMyOperator(afterCall(callSpec{uid: lost, status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}, recording: true}), 10*time.Minute)
	delivered := newUID()
	payload := afterCall(callSpec{uid: delivered, status: 1, legs: []leg{{agents: []agent{sumit}, answered: true}}})
	s.recordInMyOperator(payload, 20*time.Minute)
	require.Equal(t, http.StatusOK, s.postForm("aftercall", payload, token).Status)
	s.waitRecords(delivered, 1, within)

	r := s.backfill(map[string]any{"since": "1h", "dry_run": true})
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	assert.Equal(t, map[string]any{"found": 2.0, "known": 1.0, "published": 0.0, "would_publish": 1.0, "calls": []any{lost}},
		pick(r.Body, "found", "known", "published", "would_publish", "calls"))
	assert.Equal(t, true, r.Body["dry_run"])

	r = s.backfill(map[string]any{"since": "1h"})
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	assert.Equal(t, map[string]any{"found": 2.0, "known": 1.0, "published": 1.0}, pick(r.Body, "found", "known", "published"))
	recs := s.waitRecords(lost, 1, within)
	assert.EqualValues(t, 1001, recs[0].Owner.ID, "attributed like any other call")
	require.NotNil(t, recs[0].CallRecording, "with its recording")
	tr := s.waitStatus(lost, "written", within)
	assert.Contains(t, tr["stages"].([]any)[0].(map[string]any)["detail"], "found in MyOperator's call log")

	// Again: nothing new.
	r = s.backfill(map[string]any{"since": "1h"})
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, map[string]any{"found": 2.0, "known": 2.0, "published": 0.0}, pick(r.Body, "found", "known", "published"))
	rep := s.admin(http.MethodGet, "/backfill/report", nil)
	require.Equal(t, http.StatusOK, rep.Status)
	assert.Equal(t, "admin", rep.Body["trigger"])

	// What an admin gets wrong is said clearly.
	for _, tc := range []struct {
		body   any
		status int
		code   string
	}{
		{map[string]any{"since": "yesterday"}, 400, "bad_window"},
		{map[string]any{}, 400, "bad_window"},
		{map[string]any{"since": "30d"}, 400, "bad_window"},
		{map[string]any{"since": "1h", "dryrun": true}, 400, "invalid_json"},
	} {
		r := s.backfill(tc.body.(map[string]any))
		assert.Equal(t, tc.status, r.Status, "%v", tc.body)
		assert.Equal(t, tc.code, r.Body["error"].(map[string]any)["code"], "%v: %v", tc.body, r.Body)
	}
	assert.Len(t, s.records(lost), 1)
	assert.Len(t, s.records(delivered), 1)
}

// Backfills on two replicas at once, and the periodic one of `work`: each call once.
func TestBackfillOnceAcrossReplicas(t *testing.T) {
	s := newStack(t, stackOpts{noWriter: true})
	s.mapAgent(priya.id, "1002", priya.email)
	var uids []string
	for range 12 {
		uid := newUID()
		uids = append(uids, uid)
		s.recordInMyOperator(afterCall(callSpec{uid: uid, status: 2, legs: []leg{{agents: []agent{priya}}}}), 10*time.Minute)
	}
	// A second replica of the same deployment.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	second, err := app.Open(ctx, s.app.Cfg, app.NewLogger(testWriter{t}, "warn"), s.app.Tenants)
	require.NoError(t, err)
	t.Cleanup(second.Close)

	var wg sync.WaitGroup
	reports := make([]*backfill.Report, 2)
	for i, a := range []*app.App{s.app, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := a.Backfill.Run(context.Background(), tenantID, backfill.Options{Since: time.Now().Add(-time.Hour),
				Trigger: backfill.TriggerCLI, Wait: 30 * time.Second})
			assert.NoError(t, err)
			reports[i] = r
		}()
	}
	wg.Wait()
	require.NotNil(t, reports[0])
	require.NotNil(t, reports[1])
	assert.Equal(t, 12, reports[0].Published+reports[1].Published)
	assert.Equal(t, 24, reports[0].Found+reports[1].Found)

	// The writers and their periodic backfill start now: it finds every call known.
	s.startWriter()
	for _, uid := range uids {
		s.waitRecords(uid, 1, within)
	}
	waitFor(t, "the periodic backfill ran", func() bool {
		r := s.admin(http.MethodGet, "/backfill/report", nil)
		return r.Status == http.StatusOK && r.Body["trigger"] == "schedule"
	})
	r := s.admin(http.MethodGet, "/backfill/report", nil)
	assert.Equal(t, 12.0, r.Body["known"], "%v", r.Body)
	assert.Equal(t, 0.0, r.Body["published"])
	for _, uid := range uids {
		assert.Len(t, s.records(uid), 1, uid)
	}
	msgs := s.readTopic(s.app.Topics.Log, 12, func(m kafka.Message) bool {
		var l struct{ Source string }
		return json.Unmarshal(m.Value, &l) == nil && l.Source == "myoperator.backfill"
	})
	assert.Len(t, msgs, 12, "published once each")
}

// `work` backfills by itself: a call MyOperator logged but never delivered is written
// without anyone asking.
func TestBackfillPeriodic(t *testing.T) {
	s := newStack(t, stackOpts{noWriter: true})
	s.mapAgent(ravi.id, "1003", ravi.email)
	uid := newUID()
	s.recordInMyOperator(afterCall(callSpec{uid: uid, status: 1, legs: []leg{{agents: []agent{ravi}, answered: true}}}), 10*time.Minute)
	young := newUID() // within the settle time: its webhook may still come
	s.recordInMyOperator(afterCall(callSpec{uid: young, status: 1, legs: []leg{{agents: []agent{ravi}, answered: true}}}), time.Minute)
	s.startWriter()
	recs := s.waitRecords(uid, 1, within)
	assert.EqualValues(t, 1003, recs[0].Owner.ID)
	assert.Empty(t, s.records(young), "a call younger than backfill.settle waits for the next run")
}

func pick(m map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}
