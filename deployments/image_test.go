package deployments

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dockerfile reads deployments/Dockerfile with its continuation lines joined.
func dockerfile(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("Dockerfile")
	require.NoError(t, err)
	defer f.Close()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, `\`) {
			cur.WriteString(strings.TrimSuffix(l, `\`) + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	require.NoError(t, sc.Err())
	return lines
}

// TestImageRunsAsNonRootOnDistroless checks what an operator relies on: the final stage is
// a small base with CA certificates, and the process is not root.
func TestImageRunsAsNonRootOnDistroless(t *testing.T) {
	var froms []string
	user := ""
	for _, l := range dockerfile(t) {
		if strings.HasPrefix(l, "FROM ") {
			froms, user = append(froms, l), "" // USER is per stage
		}
		if strings.HasPrefix(l, "USER ") {
			user = strings.TrimPrefix(l, "USER ")
		}
	}
	require.GreaterOrEqual(t, len(froms), 2, "multi-stage build")
	final := froms[len(froms)-1]
	assert.Regexp(t, `gcr\.io/distroless/static-debian\d+:nonroot`, final, "the final stage is distroless static (CA certs, tzdata, no shell)")
	require.NotEmpty(t, user, "the final stage sets USER")
	assert.NotRegexp(t, `^(0|root)(:|$)`, user)
}

// TestImageVersionFromBuildArg runs the Dockerfile's own `go build` line with a VERSION
// and checks `calltrack version` prints it: the ldflags name the right variable.
func TestImageVersionFromBuildArg(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	build := ""
	for _, l := range dockerfile(t) {
		if i := strings.Index(l, "go build "); i >= 0 && strings.Contains(l, "./cmd/calltrack") {
			build = l[i:]
		}
	}
	require.NotEmpty(t, build, "the Dockerfile builds ./cmd/calltrack")
	m := regexp.MustCompile(`-ldflags "([^"]*)"`).FindStringSubmatch(build)
	require.Len(t, m, 2, "go build has -ldflags: %s", build)
	const version = "v9.8.7-test"
	ldflags := strings.ReplaceAll(m[1], "${VERSION}", version)
	require.Contains(t, ldflags, version, "ldflags use ${VERSION}")

	bin := filepath.Join(t.TempDir(), "calltrack")
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	// Built in the test's own mode (-race or not), so only the link step is new: the
	// Dockerfile's other flags (-trimpath, CGO_ENABLED=0) do not touch the version.
	args := []string{"build", "-ldflags", ldflags, "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.CommandContext(ctx, "go", append(args, "../cmd/calltrack")...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.CommandContext(ctx, bin, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "calltrack "+version, strings.TrimSpace(string(out)))
}
