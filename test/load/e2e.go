package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/trace"
)

type e2eOpts struct {
	base, tenant, token, adminToken string
	startAll                        bool
	kafka, redis, suffix, logLevel  string
	calls, warmup                   int
	uniqueCallers                   bool
	gap                             time.Duration
	latency                         int
	env                             []string
}

// e2eCmd posts calls one at a time and reports, from each call's trace, the time from
// the webhook's answer to the CRM record being written (the trace's "written" stage).
func e2eCmd(args []string) error {
	fs := flag.NewFlagSet("e2e", flag.ExitOnError)
	o := e2eOpts{}
	fs.StringVar(&o.base, "base", "", "a running `calltrack dev` (tenant demo, Kylas sandbox at /sandbox/kylas)")
	fs.BoolVar(&o.startAll, "start", false, "build and start serve + work on -kafka/-redis, with a Kylas sandbox in this process")
	fs.StringVar(&o.kafka, "kafka", envFirst("CALLTRACK_KAFKA_BROKERS", "CALLTRACK_TEST_KAFKA_BROKERS"), "Kafka brokers (-start)")
	fs.StringVar(&o.redis, "redis", envFirst("CALLTRACK_REDIS_ADDR", "CALLTRACK_TEST_REDIS_ADDR"), "redis-server (-start)")
	fs.StringVar(&o.suffix, "topic-suffix", "", "topic suffix, writer group and Redis prefix of the processes -start runs (default: new ones each run — a new deployment's first calls, as a user's first run sees them)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level of the processes -start runs")
	fs.IntVar(&o.calls, "calls", 40, "calls to post, one at a time")
	fs.IntVar(&o.warmup, "warmup-calls", 2, "calls posted first and not counted (the writer joins its group; the CRM search cache fills)")
	fs.DurationVar(&o.gap, "gap", 250*time.Millisecond, "pause between one call written and the next posted")
	fs.BoolVar(&o.uniqueCallers, "unique-callers", false, "a new caller number each call (the CRM's lead/contact search is not cached)")
	fs.IntVar(&o.latency, "crm-latency-ms", 50, "latency of every CRM request (the sandbox's latency_ms)")
	var extra stringList
	fs.Var(&extra, "env", "KEY=VALUE for the processes -start runs (repeatable): try a setting")
	_ = fs.Parse(args)
	o.env = extra
	if o.base == "" && !o.startAll {
		return errors.New("give -base of a running `calltrack dev`, or -start")
	}
	if o.startAll && (o.kafka == "" || o.redis == "") {
		return errors.New("-start needs -kafka and -redis (or CALLTRACK_KAFKA_BROKERS, CALLTRACK_REDIS_ADDR)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runE2E(ctx, o)
}

type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runE2E(ctx context.Context, o e2eOpts) error {
	root, gen, sample, err := loadAfterCall()
	if err != nil {
		return err
	}
	base, crmBase := o.base, o.base+"/sandbox/kylas"
	o.tenant, o.token, o.adminToken = "demo", "demo-token", "demo-admin"
	where := "calltrack dev at " + o.base
	if o.startAll && o.suffix == "" {
		o.suffix = ".e2e-" + runNonce
	}
	if o.startAll {
		dir, err := os.MkdirTemp("", "calltrack-e2e-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		k := sandbox.NewKylas(benchKylasOptions())
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		crmLog = &requestLog{}
		crmSrv := &http.Server{Handler: crmLog.wrap(k)}
		go func() { _ = crmSrv.Serve(ln) }()
		defer crmSrv.Close()
		crmBase = "http://" + ln.Addr().String()
		stopAll, b, err := startServeWork(ctx, root, dir, crmBase, o)
		if err != nil {
			return err
		}
		defer stopAll()
		base = b
		o.tenant, o.token, o.adminToken = benchTenant, benchToken, benchAdminToken
		where = fmt.Sprintf("serve + work on Kafka %s and Redis %s (logs in %s)", o.kafka, o.redis, dir)
	}
	if err := mapAgent(base, o.tenant, o.adminToken, benchOwner); err != nil {
		return fmt.Errorf("map the sample's agent: %w", err)
	}
	if err := send(http.MethodPut, crmBase+"/faults", "", map[string]any{"latency_ms": o.latency}, nil); err != nil {
		return fmt.Errorf("set the CRM sandbox latency: %w", err)
	}
	defer func() { _ = send(http.MethodPut, crmBase+"/faults", "", map[string]any{}, nil) }()

	callers := "the sample's caller (its CRM search cached after the first)"
	if o.uniqueCallers {
		callers = "a new caller each (CRM search not cached)"
	}
	fmt.Printf("e2e: %d calls one at a time to %s, %s; CRM latency %d ms; %d cores, %s\n", o.calls, where, callers, o.latency, numCPU(), loadavg())
	target := base + "/webhooks/myoperator/" + o.tenant + "/aftercall?token=" + url.QueryEscape(o.token)
	var total, toWritten, answer, toCRM, inCRM, afterCRM []time.Duration
	crmRequests := 0
	failed := 0
	var steps string // the CRM requests of the last call, in order
	for i := range o.warmup + o.calls {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		id := fmt.Sprintf("e2e.%s.%d", runNonce, i)
		t0 := time.Now()
		body := gen.body(id)
		if o.uniqueCallers {
			caller := fmt.Sprintf("97%08d", (time.Now().UnixNano()/1000+int64(i))%100000000)
			body = []byte("myoperator=" + url.QueryEscape(strings.NewReplacer(sampleUID, id, sampleAI, `"_ai":"`+id+`"`,
				sampleCaller, caller).Replace(string(sample))))
		}
		res, err := http.Post(target, "application/x-www-form-urlencoded", bytesReader(body))
		if err != nil {
			return err
		}
		res.Body.Close()
		answered := time.Now()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("webhook %s: HTTP %d", id, res.StatusCode)
		}
		tr, err := waitWritten(ctx, base, o.tenant, o.adminToken, id, 60*time.Second)
		if err != nil {
			failed++
			fmt.Printf("call %s: %v\n", id, err)
			continue
		}
		written, published := stageAt(tr, trace.StatusWritten), stageAt(tr, trace.StatusPublished)
		if i < o.warmup {
			continue
		}
		// From 'received': the writer may have the message (and begin its requests) before
		// ingest's 'published' stage, recorded after Kafka's ack, is written.
		if reqs := crmLog.between(stageAt(tr, trace.StatusReceived), written); len(reqs) > 0 && !published.IsZero() {
			// Where the time went: Kafka hop and the writer's work before the CRM, the CRM
			// requests (rate limiter waits included), the writer's work after them.
			toCRM = append(toCRM, reqs[0].start.Sub(published))
			inCRM = append(inCRM, reqs[len(reqs)-1].end.Sub(reqs[0].start))
			afterCRM = append(afterCRM, written.Sub(reqs[len(reqs)-1].end))
			crmRequests += len(reqs)
			steps = stepsOf(reqs)
		}
		answer = append(answer, answered.Sub(t0))
		total = append(total, written.Sub(answered))
		if !published.IsZero() {
			toWritten = append(toWritten, written.Sub(published))
		}
		if o.gap > 0 {
			time.Sleep(o.gap)
		}
	}
	fmt.Printf("webhook answered → CRM record written: %s\n", dist(total))
	fmt.Printf("  trace 'published' → 'written':       %s\n", dist(toWritten))
	fmt.Printf("  webhook answer time (client):         %s\n", dist(answer))
	if len(toCRM) > 0 {
		fmt.Printf("  'published' → first CRM request:      %s\n", dist(toCRM))
		fmt.Printf("  first → last CRM response:            %s  (%.1f requests a call)\n", dist(inCRM), float64(crmRequests)/float64(len(toCRM)))
		fmt.Printf("  last CRM response → 'written':        %s\n", dist(afterCRM))
		fmt.Printf("  the last call's CRM requests:         %s\n", steps)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d calls not written in time", failed, o.calls)
	}
	fmt.Printf("after: %s\n", loadavg())
	return nil
}

// startServeWork builds calltrack and starts serve and work writing to crmBase.
func startServeWork(ctx context.Context, root, dir, crmBase string, o e2eOpts) (func(), string, error) {
	bin, err := buildCalltrack(root, dir)
	if err != nil {
		return nil, "", err
	}
	// A CRM rate limit far above what one-at-a-time calls need: it is not what is measured.
	tf, err := writeTenants(dir, crmBase, 1000)
	if err != nil {
		return nil, "", err
	}
	serveAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	workAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	var kids []*child
	stopAll := func() {
		for i := len(kids) - 1; i >= 0; i-- {
			kids[i].stop()
		}
	}
	for _, p := range []struct{ role, addr string }{{"serve", serveAddr}, {"work", workAddr}} {
		env := append(calltrackEnv(o.kafka, o.redis, tf, p.addr, o.suffix, o.logLevel), o.env...)
		c, err := start(p.role, bin, []string{p.role}, env, filepath.Join(dir, p.role+".log"), nil)
		if err != nil {
			stopAll()
			return nil, "", err
		}
		kids = append(kids, c)
		if err := waitReady(ctx, c, "http://"+p.addr+"/readyz", 90*time.Second); err != nil {
			stopAll()
			return nil, "", err
		}
	}
	return stopAll, "http://" + serveAddr, nil
}

// waitWritten polls a call's trace until it has a "written" stage.
func waitWritten(ctx context.Context, base, tenant, adminToken, id string, timeout time.Duration) (*trace.Trace, error) {
	deadline := time.Now().Add(timeout)
	for {
		var tr trace.Trace
		err := send(http.MethodGet, base+"/admin/v1/tenants/"+tenant+"/calls/"+id, adminToken, nil, &tr)
		if err == nil && !stageAt(&tr, trace.StatusWritten).IsZero() {
			return &tr, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("not written after %s (status %s)", timeout, tr.Status)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func stageAt(t *trace.Trace, stage string) time.Time {
	for _, s := range t.Stages {
		if s.Stage == stage {
			return s.At
		}
	}
	return time.Time{}
}

// stepsOf renders a call's CRM requests as start offset +duration each, so requests
// made one after another show apart from those made together.
func stepsOf(reqs []crmRequest) string {
	parts := make([]string, len(reqs))
	for i, r := range reqs {
		parts[i] = fmt.Sprintf("@%.0f %s (%.0f ms)", ms(r.start.Sub(reqs[0].start)), r.what, ms(r.end.Sub(r.start)))
	}
	return strings.Join(parts, ", ")
}

// dist renders p50/p95/p99/max of ds.
func dist(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	p := func(q float64) float64 { return ms(s[int(float64(len(s)-1)*q)]) }
	return fmt.Sprintf("p50 %.0f ms  p95 %.0f ms  p99 %.0f ms  max %.0f ms  (n=%d)", p(.5), p(.95), p(.99), ms(s[len(s)-1]), len(s))
}

// requestLog notes when each CRM request came and was answered (-start mode, where the
// sandbox runs in this process), to split a call's end-to-end time.
type requestLog struct {
	mu   sync.Mutex
	reqs []crmRequest
}

type crmRequest struct {
	start, end time.Time
	what       string
}

var crmLog *requestLog

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		l.mu.Lock()
		l.reqs = append(l.reqs, crmRequest{start: start, end: time.Now(), what: r.Method + " " + r.URL.Path})
		l.mu.Unlock()
	})
}

// between returns the adapter requests (not the tool's own control calls) that started
// in [from, to].
func (l *requestLog) between(from, to time.Time) []crmRequest {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []crmRequest
	for _, r := range l.reqs {
		inWindow := !r.start.Before(from) && !r.start.After(to)
		if inWindow && (strings.HasPrefix(r.what, "POST /v1/") || strings.HasPrefix(r.what, "PUT /v1/")) {
			out = append(out, r)
		}
	}
	return out
}
