package testenv

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a server and can lose an answer: armed with a
// pattern, it lets the next request containing it through, waits for the server's
// answer (so the request was carried out) and cuts the connection instead of passing
// the answer on. It is the fault of a network or server failing between a command's
// execution and its reply, which a client's own retry then meets.
type Proxy struct {
	Addr string // where clients connect

	ln     net.Listener
	target string
	mu     sync.Mutex
	armed  []byte
	cuts   int
	conns  []net.Conn
	wg     sync.WaitGroup
}

// NewProxy listens on a free local port and forwards to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// LoseAnswerTo arms the proxy: the answer to the next request containing pattern is
// dropped and its connection cut.
func (p *Proxy) LoseAnswerTo(pattern string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = []byte(pattern)
}

// Cuts is how many answers were lost.
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		var cut atomic.Bool // this connection's next answer is to be lost
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.pump(s, c, &cut, false) }()
		go func() { defer p.wg.Done(); p.pump(c, s, &cut, true) }()
	}
}

// pump copies from src to dst: requests are matched against the armed pattern, and
// the answer to a matched one is dropped.
func (p *Proxy) pump(dst, src net.Conn, cut *atomic.Bool, answers bool) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			switch {
			case answers && cut.Load():
				p.mu.Lock()
				p.cuts++
				p.mu.Unlock()
				return
			case !answers:
				p.mu.Lock()
				if p.armed != nil && bytes.Contains(buf[:n], p.armed) {
					p.armed = nil
					cut.Store(true)
				}
				p.mu.Unlock()
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
