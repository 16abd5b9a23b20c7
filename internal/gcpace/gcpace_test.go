package gcpace

import (
	"context"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		live, stacks, globals, budget uint64
		want                          int
	}{
		{"serve at its maximum: the heap may grow to the budget", 8 * mib, 0, 0, 24 * mib, 200},
		{"stacks and globals count in the GC's goal", 8 * mib, 1 * mib, 1 * mib, 24 * mib, 160},
		{"half the budget live: Go's default", 12 * mib, 0, 0, 24 * mib, MinPercent},
		{"more than the budget live: never below Go's default", 40 * mib, 0, 0, 24 * mib, MinPercent},
		{"a tiny heap: capped", 1 * mib, 0, 0, 24 * mib, MaxPercent},
		{"nothing read yet", 0, 0, 0, 24 * mib, MinPercent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Percent(tc.live, tc.stacks, tc.globals, tc.budget))
		})
	}
}

// gcPercent reads GOGC (SetGCPercent is the only reader; it is set straight back).
func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

func TestRunRaisesGOGCWhileTheHeapIsSmallAndRestoresIt(t *testing.T) {
	t.Setenv("GOGC", "") // unset for this test: Run reads them
	t.Setenv("GOMEMLIMIT", "")
	before := gcPercent()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, 1<<40, time.Millisecond); close(done) }() // a test binary's heap is far under a TiB
	assert.Eventually(t, func() bool { return gcPercent() == MaxPercent }, 5*time.Second, time.Millisecond)
	cancel()
	<-done
	assert.Equal(t, before, gcPercent(), "GOGC as Run found it")
}

func TestRunLeavesAnOperatorsChoice(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, "150") // what the runtime read at start does not matter: Run reads the variable
			before := gcPercent()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			Run(ctx, 1<<40, time.Millisecond) // returns at once
			assert.NoError(t, ctx.Err(), "Run returned before its context ended")
			assert.Equal(t, before, gcPercent(), "GOGC untouched")
		})
	}
}
