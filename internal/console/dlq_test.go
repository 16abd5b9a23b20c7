package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/dlq"
	"github.com/calltrack/calltrack/internal/replay"
	"github.com/calltrack/calltrack/internal/testenv"
)

// fakeDeadLetters keeps the replays it was asked for; each finds one crm_rejected call log.
type fakeDeadLetters struct {
	mu   sync.Mutex
	reqs []ReplayRequest
}

func (f *fakeDeadLetters) Summary(context.Context, string, time.Time) (dlq.Summary, error) {
	return dlq.Summary{Total: 1, ByReason: map[string]int{"crm_rejected": 1}, ByType: map[string]int{"log": 1}}, nil
}

func (f *fakeDeadLetters) Replay(_ context.Context, _ string, r ReplayRequest, sent func(int)) (replay.Summary, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
	s := replay.Summary{Replayed: 1, DryRun: r.DryRun}
	if r.Reattribute {
		s.Reattributed = 1
	}
	if sent != nil {
		sent(1)
	}
	return s, nil
}

func (f *fakeDeadLetters) requests() []ReplayRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ReplayRequest(nil), f.reqs...)
}

// The Dead letters page's re-attribute box reaches replay.Options.Reattribute (through
// ReplayRequest) on the dry run and on both passes of the real replay, stays ticked
// from one to the other, and the job says so.
func TestReplayCarriesReattribute(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ticked bool
	}{
		{"ticked", true},
		{"not ticked", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			dl := &fakeDeadLetters{}
			f.c.DeadLetters = dl
			c := f.client()
			_, csrf := f.signIn(c, "acme-token")
			form := url.Values{"csrf": {csrf}, "window": {"24h"}, "reason": {"crm_rejected"}, "mode": {"dry"}}
			if tc.ticked {
				form.Set("reattribute", "1")
			}

			res, _ := f.post(c, "/console/tenants/acme/dlq/replay", form)
			require.Equal(t, http.StatusSeeOther, res.StatusCode)
			loc := res.Header.Get("Location")
			_, page := f.get(c, loc)
			assert.Equal(t, tc.ticked, strings.Contains(page, `value="1" checked`), "the box as it was on the dry run:\n%s", loc)
			assert.Equal(t, tc.ticked, strings.Contains(page, "1 call log re-attributed with today&#39;s mappings"), "the dry run's flash")
			assert.Contains(t, page, `id="reattribute-hint"`)
			require.Len(t, dl.requests(), 1)
			dry := dl.requests()[0]
			assert.True(t, dry.DryRun)
			assert.Equal(t, tc.ticked, dry.Reattribute)
			assert.Equal(t, []string{"crm_rejected"}, dry.Reasons)

			form.Set("mode", "replay")
			res, _ = f.post(c, "/console/tenants/acme/dlq/replay", form)
			require.Equal(t, http.StatusSeeOther, res.StatusCode)
			u, err := url.Parse(res.Header.Get("Location"))
			require.NoError(t, err)
			id := u.Query().Get("job")
			require.NotEmpty(t, id)
			var j job
			testenv.Eventually(t, 10*time.Second, "the replay job done", func() bool {
				_, raw := f.get(c, "/console/tenants/acme/dlq/replay/"+id)
				return json.Unmarshal([]byte(raw), &j) == nil && j.State == "done"
			})
			assert.Equal(t, tc.ticked, j.Reattribute, "the job's summary says whether owners were re-resolved")
			assert.Equal(t, map[bool]int{true: 1}[tc.ticked], j.Reattributed)
			reqs := dl.requests()
			require.Len(t, reqs, 3, "the dry run, then the job's count and replay")
			assert.True(t, reqs[1].DryRun)
			assert.False(t, reqs[2].DryRun)
			for _, r := range reqs[1:] {
				assert.Equal(t, tc.ticked, r.Reattribute)
			}
		})
	}
}

// A replay's progress the console no longer has is a 404 with the standard JSON error
// body, which the page's script shows.
func TestReplayProgressUnknownJob(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	f.signIn(c, "acme-token")
	res, body := f.get(c, "/console/tenants/acme/dlq/replay/zzz")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.JSONEq(t, `{"error":{"code":"not_found","message":"no such replay (replays are kept for a day)"}}`, body)
}
