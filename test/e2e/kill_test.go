package e2e

import (
	"fmt"
	"math/rand/v2"
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

	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// buildCalltrack builds the calltrack binary once per test run (removed by TestMain).
var buildCalltrack = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "calltrack-e2e-bin")
	if err != nil {
		return "", err
	}
	builtDir = dir
	bin := filepath.Join(dir, "calltrack")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/calltrack/calltrack/cmd/calltrack").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
})

// builtDir holds the binary buildCalltrack built, if it ran.
var builtDir string

// TestMain removes the binary after the tests: 61 MB a run, left in the temp dir by
// every run before.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// replicas runs `calltrack work` processes against a stack's Kafka, Redis and CRM
// sandboxes, and kills them.
type replicas struct {
	t    *testing.T
	bin  string
	env  []string
	dir  string
	mu   sync.Mutex
	cmds []*exec.Cmd
	runs int
}

func newReplicas(t *testing.T, s *stack, extraEnv ...string) *replicas {
	t.Helper()
	bin, err := buildCalltrack()
	require.NoError(t, err)
	dir := t.TempDir()
	file := filepath.Join(dir, "tenants.yaml")
	require.NoError(t, os.WriteFile(file, []byte(tenantsYAML(t, s)), 0o600))
	env := append(os.Environ(),
		"CALLTRACK_KAFKA_BROKERS="+strings.Join(s.env.Brokers, ","), "CALLTRACK_KAFKA_PARTITIONS=3",
		"CALLTRACK_TOPIC_SUFFIX="+s.env.Suffix, "CALLTRACK_REDIS_ADDR="+s.env.RedisAddr, "CALLTRACK_REDIS_PREFIX="+s.env.Prefix,
		"CALLTRACK_WRITER_GROUP="+s.group, "CALLTRACK_TENANTS_FILE="+file, "CALLTRACK_HTTP_ADDR=127.0.0.1:0",
		"CALLTRACK_LOG_LEVEL=warn", "CALLTRACK_SHUTDOWN_TIMEOUT=5s",
		// A killed writer's call is taken over once its lease lapses.
		"CALLTRACK_WRITER_LEASE=6s", "CALLTRACK_WRITER_SETTLE=1s",
		"E2E_WEBHOOK_TOKEN=unused", "E2E_KYLAS_KEY="+crmKey, "E2E_KYLAS_OAUTH="+kylasOAuth,
		"E2E_ZOHO_SECRET="+sandbox.ZohoClientSecret, "E2E_ZOHO_REFRESH="+sandbox.ZohoRefreshToken)
	r := &replicas{t: t, bin: bin, env: append(env, extraEnv...), dir: dir}
	t.Cleanup(r.stopAll)
	return r
}

// tenantsYAML is the tenants file of the stack's tenants (a Kylas one, and its Zoho
// one when it has it), secrets by environment variable.
func tenantsYAML(t *testing.T, s *stack) string {
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, id := range s.app.Tenants.IDs() {
		tn, _ := s.app.Tenants.Get(id)
		fmt.Fprintf(&b, "  %s:\n    webhook_token_env: E2E_WEBHOOK_TOKEN\n    crm:\n      kind: %s\n", id, tn.CRM.Kind)
		if tn.CRM.RateLimit > 0 {
			fmt.Fprintf(&b, "      rate_limit: %g\n", tn.CRM.RateLimit)
		}
		switch tn.CRM.Kind {
		case "kylas":
			fmt.Fprintf(&b, "      base_url: %s\n      api_key_env: E2E_KYLAS_KEY\n", tn.CRM.BaseURL)
			if tn.CRM.BearerToken.Reveal() != "" {
				b.WriteString("      bearer_token_env: E2E_KYLAS_OAUTH\n") // the owner-attributing sync route
			}
		case "zoho":
			fmt.Fprintf(&b, "      accounts_url: %s\n      api_domain: %s\n      client_id: %s\n      client_secret_env: E2E_ZOHO_SECRET\n      refresh_token_env: E2E_ZOHO_REFRESH\n",
				tn.CRM.Zoho.AccountsURL, tn.CRM.Zoho.APIDomain, tn.CRM.Zoho.ClientID)
		default:
			t.Fatalf("tenant %s: crm kind %q", id, tn.CRM.Kind)
		}
	}
	return b.String()
}

// start starts replica i (again).
func (r *replicas) start(i int) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.cmds) <= i {
		r.cmds = append(r.cmds, nil)
	}
	r.runs++
	logf, err := os.Create(filepath.Join(r.dir, fmt.Sprintf("work-%d-%d.log", i, r.runs)))
	require.NoError(r.t, err)
	cmd := exec.Command(r.bin, "work")
	cmd.Env, cmd.Stdout, cmd.Stderr = r.env, logf, logf
	require.NoError(r.t, cmd.Start())
	go func() { _ = cmd.Wait(); _ = logf.Close() }()
	r.cmds[i] = cmd
}

// kill sends SIGKILL to replica i: no drain, no commit, no lease released.
func (r *replicas) kill(i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.cmds[i]; c != nil && c.Process != nil {
		_ = c.Process.Signal(syscall.SIGKILL)
	}
	r.cmds[i] = nil
}

func (r *replicas) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.cmds {
		if c != nil && c.Process != nil {
			_ = c.Process.Signal(syscall.SIGKILL)
		}
		r.cmds[i] = nil
	}
	if r.t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(r.dir, "work-*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			r.t.Logf("%s (last lines):\n%s", filepath.Base(l), strings.Join(lines, "\n"))
		}
	}
}

// Several `calltrack work` replicas on a real broker and redis-server, killed -9 again
// and again while calls for a Kylas and a Zoho tenant stream in: every call ends in
// its CRM exactly once, owned by its agent's user.
func TestWorkReplicasKilledMidStream(t *testing.T) {
	s := newStack(t, stackOpts{noWriter: true, second: "zoho", kylasLimit: 200})
	s.mapAgent(sumit.id, "1001", sumit.email)
	r := s.do(adminReq(s, http.MethodPut, "beta", "/mappings/"+priya.id, `{"crm_user_id":"5725767000000411002"}`))
	require.Equal(t, http.StatusOK, r.Status, "%v", r.Body)
	// Slow CRMs keep creates in flight, so kills land between a create and its result.
	require.NoError(t, s.kylas.SetFaults(sandbox.Faults{LatencyMS: 150}))
	require.NoError(t, s.zohoB.SetFaults(sandbox.Faults{LatencyMS: 150}))

	const n = 3
	reps := newReplicas(t, s)
	for i := range n {
		reps.start(i)
	}

	const perTenant = 100
	// Replicas die mid-stream: a kill every 2-3 s while the calls arrive and a little
	// after, each killed replica started again at once.
	const wantKills = 6
	kills := 0
	killsDone := make(chan struct{})
	go func() {
		defer close(killsDone)
		for kills < wantKills {
			time.Sleep(time.Duration(2000+rand.IntN(1000)) * time.Millisecond)
			i := rand.IntN(n)
			reps.kill(i)
			kills++
			reps.start(i)
		}
	}()
	// Calls arrive at a steady pace (ten a second per tenant) while replicas die.
	pace := time.NewTicker(100 * time.Millisecond)
	defer pace.Stop()
	kylasCalls, zohoCalls := s.postBothTenants(perTenant, pace.C)
	<-killsDone
	t.Logf("%d kills", kills)
	s.waitAllWritten(map[string][]string{tenantID: kylasCalls, "beta": zohoCalls}, 150*time.Second)
	reps.stopAll() // nothing in flight while the records are counted

	s.assertOncePerCall(kylasCalls, zohoCalls)
	assert.Len(t, s.kylas.Records(), perTenant, "no duplicates in Kylas")
	assert.Len(t, s.zohoB.Records(), perTenant, "no duplicates in Zoho")
	assert.Zero(t, s.kylas.Stats().Duplicates)
	assert.Zero(t, s.zohoB.Stats().Duplicates)
	t.Logf("kylas: %+v", s.kylas.Stats())
	t.Logf("zoho: %+v", s.zohoB.Stats())
}
