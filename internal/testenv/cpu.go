package testenv

import (
	"syscall"
	"testing"
	"time"
)

// CPUTime is the CPU time (user + system) the test process has used. On a shared,
// loaded machine a benchmark's CPU time per operation is a steadier figure than its
// wall time (BENCHMARKS.md reports both).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportCPUPerOp reports the process's CPU time since start per b.N operations, as
// cpu-ns/op (garbage collection included).
func ReportCPUPerOp(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(CPUTime()-start)/float64(b.N), "cpu-ns/op")
}
