package fault

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/testenv"
)

// poster sends a new call every `every` until stopped, as a steady call flow.
type poster struct {
	snd   *sender
	mu    sync.Mutex
	calls []string
	stop  chan struct{}
	close func()
	done  chan struct{}
}

func startPoster(snd *sender, prefix string, every time.Duration) *poster {
	p := &poster{snd: snd, stop: make(chan struct{}), done: make(chan struct{})}
	var once sync.Once
	p.close = func() { once.Do(func() { close(p.stop) }) }
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 0; ; i++ {
			uid := fmt.Sprintf("%s.%d.%d", prefix, time.Now().UnixNano(), i)
			p.mu.Lock()
			p.calls = append(p.calls, uid)
			p.mu.Unlock()
			snd.send(uid)
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *poster) finish() []string {
	p.close()
	<-p.done
	p.snd.wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// The broker is stopped for tens of seconds while calls keep coming: every call is
// answered 2xx (spooled), and once the broker is back every call is in the CRM once,
// under the mapped owner.
func TestKafkaStoppedWhileCallsArrive(t *testing.T) {
	needServices(t)
	s := newStack(t, stackOpts{})
	mapAgent(t, s.api.URL)
	snd := newSender(s.api.URL, 3*time.Second) // MyOperator retries 30 s apart; compressed
	p := startPoster(snd, "kafka-outage", 100*time.Millisecond)
	t.Cleanup(func() { p.finish() }) // a failed test stops sending too

	before := time.Now()
	control(t, "stop", "kafka")
	down := time.Now()
	// The outage: calls keep arriving for 20 s with the broker down (the scenario's
	// length, not a synchronisation).
	time.Sleep(20 * time.Second)
	code, ready := readyz(t, s.api.URL)
	assert.Equal(t, http.StatusOK, code, "ready while the spool takes calls: %v", ready)
	checks, _ := ready["checks"].(map[string]any)
	assert.Contains(t, checks["ingest"], "spool: kafka unreachable")
	spooled := s.app.Spool.Stats().Entries
	require.Positive(t, spooled, "calls went to the spool")
	t.Logf("broker stopped: %s", snd.answers(down, time.Now()))

	restart := time.Now()
	control(t, "start", "kafka")
	back := time.Now()
	atBack := s.app.Spool.Stats().Entries
	testenv.Eventually(t, 2*time.Minute, "the spool drains once the broker is back", s.app.Spool.Empty)
	drained := time.Now()
	calls := p.finish()
	t.Logf("calls before the stop: %s", snd.answers(before, down))
	t.Logf("during the stop and restart (%s): %s", back.Sub(down).Round(time.Second), snd.answers(down, back))
	t.Logf("spool: %d deliveries when the broker answered again (restart took %s); drained in %s (%.0f deliveries/s); %.0f drained in all",
		atBack, back.Sub(restart).Round(time.Millisecond), drained.Sub(back).Round(time.Millisecond),
		float64(atBack)/max(drained.Sub(back).Seconds(), 0.001), metric(t, s.api.URL, "calltrack_spool_drained_total"))

	assert.Empty(t, snd.gaveUp, "no call was given up by the sender")
	waitAllWritten(t, s.kylas, calls, 3*time.Minute)
	t.Logf("%d calls, each written once under owner %d", len(calls), ownerID)
}

// redis-server is stopped while calls keep coming: every call is answered 2xx (owner
// unresolved), and every call is in the CRM once, under the mapped owner, once
// redis-server is back (with its append-only file).
func TestRedisStoppedWhileCallsArrive(t *testing.T) {
	needServices(t)
	s := newStack(t, stackOpts{})
	mapAgent(t, s.api.URL)
	snd := newSender(s.api.URL, 3*time.Second)
	p := startPoster(snd, "redis-outage", 100*time.Millisecond)
	t.Cleanup(func() { p.finish() })

	before := time.Now()
	control(t, "stop", "redis")
	down := time.Now()
	time.Sleep(15 * time.Second) // the outage's length, not a synchronisation
	code, ready := readyz(t, s.api.URL)
	assert.Equal(t, http.StatusOK, code, "ready without Redis: %v", ready)
	checks, _ := ready["checks"].(map[string]any)
	assert.Contains(t, checks["redis"], "degraded")
	control(t, "start", "redis")
	back := time.Now()
	calls := p.finish()
	t.Logf("calls before the stop: %s", snd.answers(before, down))
	t.Logf("during the stop (%s): %s", back.Sub(down).Round(time.Second), snd.answers(down, back))
	assert.Empty(t, snd.gaveUp, "no call was given up by the sender")
	waitAllWritten(t, s.kylas, calls, 3*time.Minute)
	t.Logf("%d calls, each written once under owner %d", len(calls), ownerID)
}

// serve is killed -9 with calls in its spool (Kafka unreachable); started again with
// Kafka reachable, it drains the spool first and every call reaches the CRM once.
func TestServeKilledWithSpooledCalls(t *testing.T) {
	needServices(t)
	bin := filepath.Join(t.TempDir(), "calltrack")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/calltrack")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	// The writer side (and the CRM) in this process, on the same topics and Redis prefix.
	suffix := fmt.Sprintf(".kill9.%d", time.Now().UnixNano())
	w := newStack(t, stackOpts{suffix: suffix})
	mapAgent(t, w.api.URL)
	tenants := filepath.Join(t.TempDir(), "tenants.yaml")
	require.NoError(t, os.WriteFile(tenants, []byte(fmt.Sprintf(`tenants:
  acme:
    webhook_token_env: FAULT_WEBHOOK_TOKEN
    crm:
      kind: kylas
      base_url: %s
      api_key_env: FAULT_KYLAS_KEY
      bearer_token_env: FAULT_KYLAS_OAUTH
      rate_limit: 1000
`, w.crmURL)), 0o600))
	spoolDir := t.TempDir()
	serve := func(brokers string) (string, *exec.Cmd) {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort())
		cmd := exec.Command(bin, "serve")
		cmd.Env = append(os.Environ(), "CALLTRACK_HTTP_ADDR="+addr, "CALLTRACK_KAFKA_BROKERS="+brokers,
			"CALLTRACK_REDIS_ADDR="+services.redis, "CALLTRACK_REDIS_PREFIX="+w.cfg.RedisPrefix, "CALLTRACK_TOPIC_SUFFIX="+suffix,
			"CALLTRACK_TENANTS_FILE="+tenants, "CALLTRACK_ADMIN_TOKEN="+adminToken, "CALLTRACK_SPOOL_DIR="+spoolDir,
			"CALLTRACK_PUBLISH_TIMEOUT=500ms", "CALLTRACK_LOG_LEVEL=warn", "FAULT_WEBHOOK_TOKEN="+token, "FAULT_KYLAS_KEY="+crmKey, "FAULT_KYLAS_OAUTH="+crmOAuth)
		cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		base := "http://" + addr
		testenv.Eventually(t, time.Minute, "serve answers /readyz", func() bool {
			res, err := http.Get(base + "/readyz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
		return base, cmd
	}

	// 1. Kafka unreachable (nothing listens at the broker address): calls are spooled.
	base, proc := serve(fmt.Sprintf("127.0.0.1:%d", freePort()))
	snd := newSender(base, time.Second)
	calls := uids("kill9", 20)
	for _, u := range calls {
		snd.send(u)
	}
	snd.wait()
	require.Empty(t, snd.gaveUp)
	for _, a := range snd.attempts {
		require.Contains(t, a.body, `"spooled":true`)
	}
	// 2. kill -9.
	require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
	_ = proc.Wait()
	status, err := exec.Command(bin, "spool", "status", "--dir", spoolDir).CombinedOutput()
	require.NoError(t, err, "%s", status)
	assert.Contains(t, string(status), "20 waiting", "the spool survived the kill")
	assert.Empty(t, w.kylas.Records(), "nothing reached the CRM yet")

	// 3. Started again with the broker reachable: drained, written once each.
	start := time.Now()
	base, _ = serve(strings.Join(services.brokers, ","))
	waitAllWritten(t, w.kylas, calls, 2*time.Minute)
	t.Logf("restarted serve drained %d spooled calls; all written %s after the restart", len(calls), time.Since(start).Round(time.Millisecond))
	testenv.Eventually(t, 10*time.Second, "spool gauge at zero", func() bool {
		return metric(t, base, "calltrack_spool_messages") == 0
	})
}

// A full spool (Kafka unreachable) answers 503 with a clear JSON error; readiness says
// neither Kafka nor the spool can take calls.
func TestFullSpoolAnswers503(t *testing.T) {
	needServices(t)
	s := newStack(t, stackOpts{brokers: []string{fmt.Sprintf("127.0.0.1:%d", freePort())}, spoolMax: 16 << 10,
		noWriter: true, pubTimeout: 200 * time.Millisecond})
	snd := newSender(s.api.URL, 0)
	var last attempt
	accepted := 0
	for i := 0; i < 100; i++ {
		snd.send(fmt.Sprintf("full.%d.%d", time.Now().UnixNano(), i))
		snd.wait()
		last = snd.attempts[len(snd.attempts)-1]
		if last.status != http.StatusOK {
			break
		}
		require.Contains(t, last.body, `"spooled":true`)
		accepted++
	}
	require.Positive(t, accepted)
	assert.Equal(t, http.StatusServiceUnavailable, last.status)
	assert.JSONEq(t, `{"error":{"code":"spool_full","message":"Kafka is not answering and calltrack's local spool is full: the call was not taken; retry later"}}`, last.body)
	code, ready := readyz(t, s.api.URL)
	assert.Equal(t, http.StatusServiceUnavailable, code, "%v", ready)
	checks, _ := ready["checks"].(map[string]any)
	assert.Contains(t, checks["ingest"], "neither kafka")
	t.Logf("%d calls spooled before the spool (16 KiB) was full", accepted)
}
