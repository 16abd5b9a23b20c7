package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procStat is what /proc says of a process: resident memory and CPU time used.
type procStat struct {
	RSS, HWM int64         // bytes: resident now, and the peak the kernel saw
	CPU      time.Duration // user + system
}

func readProc(pid int) (procStat, error) {
	var st procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			st.RSS = n << 10
		case "VmHWM":
			st.HWM = n << 10
		}
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the command name (which may hold spaces) start at state (field 3);
	// utime and stime are fields 14 and 15, in clock ticks (100/s on Linux).
	if i := bytes.LastIndexByte(b, ')'); i > 0 {
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			st.CPU = time.Duration(u+s) * 10 * time.Millisecond
		}
	}
	return st, nil
}

// sampler reads a process's RSS periodically while a run lasts.
type sampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	maxRSS     int64
	sumRSS     int64
	n          int64
	start, end procStat
	t0, t1     time.Time
}

func startSampler(pid int, every time.Duration) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	if pid <= 0 {
		close(s.done)
		return s
	}
	s.start, _ = readProc(pid)
	s.t0 = time.Now()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			if st, err := readProc(pid); err == nil {
				s.mu.Lock()
				s.maxRSS = max(s.maxRSS, st.RSS)
				s.sumRSS += st.RSS
				s.n++
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// finish stops sampling and returns peak and mean RSS and the CPU share used (1.0 =
// one core busy).
func (s *sampler) finish() (peak, mean int64, cores float64) {
	if s.pid <= 0 {
		return 0, 0, 0
	}
	close(s.stop)
	<-s.done
	s.end, _ = readProc(s.pid)
	s.t1 = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	peak = max(s.maxRSS, s.end.RSS)
	if s.n > 0 {
		mean = s.sumRSS / s.n
	}
	if el := s.t1.Sub(s.t0); el > 0 {
		cores = float64(s.end.CPU-s.start.CPU) / float64(el)
	}
	return peak, mean, cores
}

// pidListening finds the process listening on a loopback TCP address, through
// /proc/net/tcp{,6} (the socket's inode) and /proc/*/fd (who holds it); 0 if none is
// found (e.g. another user's process).
func pidListening(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return 0
	}
	want := fmt.Sprintf(":%04X", p)
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			cols := strings.Fields(sc.Text())
			// local_address st ... inode: state 0A is LISTEN.
			if len(cols) > 9 && strings.HasSuffix(cols[1], want) && cols[3] == "0A" {
				inodes["socket:["+cols[9]+"]"] = true
			}
		}
		fh.Close()
	}
	if len(inodes) == 0 {
		return 0
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && inodes[l] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}

// loadavg is the machine's load (1, 5, 15 min) and core count, for the record.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load unknown"
	}
	return fmt.Sprintf("load average %s %s %s", f[0], f[1], f[2])
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func numCPU() int { return runtime.NumCPU() }
