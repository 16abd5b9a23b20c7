// Package console_test drives the admin console of `calltrack dev` in a real headless
// Chromium (Debian's chromium package) with chromedp: sign-in, mapping an agent, a
// posted call becoming "written" with its owner and timeline, a dead letter's dry run
// and replay, a wrong-owner dead letter replayed with "Re-attribute" after its mapping
// was fixed, the Overview's charts, a tenant admin refused another tenant, and a form
// post without its CSRF token refused. With CALLTRACK_CONSOLE_SCREENSHOTS=<dir> it
// saves a screenshot of each page there (docs/console/ holds the committed ones).
package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/app"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/testenv"
)

const (
	sampleCall  = "n2.1596270949.2175190"
	sampleAgent = "5cd40f6556f2f124"
	failedCall  = "n2.1596270949.9999999"
	raviCall    = "n2.1596270949.3333333"
	raviAgent   = "7a1b2c3d4e5f6a7b" // the dev MyOperator user with no CRM user
)

// chromium finds the browser; CI (and CALLTRACK_TEST_REQUIRE_REAL) must have it.
func chromium(t *testing.T) string {
	for _, name := range []string{os.Getenv("CALLTRACK_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" || os.Getenv("CALLTRACK_TEST_REQUIRE_REAL") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium); the console's browser tests cannot run")
	}
	t.Skip("chromium is not installed (apt-get install chromium): browser tests not run")
	return ""
}

// browser starts a fresh headless Chromium (its own profile) and returns a tab.
func browser(t *testing.T, path string) context.Context {
	// A fresh profile; removed after the browser is gone (its helpers may still be
	// writing in it as the browser closes, so not with t.TempDir's strict cleanup).
	profile, err := os.MkdirTemp("", "calltrack-chromium-")
	require.NoError(t, err)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc(); _ = os.RemoveAll(profile) })
	require.NoError(t, chromedp.Run(ctx), "start chromium")
	return ctx
}

// run runs browser actions with a deadline.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Run(c, actions...), what)
}

// text returns the visible text of the first node matching sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	run(t, ctx, "read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// screenshot saves the page when CALLTRACK_CONSOLE_SCREENSHOTS names a directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CALLTRACK_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(&png, 100))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// eventually reloads url until cond holds on the page, or fails at the deadline.
func eventually(t *testing.T, ctx context.Context, within time.Duration, what, pageURL string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		run(t, ctx, "open "+pageURL, chromedp.Navigate(pageURL), chromedp.WaitReady("main", chromedp.ByQuery))
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within %s", what, within)
		}
		time.Sleep(300 * time.Millisecond) // between page loads; the deadline decides
	}
}

func has(ctx context.Context, sel string) bool {
	var nodes int
	_ = chromedp.Run(ctx, chromedp.Evaluate(fmt.Sprintf("document.querySelectorAll(%q).length", sel), &nodes))
	return nodes > 0
}

// startDev runs `calltrack dev` (embedded Kafka and Redis, the sandbox CRMs) until the
// test ends.
func startDev(t *testing.T) *app.Dev {
	ctx, cancel := context.WithCancel(context.Background())
	d, err := app.StartDev(ctx, app.DevOptions{Addr: "127.0.0.1:0", KafkaAddr: "127.0.0.1:0", RedisAddr: "127.0.0.1:0", LogLevel: "warn"}, io.Discard)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; d.Close() })
	testenv.Eventually(t, 60*time.Second, "dev ready", func() bool {
		res, err := http.Get(d.Base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return d
}

func TestConsoleInBrowser(t *testing.T) {
	path := chromium(t)
	d := startDev(t)
	base := d.Base
	demo := base + "/console/tenants/demo/"
	op := browser(t, path)

	// Sign-in: the console's root sends a visitor to sign in; the operator token lets in.
	run(t, op, "sign in", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#token", chromedp.ByID))
	screenshot(t, op, "sign-in")
	run(t, op, "wrong token", chromedp.SendKeys("#token", "not-a-token", chromedp.ByID), chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible(".flash.error", chromedp.ByQuery))
	assert.Contains(t, text(t, op, ".flash.error"), "not valid")
	run(t, op, "sign in", chromedp.SendKeys("#token", app.DevAdminToken, chromedp.ByID), chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible("table.grid", chromedp.ByQuery))
	assert.Equal(t, "Tenants", text(t, op, "h1"))
	assert.Contains(t, text(t, op, "table.grid"), "demo-zoho", "an operator sees every tenant")
	screenshot(t, op, "tenants")

	// The Agents page lists the users sync could not match, of both sides, with the
	// reason in words: the sample agent's email differs from CRM user 1001's only in case.
	run(t, op, "agents page", chromedp.Navigate(demo+"agents"), chromedp.WaitVisible("#agents-table", chromedp.ByID))
	agentRow := fmt.Sprintf(`tr[data-agent=%q]`, sampleAgent)
	unmatched := text(t, op, agentRow)
	assert.Contains(t, unmatched, "unmatched")
	assert.Contains(t, unmatched, "email differs only in case: Sumit.Arya@Example.com vs sumit.arya@example.com")
	assert.Contains(t, text(t, op, fmt.Sprintf(`tr[data-agent=%q]`, raviAgent)), "no user on the other side has this email")
	assert.Contains(t, text(t, op, `tr[data-crm-user="1002"]`), "no user on the other side has this email", "CRM users without an agent")

	// "Resync now" runs a user sync and shows its report.
	run(t, op, "resync", chromedp.Click(`form[action$="agents/resync"] button`, chromedp.ByQuery), chromedp.WaitVisible(".flash.ok", chromedp.ByQuery))
	assert.Contains(t, text(t, op, ".flash.ok"), "Resync done: 2 MyOperator users and 2 CRM users listed, 0 agents mapped, 4 users unmatched")
	screenshot(t, op, "agents-unmatched")

	// Its Map button fills the map form: the agent, and CRM user 1001 whose email it
	// nearly has; the searchable dropdown finds users by name too.
	run(t, op, "map button", chromedp.Click(agentRow+" a.button", chromedp.ByQuery), chromedp.WaitVisible("#map", chromedp.ByID))
	var agentField, picked string
	run(t, op, "prefilled form", chromedp.Value("#agent", &agentField, chromedp.ByID), chromedp.Value("#crm_user", &picked, chromedp.ByID))
	assert.Equal(t, sampleAgent, agentField)
	assert.Equal(t, "1001", picked, "the near match is chosen")
	run(t, op, "search CRM users", chromedp.SendKeys("#crm-search", "sumit", chromedp.ByID), chromedp.Value("#crm_user", &picked, chromedp.ByID))
	assert.Equal(t, "1001", picked, "searching 'sumit' keeps Sumit Arya")
	run(t, op, "map", chromedp.Click(`#map button[type=submit]`, chromedp.ByQuery), chromedp.WaitVisible(".flash.ok", chromedp.ByQuery))
	assert.Contains(t, text(t, op, ".flash.ok"), "mapped to CRM user 1001")
	row := text(t, op, fmt.Sprintf(`tr[data-agent=%q]`, sampleAgent))
	assert.Contains(t, row, "Sumit Arya")
	assert.Contains(t, row, "manual")
	assert.Contains(t, row, "active")
	screenshot(t, op, "agents")

	// The sample call, posted as MyOperator does, becomes "written" with its owner.
	postCall(t, base, "demo-token", nil)
	callsURL := demo + "calls"
	sampleRow := fmt.Sprintf(`tr[data-call=%q]`, sampleCall)
	eventually(t, op, 30*time.Second, "the call written on the Calls page", callsURL, func() bool {
		return has(op, sampleRow) && strings.Contains(text(t, op, sampleRow+" .badge"), "written")
	})
	assert.Contains(t, text(t, op, sampleRow+" td.owner"), "Sumit Arya")
	assert.Contains(t, text(t, op, sampleRow+" td.owner"), "1001")
	assert.Contains(t, text(t, op, sampleRow+" td.started"), "2020-07-17 07:12:09 UTC", "the call's start, from the afterCall")
	assert.Contains(t, text(t, op, sampleRow+" td.direction"), "incoming")
	assert.Equal(t, "39s", strings.TrimSpace(text(t, op, sampleRow+" td.duration")))
	assert.Contains(t, text(t, op, "#record-note"), "Kylas documents no web address", "why the record is an id, not a link")

	// Its page shows the trace as a timeline.
	run(t, op, "call page", chromedp.Click(sampleRow+" a.mono", chromedp.ByQuery), chromedp.WaitVisible("#timeline", chromedp.ByID))
	assert.Equal(t, "written", text(t, op, "#call-status"))
	assert.Contains(t, text(t, op, "#call-owner"), "Sumit Arya, CRM user 1001")
	assert.Equal(t, "incoming", text(t, op, "#call-direction"))
	assert.Equal(t, "answered", text(t, op, "#call-outcome"))
	assert.Equal(t, "39s", text(t, op, "#call-duration"))
	assert.Equal(t, "2020-07-17 07:12:09 UTC", text(t, op, "#call-started"))
	tl := text(t, op, "#timeline")
	for _, stage := range []string{"received", "published", "written"} {
		assert.Contains(t, tl, stage)
	}
	assert.Contains(t, tl, "the CRM writer created the call in the CRM", "stages in words")
	screenshot(t, op, "call")

	// A call of an agent nobody mapped (Ravi Kumar), in a department with no fallback owner
	// (dev's demo sends sales calls of unmapped agents to 1002), is kept unattributed; its
	// row and its page say which agent needs a mapping and link to the filled map form.
	postCall(t, base, "demo-token", func(p string) string {
		return strings.NewReplacer(sampleCall, raviCall, "5f114f490dbe2437", "5f114f490dbe3333", sampleAgent, raviAgent,
			"sumit.arya@example.com", "ravi.kumar@example.com", "8586848544", "9811122233", `"Sumit"`, `"Ravi Kumar"`,
			`"_dn":"sales"`, `"_dn":"support"`).Replace(p)
	})
	raviRow := fmt.Sprintf(`tr[data-call=%q]`, raviCall)
	eventually(t, op, 30*time.Second, "Ravi's call unattributed", callsURL, func() bool {
		return has(op, raviRow) && strings.Contains(text(t, op, raviRow+" .badge"), "unattributed")
	})
	assert.Contains(t, text(t, op, raviRow+" td.owner"), "none yet")
	run(t, op, "Ravi's call page", chromedp.Click(raviRow+" a.mono", chromedp.ByQuery), chromedp.WaitVisible(".flash.warn", chromedp.ByQuery))
	assert.Contains(t, text(t, op, ".flash.warn"), "MyOperator agent "+raviAgent+" has no mapping to a CRM user")
	run(t, op, "map the agent", chromedp.Click(`.flash.warn a.button`, chromedp.ByQuery), chromedp.WaitVisible("#map", chromedp.ByID),
		chromedp.Value("#agent", &agentField, chromedp.ByID))
	assert.Equal(t, raviAgent, agentField, "the map form names the call's agent")

	// A call the CRM refuses is dead-lettered; the DLQ page counts it (dry run), then
	// replays it once the CRM takes calls again.
	sandboxFaults(t, base, `{"error_rate":1,"status":400}`)
	postCall(t, base, "demo-token", func(p string) string { return strings.ReplaceAll(p, sampleCall, failedCall) })
	eventually(t, op, 30*time.Second, "the refused call dead-lettered", callsURL, func() bool {
		r := fmt.Sprintf(`tr[data-call=%q]`, failedCall)
		return has(op, r) && strings.Contains(text(t, op, r+" .badge"), "dead-lettered")
	})
	screenshot(t, op, "calls")
	sandboxFaults(t, base, `{}`)
	eventually(t, op, 30*time.Second, "the dead letter on the DLQ page", demo+"dlq", func() bool { return has(op, "#dlq-reasons") })
	assert.Contains(t, text(t, op, "#dlq-reasons"), "crm_rejected")
	assert.Contains(t, text(t, op, "#dlq-reasons"), "the CRM refused the call", "the reason in words")
	assert.Contains(t, text(t, op, "#dlq-ages"), "under an hour old")
	run(t, op, "dry run", chromedp.Click(`button[value=dry]`, chromedp.ByQuery), chromedp.WaitVisible(".flash.ok", chromedp.ByQuery))
	assert.Contains(t, text(t, op, ".flash.ok"), "would replay 1 message.")
	assert.Equal(t, "Replay 1 message", text(t, op, `button[value=replay]`), "the real replay offered with the dry run's count")
	screenshot(t, op, "dlq")
	assert.Equal(t, "dead-lettered", callStatus(t, base, failedCall), "a dry run sends nothing")
	run(t, op, "replay", chromedp.Evaluate(`window.confirm = () => true`, nil), chromedp.Click(`button[value=replay]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#replay-job[data-state=done]`, chromedp.ByQuery))
	assert.Contains(t, text(t, op, "#replay-job .state"), "replayed 1 message.")
	var width string
	run(t, op, "progress bar", chromedp.Evaluate(`document.querySelector("#replay-job .bar span").style.width`, &width))
	assert.Equal(t, "100%", width, "the progress bar full")
	testenv.Eventually(t, 30*time.Second, "the replayed call written", func() bool { return callStatus(t, base, failedCall) == "written" })

	// Overview: the hour's counts, drawn by Chart.js.
	eventually(t, op, 30*time.Second, "the Overview counting the written calls", demo+"overview", func() bool {
		return text(t, op, "#tile-written") == "2"
	})
	run(t, op, "charts", chromedp.WaitVisible(`body[data-charts=drawn]`, chromedp.ByQuery))
	assert.Contains(t, text(t, op, "#latency-now"), "median", "the latest hour's answer times in words")
	var canvases int
	run(t, op, "charts drawn", chromedp.Evaluate(`Object.keys(Chart.instances).length`, &canvases))
	assert.Equal(t, 4, canvases, "four charts")
	screenshot(t, op, "overview")

	// Setup: the webhook URLs and a connection test.
	run(t, op, "setup", chromedp.Navigate(demo+"setup"), chromedp.WaitVisible("button.copy", chromedp.ByQuery))
	assert.Contains(t, text(t, op, "main"), base+"/webhooks/myoperator/demo/aftercall")
	run(t, op, "test connection", chromedp.Click(`form[action$="test-connection"] button`, chromedp.ByQuery), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	assert.Contains(t, text(t, op, ".flash"), "Kylas: connected, 2 users")
	assert.Contains(t, text(t, op, ".flash"), "MyOperator: connected, 2 users")
	assert.Contains(t, text(t, op, "#backfill-state"), "on every 15m")
	assert.Contains(t, text(t, op, "#backfill-last"), "schedule", "the periodic backfill's last run")
	// The call policies, business hours, task due, department owners and click-to-call.
	assert.Contains(t, text(t, op, `#policy-rules tr[data-category="missed"]`), "log and a follow-up task for the owner")
	assert.Contains(t, text(t, op, `#policy-rules tr[data-category="voicemail"]`), "log (default)")
	assert.Contains(t, text(t, op, `#policy-rules tr[data-category="out_of_hours"]`), "not set: such calls follow the missed and voicemail policies")
	assert.Equal(t, "Mon 09:30–18:30; Tue 09:30–18:30; Wed 09:30–18:30; Thu 09:30–18:30; Fri 09:30–18:30; Sat 10:00–14:00; Sun closed (Asia/Kolkata)",
		text(t, op, "#business-hours"))
	assert.Contains(t, text(t, op, "#task-due"), "2h after the call ended")
	assert.Contains(t, text(t, op, "#departments"), "sales")
	assert.Contains(t, text(t, op, "#departments"), "Priya N", "the sales department's fallback owner, by name")
	assert.Contains(t, text(t, op, "#c2c-state"), "on")
	assert.Contains(t, text(t, op, "#c2c-token"), "configured")
	assert.NotContains(t, text(t, op, "main"), "demo-api-token", "the API token is never shown")
	screenshot(t, op, "setup")

	// Zoho's connection test too (tenant demo-zoho).
	run(t, op, "zoho setup", chromedp.Navigate(base+"/console/tenants/demo-zoho/setup"), chromedp.WaitVisible(`form[action$="test-connection"] button`, chromedp.ByQuery),
		chromedp.Click(`form[action$="test-connection"] button`, chromedp.ByQuery), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	assert.Contains(t, text(t, op, ".flash"), "Zoho CRM: connected, 1 user listed")
	assert.Contains(t, text(t, op, "#backfill-state"), "on every 15m", "demo-zoho has a MyOperator account of its own: backfilled too")

	// A form post without the session's CSRF token changes nothing: 403, in words.
	var csrf struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	run(t, op, "post without CSRF token", chromedp.Evaluate(`fetch("/console/tenants/demo/agents/`+sampleAgent+`/unmap", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: ""}).then(async r => ({status: r.status, body: await r.text()}))`, &csrf,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	assert.Equal(t, http.StatusForbidden, csrf.Status)
	assert.Contains(t, csrf.Body, "security token is missing or wrong")
	run(t, op, "agents still mapped", chromedp.Navigate(demo+"agents"), chromedp.WaitVisible("#agents-table", chromedp.ByID))
	assert.Contains(t, text(t, op, fmt.Sprintf(`tr[data-agent=%q]`, sampleAgent)), "active", "the refused post unmapped nothing")

	// /readyz: checks for a signed-in operator, status only for the public.
	var ready string
	run(t, op, "readyz", chromedp.Navigate(base+"/readyz"), chromedp.Text("body", &ready, chromedp.ByQuery))
	assert.Contains(t, ready, `"checks"`)
	res, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	pub, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.JSONEq(t, `{"status":"ready"}`, string(pub))

	// A tenant admin sees their tenant and is refused another.
	ta := browser(t, path)
	run(t, ta, "tenant admin signs in", chromedp.Navigate(base+"/console/"), chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", app.DevTenantAdminToken, chromedp.ByID), chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible("nav.tabs", chromedp.ByQuery))
	var loc string
	run(t, ta, "landing", chromedp.Location(&loc))
	assert.Equal(t, demo+"overview", loc, "a tenant admin lands on their tenant")
	run(t, ta, "other tenant", chromedp.Navigate(base+"/console/tenants/demo-zoho/calls"), chromedp.WaitVisible(".flash.error", chromedp.ByQuery))
	assert.Contains(t, text(t, ta, ".flash.error"), "cannot see tenant demo-zoho")
	assert.False(t, has(ta, "#calls-table"))
	screenshot(t, ta, "forbidden")
	run(t, ta, "own tenant", chromedp.Navigate(callsURL), chromedp.WaitVisible("#calls-table", chromedp.ByID))
	assert.True(t, has(ta, sampleRow))
}

// "A mapping was wrong": a call dead-lettered because the CRM refused the owner its
// agent's mapping named is replayed from the Dead letters page with "Re-attribute"
// ticked once the mapping is fixed, and lands once, under the fixed owner.
func TestConsoleReplayReattributes(t *testing.T) {
	path := chromium(t)
	d := startDev(t)
	base := d.Base
	demo := base + "/console/tenants/demo/"
	const ghostCall, ghostAgent = "n2.1596270949.4444444", "ghostagent"
	// A CRM user deleted after the agent was mapped to it (a mapping to one that does
	// not exist is refused): Kylas refuses such an owner, for good.
	d.Kylas.AddUser(sandbox.KylasUser{ID: 9999, FirstName: "Gone", LastName: "User", Email: "gone@example.com", Active: true})
	putMapping(t, base, ghostAgent, "9999")
	require.True(t, d.Kylas.RemoveUser(9999))
	postCall(t, base, "demo-token", func(p string) string {
		return strings.NewReplacer(sampleCall, ghostCall, "5f114f490dbe2437", "5f114f490dbe4444", sampleAgent, ghostAgent).Replace(p)
	})
	testenv.Eventually(t, 30*time.Second, "the call dead-lettered", func() bool { return callStatus(t, base, ghostCall) == "dead-lettered" })
	putMapping(t, base, ghostAgent, "1001") // fixed

	op := browser(t, path)
	run(t, op, "sign in", chromedp.Navigate(base+"/console/sign-in"), chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", app.DevAdminToken, chromedp.ByID), chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible("nav, table.grid", chromedp.ByQuery))
	run(t, op, "call page", chromedp.Navigate(demo+"calls/"+ghostCall), chromedp.WaitVisible(".flash.error", chromedp.ByQuery))
	assert.Contains(t, text(t, op, ".flash.error"), "If the CRM refused the owner", "the call page names a refused owner as a cause")

	run(t, op, "dead letters", chromedp.Navigate(demo+"dlq"), chromedp.WaitVisible("#reattribute", chromedp.ByID))
	assert.Contains(t, text(t, op, "#reattribute-hint"), "refused the owner")
	run(t, op, "dry run, re-attributing", chromedp.SetValue("#reason", "crm_rejected", chromedp.ByID), chromedp.Click("#reattribute", chromedp.ByID),
		chromedp.Click(`button[value=dry]`, chromedp.ByQuery), chromedp.WaitVisible(".flash.ok", chromedp.ByQuery))
	assert.Contains(t, text(t, op, ".flash.ok"), "would replay 1 message.")
	assert.Contains(t, text(t, op, ".flash.ok"), "1 call log re-attributed with today's mappings")
	var ticked bool
	run(t, op, "still ticked", chromedp.Evaluate(`document.getElementById("reattribute").checked`, &ticked))
	assert.True(t, ticked, "the box stays ticked from the dry run to the replay")
	run(t, op, "replay", chromedp.Evaluate(`window.confirm = () => true`, nil), chromedp.Click(`button[value=replay]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#replay-job[data-state=done]`, chromedp.ByQuery))
	assert.Contains(t, text(t, op, "#replay-job .state"), "replayed 1 message, re-attributed with today's mappings (1 call log)")

	testenv.Eventually(t, 30*time.Second, "the replayed call written", func() bool { return callStatus(t, base, ghostCall) == "written" })
	var recs []sandbox.KylasCallLog
	for _, r := range d.Kylas.Records() {
		if r.CallID() == ghostCall {
			recs = append(recs, r)
		}
	}
	require.Len(t, recs, 1, "one CRM record")
	assert.EqualValues(t, 1001, recs[0].Owner.ID, "owned by the fixed mapping's user")
}

// putMapping maps a MyOperator agent of tenant demo to a CRM user through the admin API.
func putMapping(t *testing.T, base, agent, crmUser string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/admin/v1/tenants/demo/mappings/"+agent, strings.NewReader(`{"crm_user_id":"`+crmUser+`"}`))
	req.Header.Set("Authorization", "Bearer "+app.DevAdminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
}

// postCall posts the sample afterCall (changed by edit) to tenant demo.
func postCall(t *testing.T, base, token string, edit func(string) string) {
	t.Helper()
	res, err := http.Get(base + "/sandbox/myoperator/samples/aftercall.json")
	require.NoError(t, err)
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	payload := string(raw)
	if edit != nil {
		payload = edit(payload)
	}
	res, err = http.PostForm(base+"/webhooks/myoperator/demo/aftercall?token="+token, url.Values{"myoperator": {payload}})
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
}

func sandboxFaults(t *testing.T, base, faults string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/sandbox/kylas/faults", strings.NewReader(faults))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
}

// callStatus reads a call's status through the admin API.
func callStatus(t *testing.T, base, callID string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/admin/v1/tenants/demo/calls/"+callID, nil)
	req.Header.Set("Authorization", "Bearer "+app.DevAdminToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var tr struct{ Status string }
	_ = json.NewDecoder(res.Body).Decode(&tr)
	return strings.ReplaceAll(tr.Status, "dead_lettered", "dead-lettered")
}
