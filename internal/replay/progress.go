package replay

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Progress reports how far a long read has got: a bar redrawn in place on a terminal,
// a plain line every few seconds otherwise (logs, CI). With no writer it only counts.
type Progress struct {
	w        io.Writer
	terminal bool
	label    string
	total    int64
	start    time.Time
	last     time.Time
	every    time.Duration
	now      func() time.Time
	drawn    bool
	lastLine string

	Read, Matched, Sent int64
}

// NewProgress returns a progress reporter for total records; w may be nil.
func NewProgress(w io.Writer, terminal bool, label string, total int64, now func() time.Time) *Progress {
	if now == nil {
		now = time.Now
	}
	every := 2 * time.Second
	if terminal {
		every = 100 * time.Millisecond
	}
	t := now()
	return &Progress{w: w, terminal: terminal, label: label, total: total, start: t, last: t, every: every, now: now}
}

// Tick reports the counts when it is time to.
func (p *Progress) Tick() {
	if p.w == nil {
		return
	}
	if t := p.now(); t.Sub(p.last) >= p.every {
		p.last = t
		p.draw()
	}
}

// Done draws the final state and ends the bar's line.
func (p *Progress) Done() {
	if p.w == nil || (!p.drawn && !p.terminal) {
		return // a short run needs no progress lines
	}
	p.draw()
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}

func (p *Progress) draw() {
	p.drawn = true
	elapsed := p.now().Sub(p.start)
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(min(p.Read, p.total)) / float64(p.total)
	}
	eta := "—"
	if p.Read > 0 && p.total > p.Read {
		left := time.Duration(float64(elapsed) / float64(p.Read) * float64(p.total-p.Read))
		eta = left.Round(time.Second).String()
	} else if p.Read >= p.total {
		eta = "0s"
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(p.Read) / s
	}
	counts := fmt.Sprintf("%d/%d read, %d matched, %d %s, %.0f/s, ETA %s", p.Read, p.total, p.Matched, p.Sent, p.label, rate, eta)
	if !p.terminal {
		line := fmt.Sprintf("progress: %.0f%% %s\n", pct, counts)
		if line != p.lastLine { // Done after a Tick that said it all
			fmt.Fprint(p.w, line)
			p.lastLine = line
		}
		return
	}
	const width = 30
	fill := int(pct / 100 * width)
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	// \r and clear-to-end redraw the line in place.
	fmt.Fprintf(p.w, "\r[%s] %3.0f%% %s\x1b[K", bar, pct, counts)
}
