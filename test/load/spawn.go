package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// moduleRoot is the calltrack checkout the tool runs in (where go.mod is).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/calltrack/calltrack") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the load tool inside the calltrack checkout (go.mod not found)")
		}
		dir = parent
	}
}

// afterCall makes the 951-byte sample afterCall unique per request: its call UID and
// log id (_ai) are replaced, so every request is a new call, not a redelivery.
type afterCall struct{ parts [3]string } // form-encoded: parts[0] id parts[1] id parts[2]

const (
	sampleUID = "n2.1596270949.2175190"
	sampleAI  = `"_ai":"5f114f490dbe2437"`
	// The sample's caller, as _cr (national) and in _cl (+91...).
	sampleCaller = "9711636496"
	// The sample's agent (mapped by the tool so that attribution finds an owner).
	sampleAgent      = "5cd40f6556f2f124"
	sampleAgentEmail = "sumit.arya@example.com"
)

// loadAfterCall finds the checkout and reads its sample afterCall: the checkout's
// root, the generator of unique calls, and the sample as it is.
func loadAfterCall() (string, *afterCall, []byte, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", nil, nil, err
	}
	raw, err := os.ReadFile(filepath.Join(root, "internal/app/samples/aftercall_answered.json"))
	if err != nil {
		return "", nil, nil, err
	}
	s := strings.TrimSpace(string(raw))
	// The form body is myoperator=<query-escaped JSON>; ids are [A-Za-z0-9.], unchanged
	// by escaping, so they can be spliced into the escaped text.
	a := strings.Index(s, sampleAI)
	u := strings.Index(s, sampleUID)
	if a < 0 || u < 0 || a > u {
		return "", nil, nil, errors.New("sample afterCall changed: _ai or the UID not where expected")
	}
	p0 := s[:a] + `"_ai":"`
	p1 := `"` + s[a+len(sampleAI):u]
	p2 := s[u+len(sampleUID):]
	esc := func(x string) string { return url.QueryEscape(x) }
	return root, &afterCall{parts: [3]string{"myoperator=" + esc(p0), esc(p1), esc(p2)}}, []byte(s), nil
}

// body is the form body of a call with this id (as UID and _ai).
func (a *afterCall) body(id string) []byte {
	b := make([]byte, 0, len(a.parts[0])+len(a.parts[1])+len(a.parts[2])+2*len(id))
	b = append(b, a.parts[0]...)
	b = append(b, id...)
	b = append(b, a.parts[1]...)
	b = append(b, id...)
	return append(b, a.parts[2]...)
}

// child is a process the tool started; stop ends it (SIGTERM, then SIGKILL).
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// start runs bin with args and env (added to the tool's), output to logPath.
func start(name, bin string, args, env []string, logPath string, stdout io.Writer) (*child, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = lf
	cmd.Stdout = lf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); lf.Close(); close(c.done) }()
	return c, nil
}

// buildCalltrack builds cmd/calltrack into dir (a real binary, as deployed).
func buildCalltrack(root, dir string) (string, error) {
	bin := filepath.Join(dir, "calltrack")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/calltrack")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/calltrack: %w\n%s", err, out)
	}
	return bin, nil
}

// startBaseline runs this tool's baseline server as a child process.
func startBaseline(dir, redisAddr string) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	pr, pw := io.Pipe()
	c, err := start("baseline", self, []string{"baseline", "-addr", "127.0.0.1:0", "-redis", redisAddr}, nil,
		filepath.Join(dir, "baseline.log"), pw)
	if err != nil {
		return nil, "", err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return c, "http://" + a, nil
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, "", errors.New("baseline server did not start (see baseline.log)")
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls url until it answers 2xx, the child exits, or the timeout passes.
func waitReady(ctx context.Context, c *child, u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		res, err := http.Get(u)
		if err == nil {
			res.Body.Close()
			if res.StatusCode/100 == 2 {
				return nil
			}
		}
		if c != nil && c.exited() {
			return fmt.Errorf("%s exited before it was ready; the end of its log:\n%s", c.name, tail(c.log, 10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (log: %s)", u, timeout, c.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// benchTenant is the tenant the tool configures when it starts calltrack itself.
const (
	benchTenant     = "bench"
	benchToken      = "bench-token"
	benchAdminToken = "bench-admin"
	benchCRMKey     = "bench-crm-key"
	benchOwner      = "1001"
)

// writeTenants writes a tenants file for the bench tenant, writing to a Kylas at crmURL
// with the given CRM rate limit (requests/s).
func writeTenants(dir, crmURL string, rateLimit float64) (string, error) {
	if crmURL == "" {
		crmURL = "http://127.0.0.1:9/unused"
	}
	p := filepath.Join(dir, "tenants.yaml")
	y := fmt.Sprintf(`tenants:
  %s:
    webhook_token_env: BENCH_WEBHOOK_TOKEN
    default_country: "91"
    crm:
      kind: kylas
      base_url: %s
      api_key_env: BENCH_KYLAS_API_KEY
      rate_limit: %g
`, benchTenant, crmURL, rateLimit)
	return p, os.WriteFile(p, []byte(y), 0o600)
}

// calltrackEnv is the environment of a serve or work the tool starts.
func calltrackEnv(kafka, redisAddr, tenants, httpAddr, suffix, logLevel string) []string {
	// Each process its own spool, beside the run's tenants file: one process per spool
	// directory, and none left from an earlier run to drain into this one.
	spool := filepath.Join(filepath.Dir(tenants), "spool-"+strings.NewReplacer(":", "-", ".", "-").Replace(httpAddr))
	// Redis keys of the topics' own (by the suffix): the call state goes with the
	// writers' group. Another group's state under the same keys, or this group's
	// offsets with no state, reads as a Redis that lost its data, and every call of the
	// next 5 minutes is looked up in the CRM first (3 s each: the writer's epoch check).
	prefix := "ct" + suffix
	return []string{
		"CALLTRACK_SPOOL_DIR=" + spool, "CALLTRACK_REDIS_PREFIX=" + prefix,
		"CALLTRACK_KAFKA_BROKERS=" + kafka, "CALLTRACK_REDIS_ADDR=" + redisAddr,
		"CALLTRACK_TENANTS_FILE=" + tenants, "CALLTRACK_ADMIN_TOKEN=" + benchAdminToken,
		"CALLTRACK_HTTP_ADDR=" + httpAddr, "CALLTRACK_TOPIC_SUFFIX=" + suffix, "CALLTRACK_LOG_LEVEL=" + logLevel,
		"CALLTRACK_WRITER_GROUP=calltrack-writer" + suffix,
		"BENCH_WEBHOOK_TOKEN=" + benchToken, "BENCH_KYLAS_API_KEY=" + benchCRMKey,
	}
}

// mapAgent maps the sample's agent to owner on tenant through the admin API.
func mapAgent(base, tenant, adminToken, owner string) error {
	return send(http.MethodPut, base+"/admin/v1/tenants/"+tenant+"/mappings/"+sampleAgent, adminToken,
		map[string]any{"crm_user_id": owner, "email": sampleAgentEmail, "phones": []string{"+918586848544"}}, nil)
}

func envFirst(keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// benchKylasOptions configure the Kylas sandbox of a benchmark: its api-key and the
// user the calls are owned by (benchOwner, the key's own), since the sandbox — like
// Kylas — refuses a record owned by no user.
func benchKylasOptions() sandbox.KylasOptions {
	id, _ := strconv.ParseInt(benchOwner, 10, 64)
	return sandbox.KylasOptions{APIKey: benchCRMKey, KeyUserID: id,
		Users: []sandbox.KylasUser{{ID: id, FirstName: "Sumit", LastName: "Arya", Email: "sumit.arya@example.com", Active: true}}}
}
