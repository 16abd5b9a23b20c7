package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/calltrack/calltrack/internal/overview"
)

// The Overview page: the last 24 hours, hour by hour (overview's counters), drawn by
// Chart.js from JSON embedded in the page.

// Hours the Overview shows.
const overviewHours = 24

type series struct {
	Label string    `json:"label"`
	Tone  string    `json:"tone"`
	Data  []float64 `json:"data"`
}

type chartData struct {
	Hours    []string `json:"hours"`
	Calls    []series `json:"calls"`
	Latency  []series `json:"latency"`
	CRM      []series `json:"crm"`
	Webhooks []series `json:"webhooks"`
}

type overviewData struct {
	JSON                          template.JS
	Written, Unattributed, Failed int64
	Webhooks, CRMRequests         int64
	CRMErrors                     int64
	Empty                         bool
	// LatencyNow says the latest hour's answer times in words, beside the chart.
	LatencyNow string
}

// Known outcomes, in the order and tone the charts use; others follow.
var (
	callOutcomes = []struct{ key, label, tone string }{
		{"written", "written", "ok"}, {"duplicate", "duplicates skipped", "info"}, {"unattributed", "unattributed", "warn"},
		{"retry", "retries", "warn2"}, {"deferred", "deferred", "info2"}, {"dead_lettered", "dead-lettered", "bad"},
	}
	webhookOutcomes = []struct{ key, label, tone string }{
		{"accepted", "accepted", "ok"}, {"duplicate", "duplicates", "info"}, {"kept", "kept (unknown v2 type)", "info2"},
		{"rejected", "rejected (malformed)", "warn"}, {"unauthorized", "unauthorized", "warn2"}, {"in_progress", "in progress", "info2"},
		{"unavailable", "unavailable (503)", "bad"}, {"error", "error", "bad2"},
	}
	crmOutcomes = []struct{ key, label, tone string }{
		{"2xx", "answered 2xx", "ok"}, {"4xx", "refused 4xx", "warn"}, {"429", "rate limited 429", "warn2"},
		{"5xx", "failed 5xx", "bad"}, {"error", "no answer", "bad2"},
	}
)

func (c *Console) overview(e echo.Context) error {
	t := c.tenant(e)
	hs, err := overview.Read(e.Request().Context(), c.Redis, c.Prefix, t.ID, overviewHours, time.Now())
	if err != nil {
		return c.unavailable(e, "read the hourly counts", err)
	}
	var cd chartData
	d := overviewData{}
	for _, h := range hs {
		cd.Hours = append(cd.Hours, h.Start.UTC().Format("15:04"))
	}
	stack := func(get func(overview.Hour) map[string]int64, known []struct{ key, label, tone string }) []series {
		seen := map[string]bool{}
		var out []series
		add := func(key, label, tone string) {
			s := series{Label: label, Tone: tone}
			any := false
			for _, h := range hs {
				n := get(h)[key]
				any = any || n > 0
				s.Data = append(s.Data, float64(n))
			}
			if any {
				out = append(out, s)
			}
			seen[key] = true
		}
		for _, k := range known {
			add(k.key, k.label, k.tone)
		}
		var rest []string
		for _, h := range hs {
			for k := range get(h) {
				if !seen[k] {
					rest = append(rest, k)
					seen[k] = true
				}
			}
		}
		sort.Strings(rest)
		for _, k := range rest {
			add(k, k, "info")
		}
		return out
	}
	cd.Calls = stack(func(h overview.Hour) map[string]int64 { return h.Calls }, callOutcomes)
	cd.CRM = stack(func(h overview.Hour) map[string]int64 { return h.CRM }, crmOutcomes)
	cd.Webhooks = stack(func(h overview.Hour) map[string]int64 { return h.Webhooks }, webhookOutcomes)
	for _, q := range []struct {
		label, tone string
		get         func(overview.Hour) float64
	}{{"median", "ok", func(h overview.Hour) float64 { return h.P50 }}, {"95th percentile", "warn", func(h overview.Hour) float64 { return h.P95 }},
		{"99th percentile", "bad", func(h overview.Hour) float64 { return h.P99 }}} {
		s := series{Label: q.label, Tone: q.tone}
		for _, h := range hs {
			v := q.get(h)
			if math.IsNaN(v) {
				v = -1 // no webhook that hour: a gap (the page's script turns -1 into null)
			}
			s.Data = append(s.Data, math.Round(v*10)/10)
		}
		cd.Latency = append(cd.Latency, s)
	}
	for _, h := range hs {
		d.Written += h.Calls["written"]
		d.Unattributed += h.Calls["unattributed"]
		d.Failed += h.Calls["dead_lettered"]
		for _, n := range h.Webhooks {
			d.Webhooks += n
		}
		for k, n := range h.CRM {
			d.CRMRequests += n
			if k != "2xx" {
				d.CRMErrors += n
			}
		}
	}
	for i := len(hs) - 1; i >= 0; i-- {
		if h := hs[i]; !math.IsNaN(h.P50) {
			d.LatencyNow = fmt.Sprintf("Hour from %s: median %s, 95th percentile %s, 99th %s.", h.Start.UTC().Format("15:04"), ms(h.P50), ms(h.P95), ms(h.P99))
			break
		}
	}
	d.Empty = d.Written+d.Unattributed+d.Failed+d.Webhooks+d.CRMRequests == 0
	raw, _ := json.Marshal(cd)
	d.JSON = template.JS(raw)
	return c.render(e, http.StatusOK, "overview", &page{Title: "Overview", Tab: "overview", Data: d})
}

// ms is a latency in milliseconds as the Overview writes it.
func ms(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}
