package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/calltrack/calltrack/internal/admin"
	"github.com/calltrack/calltrack/internal/dlq"
	"github.com/calltrack/calltrack/internal/web"
)

// The Dead letters page: a summary by reason and age, a dry-run count, then the real
// replay as a background job whose progress the page polls (kept in Redis, so any
// replica answers the poll).

// windows are the page's time windows.
var windows = []struct {
	Value, Label string
	D            time.Duration
}{
	{"1h", "last hour", time.Hour},
	{"24h", "last 24 hours", 24 * time.Hour},
	{"7d", "last 7 days", 7 * 24 * time.Hour},
}

func windowOf(v string) (string, time.Duration) {
	for _, w := range windows {
		if w.Value == v {
			return w.Value, w.D
		}
	}
	return "7d", 7 * 24 * time.Hour
}

type count struct {
	Key, Words string
	N          int
}

type dlqData struct {
	Window, Reason string
	Windows        []struct {
		Value, Label string
		D            time.Duration
	}
	Summary  dlq.Summary
	Reasons  []count
	Ages     []count
	Types    []count
	Errors   []count
	DryCount int  // the dry run's count, shown with the real replay's button
	DryRun   bool // a dry run was just made
	// Reattribute keeps the form's re-attribute box ticked from the dry run to the replay.
	Reattribute bool
	Job         string
}

func sorted(m map[string]int, words func(string) string) []count {
	out := make([]count, 0, len(m))
	for k, n := range m {
		w := k
		if words != nil {
			w = words(k)
		}
		out = append(out, count{Key: k, Words: w, N: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N > out[j].N || (out[i].N == out[j].N && out[i].Key < out[j].Key) })
	return out
}

func (c *Console) deadLetters(e echo.Context) error {
	t := c.tenant(e)
	d := dlqData{Windows: windows, Reason: e.QueryParam("reason"), Job: e.QueryParam("job"), Reattribute: e.QueryParam("reattribute") != ""}
	var span time.Duration
	d.Window, span = windowOf(e.QueryParam("window"))
	if n, err := strconv.Atoi(e.QueryParam("dry")); err == nil {
		d.DryRun, d.DryCount = true, n
	}
	ctx, cancel := context.WithTimeout(e.Request().Context(), 30*time.Second)
	defer cancel()
	s, err := c.DeadLetters.Summary(ctx, t.ID, time.Now().Add(-span))
	if err != nil {
		c.Log.Error().Err(err).Msg("console: dead-letter summary")
		return c.fail(e, http.StatusServiceUnavailable, "The dead-letter topic could not be read just now (Kafka did not answer). Reload the page in a moment.")
	}
	d.Summary = s
	d.Reasons = sorted(s.ByReason, reasonWords)
	d.Types = sorted(s.ByType, func(k string) string {
		switch k {
		case "log":
			return "call log"
		case "live":
			return "live call (pop-up)"
		}
		return k
	})
	d.Errors = sorted(s.Errors, nil)
	if len(d.Errors) > 5 {
		d.Errors = d.Errors[:5]
	}
	for _, b := range []struct{ key, words string }{{"< 1h", "under an hour old"}, {"1h-6h", "1 to 6 hours old"}, {"6h-24h", "6 to 24 hours old"},
		{"1d-7d", "1 to 7 days old"}, {"> 7d", "over 7 days old"}} {
		if n := s.ByAge[b.key]; n > 0 {
			d.Ages = append(d.Ages, count{Key: b.key, Words: b.words, N: n})
		}
	}
	return c.render(e, http.StatusOK, "dlq", &page{Title: "Dead letters", Tab: "dlq", Data: d})
}

// job is a replay's progress as the page polls it.
type job struct {
	ID    string `json:"id"`
	State string `json:"state"` // counting, replaying, done, failed
	Total int    `json:"total"`
	Sent  int    `json:"sent"`
	// Reattribute: the call logs went without their ingest-time owner; Reattributed
	// counts them.
	Reattribute  bool      `json:"reattribute,omitempty"`
	Reattributed int       `json:"reattributed,omitempty"`
	Error        string    `json:"error,omitempty"`
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished,omitzero"`
	By           string    `json:"by"`
}

func (c *Console) jobKey(tenant, id string) string {
	return c.Prefix + ":console:replay:{" + tenant + "}:" + id
}

func (c *Console) saveJob(ctx context.Context, tenant string, j *job) error {
	raw, _ := json.Marshal(j)
	return c.Redis.Set(ctx, c.jobKey(tenant, j.ID), raw, 24*time.Hour).Err()
}

// replay runs a dry run (the count, at once) or starts the real replay.
func (c *Console) replay(e echo.Context) error {
	t := c.tenant(e)
	ad := admin.FromContext(e)
	win, span := windowOf(e.FormValue("window"))
	reason := e.FormValue("reason")
	req := ReplayRequest{Since: time.Now().Add(-span), Reattribute: e.FormValue("reattribute") != ""}
	q := url.Values{"window": {win}}
	if reason != "" {
		req.Reasons = []string{reason}
		q.Set("reason", reason)
	}
	if req.Reattribute {
		q.Set("reattribute", "1")
	}
	if e.FormValue("mode") != "replay" {
		ctx, cancel := context.WithTimeout(e.Request().Context(), time.Minute)
		defer cancel()
		req.DryRun = true
		s, err := c.DeadLetters.Replay(ctx, t.ID, req, nil)
		if err != nil {
			c.Log.Error().Err(err).Msg("console: replay dry run")
			c.setFlash(e, flash{Kind: "error", Text: "The dry run could not read the dead letters: " + err.Error()})
			return e.Redirect(http.StatusSeeOther, tenantPath(t.ID, "dlq")+"?"+q.Encode())
		}
		q.Set("dry", strconv.Itoa(s.Replayed))
		f := flash{Kind: "ok", Text: "Dry run: would replay " + plural(s.Replayed, "message") + ". Nothing was sent."}
		for k, n := range s.ByTarget {
			f.Lines = append(f.Lines, fmt.Sprintf("%d to %s", n, k))
		}
		for k, n := range s.Skipped {
			f.Lines = append(f.Lines, fmt.Sprintf("%d skipped: %s", n, k))
		}
		if req.Reattribute {
			f.Lines = append(f.Lines, fmt.Sprintf("%s re-attributed with today's mappings", plural(s.Reattributed, "call log")))
		}
		c.setFlash(e, f)
		return e.Redirect(http.StatusSeeOther, tenantPath(t.ID, "dlq")+"?"+q.Encode())
	}
	j := &job{ID: randomToken()[:16], State: "counting", Started: time.Now().UTC(), By: ad.Name, Reattribute: req.Reattribute}
	if err := c.saveJob(e.Request().Context(), t.ID, j); err != nil {
		return c.unavailable(e, "start the replay", err)
	}
	c.Log.Info().Str("tenant", t.ID).Str("admin", ad.Name).Str("window", win).Str("reason", reason).Bool("reattribute", req.Reattribute).
		Str("job", j.ID).Msg("console: replay started")
	go c.runReplay(t.ID, req, j)
	q.Set("job", j.ID)
	return e.Redirect(http.StatusSeeOther, tenantPath(t.ID, "dlq")+"?"+q.Encode())
}

// runReplay counts, then replays, keeping the job's progress in Redis.
func (c *Console) runReplay(tenant string, req ReplayRequest, j *job) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var mu sync.Mutex
	save := func() {
		if err := c.saveJob(ctx, tenant, j); err != nil {
			c.Log.Warn().Err(err).Msg("console: replay progress not kept")
		}
	}
	finish := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		j.Finished = time.Now().UTC()
		j.State = "done"
		if err != nil {
			j.State, j.Error = "failed", err.Error()
		}
		save()
	}
	dry := req
	dry.DryRun = true
	counted, err := c.DeadLetters.Replay(ctx, tenant, dry, nil)
	if err != nil {
		finish(err)
		return
	}
	mu.Lock()
	j.Total, j.State = counted.Replayed, "replaying"
	save()
	mu.Unlock()
	last := time.Now()
	s, err := c.DeadLetters.Replay(ctx, tenant, req, func(sent int) {
		mu.Lock()
		defer mu.Unlock()
		j.Sent = sent
		if time.Since(last) > 200*time.Millisecond {
			last = time.Now()
			save()
		}
	})
	mu.Lock()
	j.Sent, j.Reattributed = s.Replayed, s.Reattributed
	mu.Unlock()
	finish(err)
	c.Log.Info().Str("tenant", tenant).Str("job", j.ID).Int("replayed", s.Replayed).Int("reattributed", s.Reattributed).AnErr("error", err).Msg("console: replay finished")
}

func (c *Console) replayProgress(e echo.Context) error {
	raw, err := c.Redis.Get(e.Request().Context(), c.jobKey(e.Param("tenant"), e.Param("job"))).Bytes()
	if errors.Is(err, redis.Nil) {
		return web.Errorf(http.StatusNotFound, "not_found", "no such replay (replays are kept for a day)")
	}
	if err != nil {
		return web.Errorf(http.StatusServiceUnavailable, "unavailable", "storage unavailable; retry")
	}
	return e.Blob(http.StatusOK, echo.MIMEApplicationJSON, raw)
}
