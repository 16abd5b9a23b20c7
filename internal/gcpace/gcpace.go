// Package gcpace lets the Go garbage collector use a heap budget. With GOGC's default
// of 100 a collection starts when the heap is twice the live heap; serve's live heap is
// ~5 MiB, so at its maximum rate it collects some twenty times a second and GC is a
// tenth of its CPU. While twice the live heap is under the budget, gcpace raises GOGC so
// the heap may grow to the budget first; once the live heap is half the budget or more,
// GOGC is 100 again, so collections are never more frequent than with GOGC 100. GOGC
// is re-read from the live heap every 100 ms: a live heap that jumps in between may grow
// to 4× its size (MaxPercent) before the next reading brings GOGC down (BENCHMARKS.md
// section 1, tenth round: GOGC 200 gave serve +8 % at its maximum; the 16 MiB default
// budget costs ~5 MiB of RSS there).
//
// Go's own GOMEMLIMIT is the other way round: it can only make collections more
// frequent, and near the limit it spends up to half the CPU collecting. With it set,
// gcpace stands aside.
package gcpace

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Bounds of the GOGC gcpace sets.
const (
	MinPercent = 100 // Go's default: gcpace never collects more often than that
	MaxPercent = 300 // a live heap that jumps between two readings grows at most 4× before the next
)

// Every is how often the live heap is read: serve at its maximum collects about as often.
const Every = 100 * time.Millisecond

// Percent is the GOGC that lets a heap of live bytes (and stack and globals, which the
// GC scans and counts in its goal) grow to budget before the next collection, within
// [MinPercent, MaxPercent].
func Percent(live, stacks, globals, budget uint64) int {
	scan := live + stacks + globals
	if scan == 0 || budget <= live {
		return MinPercent
	}
	p := (budget - live) * 100 / scan
	return int(min(max(p, MinPercent), MaxPercent))
}

// Run sets GOGC from the live heap every interval until ctx ends, then restores the
// GOGC it found. It does nothing when budget is 0 or the GOGC or GOMEMLIMIT environment
// variable is set: the operator chose.
func Run(ctx context.Context, budget uint64, every time.Duration) {
	if budget == 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	orig := debug.SetGCPercent(MinPercent)
	defer debug.SetGCPercent(orig)
	cur := MinPercent
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		metrics.Read(samples)
		if p := Percent(samples[0].Value.Uint64(), samples[1].Value.Uint64(), samples[2].Value.Uint64(), budget); p != cur {
			debug.SetGCPercent(p)
			cur = p
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
