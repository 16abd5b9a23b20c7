package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/myoperator"
)

// backlogCmd measures `calltrack work`'s memory under a backlog: it publishes N call
// logs (the sample afterCall, a new call each, owner resolved) to a log topic of its
// own, then starts work against a Kylas sandbox in this process and samples work's RSS
// while it drains, printing a line every -every and the peak.
func backlogCmd(args []string) error {
	fs := flag.NewFlagSet("backlog", flag.ExitOnError)
	kafkaAddr := fs.String("kafka", envFirst("CALLTRACK_KAFKA_BROKERS", "CALLTRACK_TEST_KAFKA_BROKERS"), "Kafka brokers")
	redisAddr := fs.String("redis", envFirst("CALLTRACK_REDIS_ADDR", "CALLTRACK_TEST_REDIS_ADDR"), "redis-server")
	n := fs.Int("messages", 1000000, "call logs in the backlog")
	suffix := fs.String("topic-suffix", "", "topic suffix (default: a new one per run, so the backlog is exactly -messages)")
	dur := fs.Duration("duration", 2*time.Minute, "how long to watch work after it starts")
	every := fs.Duration("every", 10*time.Second, "print RSS this often")
	crmRate := fs.Float64("crm-rate", 5, "the tenant's CRM rate limit (requests/s): Kylas's default")
	latency := fs.Int("crm-latency-ms", 50, "latency of every CRM request")
	reuse := fs.Bool("reuse", false, "the topic already holds the backlog (-topic-suffix of an earlier run): do not publish")
	var extra stringList
	fs.Var(&extra, "env", "KEY=VALUE for work (repeatable)")
	_ = fs.Parse(args)
	if *kafkaAddr == "" || *redisAddr == "" {
		return errors.New("-kafka and -redis are required")
	}
	if *suffix == "" {
		*suffix = fmt.Sprintf(".backlog-%s", runNonce)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, _, sample, err := loadAfterCall()
	if err != nil {
		return err
	}
	topics := kafkabus.DefaultTopics().WithSuffix(*suffix)
	kc, err := kafkabus.NewClient(kafkabus.Config{Brokers: strings.Split(*kafkaAddr, ","), Partitions: 6})
	if err != nil {
		return err
	}
	if err := kc.EnsureTopics(ctx, topics.Specs()); err != nil {
		return err
	}
	if !*reuse {
		start := time.Now()
		if err := publishBacklog(ctx, kc, topics.Log, sample, *n); err != nil {
			return err
		}
		fmt.Printf("published %d call logs to %s in %s (%.0f/s)\n", *n, topics.Log, time.Since(start).Round(time.Millisecond),
			float64(*n)/time.Since(start).Seconds())
	}

	dir, err := os.MkdirTemp("", "calltrack-backlog-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	k := sandbox.NewKylas(benchKylasOptions())
	if err := k.SetFaults(sandbox.Faults{LatencyMS: *latency}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	crmSrv := &http.Server{Handler: k}
	go func() { _ = crmSrv.Serve(ln) }()
	defer crmSrv.Close()
	bin, err := buildCalltrack(root, dir)
	if err != nil {
		return err
	}
	tf, err := writeTenants(dir, "http://"+ln.Addr().String(), *crmRate)
	if err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	env := append(calltrackEnv(*kafkaAddr, *redisAddr, tf, addr, *suffix, "warn"), extra...)
	w, err := start("work", bin, []string{"work"}, env, filepath.Join(dir, "work.log"), nil)
	if err != nil {
		return err
	}
	defer w.stop()
	fmt.Printf("backlog: work started on %d call logs; CRM %g requests/s, %d ms each; %d cores, %s\n",
		*n, *crmRate, *latency, numCPU(), loadavg())
	t0 := time.Now()
	samp := startSampler(w.pid(), 250*time.Millisecond)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	deadline := time.After(*dur)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case <-tick.C:
			st, _ := readProc(w.pid())
			fmt.Printf("  %4.0fs  RSS %s  CPU %s  CRM requests %d\n", time.Since(t0).Seconds(), mib(st.RSS),
				st.CPU.Round(time.Second), k.Stats().Requests)
			if w.exited() {
				return fmt.Errorf("work exited; the end of its log:\n%s", tail(w.log, 10))
			}
		}
	}
	peak, mean, cores := samp.finish()
	fmt.Printf("work under a %d-message backlog for %s: RSS peak %s, mean %s, CPU %.2f cores; CRM requests %d; %s\n",
		*n, time.Since(t0).Round(time.Second), mib(peak), mib(mean), cores, k.Stats().Requests, loadavg())
	return nil
}

// publishBacklog writes n call logs (the sample, each a new call with its owner).
func publishBacklog(ctx context.Context, kc *kafkabus.Client, topic string, sample []byte, n int) error {
	l, err := myoperator.ParseAfterCall(benchTenant, sample, time.Now().UTC())
	if err != nil {
		return err
	}
	l.Owner = &call.Owner{CRMUserID: benchOwner}
	w := &kafka.Writer{Addr: kafka.TCP(kc.Brokers()...), Transport: kc.Transport(), Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchSize: 500, BatchBytes: 900 << 10, BatchTimeout: 20 * time.Millisecond}
	defer w.Close()
	const chunk = 20000
	batch := make([]kafka.Message, 0, chunk)
	for i := range n {
		l.CallID = fmt.Sprintf("bl.%s.%d", runNonce, i)
		l.LogID = l.CallID
		val, err := json.Marshal(l)
		if err != nil {
			return err
		}
		batch = append(batch, kafkabus.Event(topic, call.Key(benchTenant, l.CallID), "calltrack/load", benchTenant, l.CallID, val))
		if len(batch) == chunk || i == n-1 {
			if err := w.WriteMessages(ctx, batch...); err != nil {
				var we kafka.WriteErrors
				if errors.As(err, &we) && len(we) > 0 {
					err = fmt.Errorf("%d of %d messages not written: %w", we.Count(), len(batch), firstErr(we))
				}
				return fmt.Errorf("publish backlog: %w", err)
			}
			batch = batch[:0]
		}
	}
	return nil
}

func firstErr(we kafka.WriteErrors) error {
	for _, e := range we {
		if e != nil {
			return e
		}
	}
	return nil
}
