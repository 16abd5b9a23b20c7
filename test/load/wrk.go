package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// runWrk measures both servers once with wrk (C, outside Go's runtime), so the tool's
// own figures can be checked against an independent load generator. The Lua script
// makes each request a new call, as the tool does.
func runWrk(ctx context.Context, dir string, gen *afterCall, o throughputOpts, baseTarget, serveTarget string) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("-wrk: wrk not found (apt-get install -y wrk)")
	}
	script := filepath.Join(dir, "unique.lua")
	lua := fmt.Sprintf(`-- each request a new call: the sample afterCall with a unique UID and _ai
local p0, p1, p2 = %q, %q, %q
local n, counter = 0, 0
function setup(thread) n = n + 1; thread:set("tid", n) end
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
function request()
  counter = counter + 1
  local id = "wrk.%s." .. tid .. "." .. counter
  return wrk.format(nil, nil, nil, p0 .. id .. p1 .. id .. p2)
end
`, gen.parts[0], gen.parts[1], gen.parts[2], runNonce)
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return err
	}
	for _, t := range []struct{ name, url string }{{"baseline", baseTarget}, {"serve", serveTarget}} {
		if t.name == "baseline" && !o.baseline {
			continue
		}
		d := o.duration + o.warmup
		cmd := exec.CommandContext(ctx, "wrk", "-t2", fmt.Sprintf("-c%d", o.conns), fmt.Sprintf("-d%ds", int(d.Seconds())),
			"--latency", "-s", script, t.url)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("wrk %s: %w\n%s", t.name, err, out)
		}
		fmt.Printf("wrk       %-9s %s\n", t.name, wrkSummary(string(out)))
	}
	return nil
}

var (
	wrkRPS  = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct  = regexp.MustCompile(`(?m)^\s+(50|90|99)%\s+(\S+)`)
	wrkNon2 = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkErrs = regexp.MustCompile(`Socket errors: .*`)
)

func wrkSummary(out string) string {
	var b strings.Builder
	if m := wrkRPS.FindStringSubmatch(out); m != nil {
		fmt.Fprintf(&b, "%s req/s", m[1])
	}
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		fmt.Fprintf(&b, "  p%s %s", m[1], m[2])
	}
	if m := wrkNon2.FindStringSubmatch(out); m != nil {
		fmt.Fprintf(&b, "  non-2xx %s", m[1])
	}
	if m := wrkErrs.FindString(out); m != "" {
		fmt.Fprintf(&b, "  %s", m)
	}
	return b.String()
}
