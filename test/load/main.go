// Command load measures calltrack from the outside, the way a user would check it. It
// only talks to loopback addresses it is given or starts itself, bounds every run in
// count and time, and stops what it started.
//
//	go run ./test/load throughput -start-serve   # serve vs the baseline, same invocation
//	go run ./test/load throughput -url http://127.0.0.1:8080 -tenant acme -token T
//	go run ./test/load e2e -start                # webhook answered → CRM written (serve + work)
//	go run ./test/load e2e -base http://127.0.0.1:8080   # the same against `calltrack dev`
//	go run ./test/load backlog -messages 1000000 # work's memory under a backlog
//	go run ./test/load resilience -calls 300     # issue 5's check against `calltrack dev`
//	go run ./test/load baseline -addr ... -redis ...     # the baseline server alone
//
// Every figure is printed with the machine's load at the time (uptime) and, for
// throughput, with its ratio to the baseline server run in the same invocation.
// BENCHMARKS.md describes the method and keeps the figures.
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Println(`usage: go run ./test/load MODE [flags]   (MODE -h: its flags)

modes:
  throughput  webhooks/s, latency, Redis commands and RSS of serve beside the baseline (BENCHMARKS.md section 1)
  e2e         webhook answered -> CRM record written, from the traces (section 2)
  backlog     work's memory under a backlog of call logs (section 4)
  baseline    the baseline server alone (Echo + parse + one Redis GET)
  resilience  calls through calltrack dev's sandboxes while they fail (the default mode)`)
		return
	}
	cmd := "resilience" // the tool's first mode; its flags still work without a name
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "throughput":
		err = throughputCmd(args)
	case "e2e":
		err = e2eCmd(args)
	case "backlog":
		err = backlogCmd(args)
	case "baseline":
		err = baselineCmd(args)
	case "resilience":
		err = resilienceCmd(args)
	default:
		err = fmt.Errorf("unknown mode %q (throughput, e2e, backlog, baseline, resilience)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}
