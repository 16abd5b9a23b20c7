package deployments

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/calltrack/calltrack/internal/app"
)

var update = flag.Bool("update", false, "rewrite monitoring/prometheusrule.yaml from calltrack.rules.yaml")

// registeredNames lists every metric name calltrack's registry holds, built the way the
// app builds it: `calltrack dev` wires every role (ingest, admin, writer, sync) onto one
// registry. The registry does not list its collectors, and a vector with no series yet
// does not show in Gather, so the names are read from its index of registered names.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := app.StartDev(ctx, app.DevOptions{Addr: "127.0.0.1:0", KafkaAddr: "127.0.0.1:0", RedisAddr: "127.0.0.1:0", LogLevel: "error"}, io.Discard)
	require.NoError(t, err)
	defer d.Close()
	names := namesOf(t, d.App.Metrics.Registry)
	require.Contains(t, names, "calltrack_webhooks_total", "the index read is the registry's")
	return names
}

func namesOf(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	idx := reflect.ValueOf(reg).Elem().FieldByName("dimHashesByName")
	require.True(t, idx.IsValid(), "prometheus.Registry has no dimHashesByName (client_golang changed): update namesOf")
	names := map[string]bool{}
	for _, k := range idx.MapKeys() {
		names[k.String()] = true
	}
	return names
}

// exists says whether a query may name metric: registered, a histogram's or summary's
// series of a registered one, or what Prometheus itself makes.
func exists(names map[string]bool, metric string) bool {
	if names[metric] || metric == "ALERTS" || metric == "ALERTS_FOR_STATE" || metric == "up" {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(metric, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// metricsIn returns the metric names a PromQL expression selects.
func metricsIn(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	require.NoError(t, err, "%s: %s", where, expr)
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" {
					name = m.Value
				}
			}
			require.NotEmpty(t, name, "%s: a selector without a metric name: %s", where, expr)
			out = append(out, name)
		}
		return nil
	})
	return out
}

// queries collects every PromQL query of the dashboard, the alert rules and the
// autoscaler's adapter rules, by where they are.
func queries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	var dash any
	raw, err := os.ReadFile("monitoring/grafana/calltrack.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &dash))
	grafanaVars := regexp.MustCompile(`\$__(rate_interval|interval|range)`)
	labelValues := regexp.MustCompile(`^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				p := path + "." + k
				if s, ok := c.(string); ok && k == "expr" {
					out["dashboard"+p] = grafanaVars.ReplaceAllString(s, "5m") // durations to parse
				}
				if s, ok := c.(string); ok && k == "query" && strings.HasPrefix(s, "label_values(") {
					m := labelValues.FindStringSubmatch(s)
					require.NotNil(t, m, "dashboard%s: %s", p, s)
					out["dashboard"+p] = m[1]
				}
				walk(p, c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("", dash)

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "monitoring/calltrack.rules.yaml", &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["rule "+r.Alert+r.Record] = r.Expr
		}
	}
	var adapter struct {
		Rules []struct {
			SeriesQuery string `yaml:"seriesQuery"`
		} `yaml:"rules"`
		ExternalRules []struct {
			SeriesQuery string `yaml:"seriesQuery"`
		} `yaml:"externalRules"`
	}
	readYAML(t, "monitoring/prometheus-adapter.yaml", &adapter)
	for i, r := range append(adapter.Rules, adapter.ExternalRules...) {
		out[fmt.Sprintf("prometheus-adapter rule %d", i)] = r.SeriesQuery
	}
	return out
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, v), path)
}

// Every metric the dashboard, the alerts and the autoscaler's adapter name is one
// calltrack exports: a renamed or missing metric fails here, not on a dark dashboard.
func TestMonitoringNamesOnlyRegisteredMetrics(t *testing.T) {
	names := registeredNames(t)
	qs := queries(t)
	require.Greater(t, len(qs), 20, "the dashboard and rules were read")
	var missing []string
	used := map[string]bool{}
	for where, q := range qs {
		for _, m := range metricsIn(t, where, q) {
			used[m] = true
			if !exists(names, m) {
				missing = append(missing, where+": "+m)
			}
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "metrics named but not registered")
	for _, want := range []string{"calltrack_consumer_lag", "calltrack_topic_appended_total", "calltrack_user_sync_runs_total",
		"calltrack_webhooks_total", "calltrack_writer_outcomes_total", "calltrack_crm_requests_total", "calltrack_popup_lag_seconds_bucket"} {
		assert.True(t, used[want], "%s is on the dashboard or in a rule", want)
	}
}

// The check itself fails on a name calltrack does not export.
func TestMonitoringNameCheckRefusesUnknown(t *testing.T) {
	names := map[string]bool{"calltrack_webhook_duration_seconds": true, "calltrack_webhooks_total": true}
	assert.True(t, exists(names, "calltrack_webhook_duration_seconds_bucket"))
	assert.False(t, exists(names, "calltrack_webhook_latency_seconds_bucket"))
	assert.Equal(t, []string{"calltrack_webhooks_total", "calltrack_nope"},
		metricsIn(t, "test", `sum(rate(calltrack_webhooks_total[5m])) / sum({__name__="calltrack_nope"})`))
}

// The PrometheusRule carries exactly the rules promtool checked.
func TestPrometheusRuleIsTheRulesFile(t *testing.T) {
	var file, cr map[string]any
	readYAML(t, "monitoring/calltrack.rules.yaml", &file)
	readYAML(t, "monitoring/prometheusrule.yaml", &cr)
	if *update {
		raw, err := os.ReadFile("monitoring/calltrack.rules.yaml")
		require.NoError(t, err)
		cur, err := os.ReadFile("monitoring/prometheusrule.yaml")
		require.NoError(t, err)
		head := string(cur[:strings.Index(string(cur), "spec:\n")+len("spec:\n")])
		body := string(raw[strings.Index(string(raw), "groups:"):])
		var b strings.Builder
		for _, l := range strings.SplitAfter(body, "\n") {
			if strings.TrimSpace(l) != "" {
				b.WriteString("  ")
			}
			b.WriteString(l)
		}
		require.NoError(t, os.WriteFile("monitoring/prometheusrule.yaml", []byte(head+b.String()), 0o644))
		readYAML(t, "monitoring/prometheusrule.yaml", &cr)
	}
	spec, _ := cr["spec"].(map[string]any)
	assert.Equal(t, file["groups"], spec["groups"], "prometheusrule.yaml differs from calltrack.rules.yaml: go test ./deployments -run TestPrometheusRuleIsTheRulesFile -update")
}

// Each alert links a runbook section that exists.
func TestAlertsLinkRunbookSections(t *testing.T) {
	raw, err := os.ReadFile("../docs/runbook.md")
	require.NoError(t, err)
	anchors := map[string]bool{}
	for _, l := range strings.Split(string(raw), "\n") {
		if h, ok := strings.CutPrefix(l, "## "); ok {
			anchors[slug(h)] = true
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string
				Annotations map[string]string
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "monitoring/calltrack.rules.yaml", &rules)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			u := r.Annotations["runbook_url"]
			_, anchor, ok := strings.Cut(u, "docs/runbook.md#")
			if assert.True(t, ok, "%s: runbook_url %q is not a docs/runbook.md section", r.Alert, u) {
				assert.True(t, anchors[anchor], "%s: docs/runbook.md has no section #%s (has %v)", r.Alert, anchor, keys(anchors))
			}
			n++
		}
	}
	assert.GreaterOrEqual(t, n, 5)
}

// slug is GitHub's anchor of a heading.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
