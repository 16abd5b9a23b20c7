package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// throughputOpts configure a throughput run.
type throughputOpts struct {
	url, tenant, token, adminToken string
	startServe                     bool
	kafka, redis                   string
	conns                          int
	rate                           float64
	warmup, duration               time.Duration
	runs                           int
	baseline                       bool
	pid                            int
	wrk                            bool
	suffix, logLevel               string
}

// throughputCmd posts unique afterCalls to a serve and to the baseline server, one
// after the other in the same invocation, and prints each one's figures and the ratio.
func throughputCmd(args []string) error {
	fs := flag.NewFlagSet("throughput", flag.ExitOnError)
	o := throughputOpts{}
	fs.StringVar(&o.url, "url", "", "a running serve's base URL, e.g. http://127.0.0.1:8080 (or -start-serve)")
	fs.BoolVar(&o.startServe, "start-serve", false, "build and start `calltrack serve` on -kafka and -redis (tenant bench)")
	fs.StringVar(&o.tenant, "tenant", "", "tenant of the webhooks (-url mode)")
	fs.StringVar(&o.token, "token", "", "the tenant's webhook token (-url mode)")
	fs.StringVar(&o.adminToken, "admin-token", "", "admin token: map the sample's agent first (-url mode; optional)")
	fs.StringVar(&o.kafka, "kafka", envFirst("CALLTRACK_KAFKA_BROKERS", "CALLTRACK_TEST_KAFKA_BROKERS"), "Kafka brokers for -start-serve")
	fs.StringVar(&o.redis, "redis", envFirst("CALLTRACK_REDIS_ADDR", "CALLTRACK_TEST_REDIS_ADDR"), "redis-server the serve uses (host:port): the baseline uses it and INFO commandstats is read from it")
	fs.IntVar(&o.conns, "conns", 32, "connections (requests in flight)")
	fs.Float64Var(&o.rate, "rate", 0, "requests/s to offer (0: as fast as answers come)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "warm-up, not measured")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured time per server and run")
	fs.IntVar(&o.runs, "runs", 1, "runs (baseline and serve alternate)")
	fs.BoolVar(&o.baseline, "baseline", true, "also measure the baseline server (Echo + form/JSON parse + one Redis GET)")
	fs.IntVar(&o.pid, "pid", 0, "serve's pid for RSS/CPU (default: the process listening on -url's port)")
	fs.BoolVar(&o.wrk, "wrk", false, "also measure both with wrk (same connections, unique calls) to check this tool's figures")
	fs.StringVar(&o.suffix, "topic-suffix", ".load", "topic suffix of a serve the tool starts (keeps its events apart)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level of a serve the tool starts (its log goes to a file)")
	_ = fs.Parse(args)
	if o.redis == "" {
		return errors.New("-redis is required (the redis-server the serve uses)")
	}
	if o.url == "" && !o.startServe {
		return errors.New("give -url of a running serve (with -tenant, -token) or -start-serve")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runThroughput(ctx, o)
}

// result is one server's figures over the measured window.
type result struct {
	name            string
	sent, ok        int
	errs            map[string]int // by status or error
	lat             []time.Duration
	window          time.Duration
	cmds            map[string]int64
	rssPeak, rssAvg int64
	cores           float64
}

func (r *result) rps() float64 { return float64(r.ok) / r.window.Seconds() }

func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p)
	return r.lat[i]
}

func (r *result) String() string {
	var errs []string
	for k, v := range r.errs {
		errs = append(errs, fmt.Sprintf("%s×%d", k, v))
	}
	slices.Sort(errs)
	e := "0"
	if len(errs) > 0 {
		e = strings.Join(errs, " ")
	}
	s := fmt.Sprintf("%-9s %7.0f req/s  p50 %6.2f ms  p95 %6.2f ms  p99 %6.2f ms  errors %s  redis cmds/webhook %s",
		r.name, r.rps(), ms(r.pct(.50)), ms(r.pct(.95)), ms(r.pct(.99)), e, perRequest(r.cmds, r.ok))
	if r.rssPeak > 0 {
		s += fmt.Sprintf("  RSS peak %s (mean %s)  CPU %.2f cores", mib(r.rssPeak), mib(r.rssAvg), r.cores)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func runThroughput(ctx context.Context, o throughputOpts) error {
	root, gen, _, err := loadAfterCall()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "calltrack-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rdb := redis.NewClient(&redis.Options{Addr: o.redis})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", o.redis, err)
	}

	serveURL, servePID := strings.TrimRight(o.url, "/"), o.pid
	if o.startServe {
		if o.kafka == "" {
			return errors.New("-start-serve needs -kafka (or CALLTRACK_KAFKA_BROKERS)")
		}
		bin, err := buildCalltrack(root, dir)
		if err != nil {
			return err
		}
		tf, err := writeTenants(dir, "", 5)
		if err != nil {
			return err
		}
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		srv, err := start("serve", bin, []string{"serve"}, calltrackEnv(o.kafka, o.redis, tf, addr, o.suffix, o.logLevel),
			filepath.Join(dir, "serve.log"), nil)
		if err != nil {
			return err
		}
		defer srv.stop()
		serveURL, servePID = "http://"+addr, srv.pid()
		if err := waitReady(ctx, srv, serveURL+"/readyz", 90*time.Second); err != nil {
			return err
		}
		o.tenant, o.token, o.adminToken = benchTenant, benchToken, benchAdminToken
	}
	if o.tenant == "" || o.token == "" {
		return errors.New("-tenant and -token are required with -url")
	}
	if o.adminToken != "" {
		if err := mapAgent(serveURL, o.tenant, o.adminToken, benchOwner); err != nil {
			return fmt.Errorf("map the sample's agent: %w", err)
		}
	}
	if servePID == 0 {
		if u, err := url.Parse(serveURL); err == nil {
			servePID = pidListening(u.Host)
		}
	}

	var base *child
	baseURL := ""
	if o.baseline {
		if base, baseURL, err = startBaseline(dir, o.redis); err != nil {
			return err
		}
		defer base.stop()
	}

	mode := "max rate"
	if o.rate > 0 {
		mode = fmt.Sprintf("fixed rate %.0f/s", o.rate)
	}
	fmt.Printf("throughput: %s, %d connections, %s measured after %s warm-up, unique 951-byte afterCalls; %d cores, %s\n",
		mode, o.conns, o.duration, o.warmup, numCPU(), loadavg())
	if servePID == 0 {
		fmt.Println("(serve's pid not found: no RSS/CPU; give -pid)")
	}
	var serveRes, baseRes []*result
	for run := 1; run <= o.runs; run++ {
		if o.baseline {
			r, err := measure(ctx, "baseline", baseURL+"/webhooks/myoperator/"+benchTenant+"/aftercall", gen, rdb, base.pid(), o)
			if err != nil {
				return err
			}
			fmt.Printf("run %d  %s\n", run, r)
			baseRes = append(baseRes, r)
		}
		target := serveURL + "/webhooks/myoperator/" + o.tenant + "/aftercall?token=" + url.QueryEscape(o.token)
		r, err := measure(ctx, "serve", target, gen, rdb, servePID, o)
		if err != nil {
			return err
		}
		fmt.Printf("run %d  %s\n", run, r)
		serveRes = append(serveRes, r)
		if o.baseline {
			b := baseRes[len(baseRes)-1]
			fmt.Printf("run %d  ratio serve/baseline: req/s %.2f, p50 ×%.1f, p99 ×%.1f\n", run,
				r.rps()/b.rps(), ms(r.pct(.5))/ms(b.pct(.5)), ms(r.pct(.99))/ms(b.pct(.99)))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if o.baseline && o.runs > 1 {
		s, b := median(serveRes), median(baseRes)
		fmt.Printf("median of %d runs: serve %.0f req/s (p99 %.2f ms), baseline %.0f req/s (p99 %.2f ms): ratio %.2f\n",
			o.runs, s.rps(), ms(s.pct(.99)), b.rps(), ms(b.pct(.99)), s.rps()/b.rps())
	}
	if o.wrk {
		if err := runWrk(ctx, dir, gen, o, baseURL+"/webhooks/myoperator/"+benchTenant+"/aftercall",
			serveURL+"/webhooks/myoperator/"+o.tenant+"/aftercall?token="+url.QueryEscape(o.token)); err != nil {
			return err
		}
	}
	fmt.Printf("after: %s\n", loadavg())
	return nil
}

// median is the run with the median requests/s.
func median(rs []*result) *result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b *result) int {
		switch {
		case a.rps() < b.rps():
			return -1
		case a.rps() > b.rps():
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

var runNonce = fmt.Sprintf("%x", time.Now().UnixNano())

// callSeq numbers every call the tool posts in one invocation, so that no run repeats
// another's calls (a redelivery is cheaper to answer than a new call).
var callSeq atomic.Int64

// measure drives target with o.conns connections for o.warmup + o.duration. Latency is
// taken from when a request was due (at a fixed rate) or sent (at max rate), so a
// server that falls behind a fixed rate shows it in the percentiles.
func measure(ctx context.Context, name, target string, gen *afterCall, rdb *redis.Client, pid int, o throughputOpts) (*result, error) {
	tr := &http.Transport{MaxIdleConns: o.conns, MaxIdleConnsPerHost: o.conns, MaxConnsPerHost: o.conns,
		DisableCompression: true, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	begin := time.Now()
	first := callSeq.Load() // this run's requests are numbered on from the last run's
	measureFrom := begin.Add(o.warmup)
	end := measureFrom.Add(o.duration)
	var interval time.Duration
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) / o.rate)
	}
	res := &result{name: name, errs: map[string]int{}, window: o.duration}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		started  = make(chan struct{})
		before   map[string]int64
		samp     *sampler
		startErr error
	)
	go func() {
		// At the end of the warm-up: snapshot Redis's counters and start sampling the process.
		time.Sleep(time.Until(measureFrom))
		before, startErr = commandStats(ctx, rdb)
		samp = startSampler(pid, 200*time.Millisecond)
		close(started)
	}()
	for range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			errs := map[string]int{}
			sent, ok := 0, 0
			var last time.Time // the last measured answer
			for ctx.Err() == nil {
				n := callSeq.Add(1)
				due := time.Now()
				if interval > 0 {
					due = begin.Add(time.Duration(n-first-1) * interval)
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				if !due.Before(end) {
					break
				}
				id := fmt.Sprintf("ld.%s.%d", runNonce, n)
				if name == "baseline" {
					id = "b" + id
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(gen.body(id)))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := client.Do(req)
				status := ""
				if err != nil {
					status = "conn"
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						status = fmt.Sprint(resp.StatusCode)
					}
				}
				took := time.Since(due)
				if due.Before(measureFrom) {
					continue
				}
				last = time.Now()
				sent++
				if status != "" {
					errs[status]++
					continue
				}
				ok++
				lat = append(lat, took)
			}
			mu.Lock()
			// A server behind a fixed rate answers the window's requests after it ends:
			// requests/s is then what it achieved, not the rate offered.
			if d := last.Sub(measureFrom); d > res.window {
				res.window = d
			}
			res.sent += sent
			res.ok += ok
			res.lat = append(res.lat, lat...)
			for k, v := range errs {
				res.errs[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	<-started
	if startErr != nil {
		return nil, startErr
	}
	after, err := commandStats(ctx, rdb)
	if err != nil {
		return nil, err
	}
	res.rssPeak, res.rssAvg, res.cores = samp.finish()
	res.cmds = commandDelta(before, after)
	slices.Sort(res.lat)
	return res, nil
}
