package replay

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/kafkabus"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 10, 10, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"now", now},
		{"2h", now.Add(-2 * time.Hour)},
		{"30m", now.Add(-30 * time.Minute)},
		{"90s", now.Add(-90 * time.Second)},
		{"1d", now.Add(-24 * time.Hour)},
		{"1d12h", now.Add(-36 * time.Hour)},
		{"2026-10-10T09:00:00Z", time.Date(2026, 10, 10, 9, 0, 0, 0, time.UTC)},
		{"2026-10-10T14:30:00+05:30", time.Date(2026, 10, 10, 9, 0, 0, 0, time.UTC)},
		{"2026-10-09", time.Date(2026, 10, 9, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTime(tc.in, now)
			require.NoError(t, err)
			assert.True(t, tc.want.Equal(got), "got %s", got)
		})
	}
	for _, bad := range []string{"yesterday", "2h-", "10/10/2026", "xd"} {
		_, err := ParseTime(bad, now)
		assert.ErrorIs(t, err, ErrBadWindow, bad)
	}
}

func TestWindowValidate(t *testing.T) {
	now := time.Now()
	assert.NoError(t, Window{}.Validate())
	assert.ErrorIs(t, Window{Since: now, Until: now.Add(-time.Minute)}.Validate(), ErrBadWindow)
	assert.ErrorIs(t, Window{Offsets: &OffsetRange{From: 5, To: 2}}.Validate(), ErrBadWindow)
	assert.ErrorIs(t, Window{Partitions: []int{-1}}.Validate(), ErrBadWindow)
	assert.NoError(t, Window{Offsets: &OffsetRange{From: 5, To: -1}}.Validate())
	assert.Equal(t, "the whole topic", Window{}.String())
	assert.Equal(t, "partition 2, offsets 5-end", Window{Partitions: []int{2}, Offsets: &OffsetRange{From: 5, To: -1}}.String())
}

func TestKinds(t *testing.T) {
	topics := kafkabus.DefaultTopics().WithSuffix(".test.1")
	assert.Equal(t, "dlq", KindOf(topics.DLQ))
	assert.Equal(t, "log", KindOf(kafkabus.TopicLog))
	assert.Equal(t, "other.topic", KindOf("other.topic"))
	assert.Equal(t, "recording", KindOf(Resolve("recording", topics)))
	assert.Equal(t, topics.DLQ, Resolve("DLQ", topics))
	assert.Equal(t, "x.y", Resolve("x.y", topics))
	assert.True(t, Routed(topics.Retry))
	assert.False(t, Routed(topics.Log))
}

// Off a terminal: a plain line every two seconds, and a last one; on a terminal: a bar
// redrawn in place.
func TestProgress(t *testing.T) {
	clock := time.Date(2026, 10, 10, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	var buf bytes.Buffer
	p := NewProgress(&buf, false, "replayed", 100, now)
	for i := 0; i < 100; i++ {
		p.Read++
		p.Matched++
		p.Sent++
		clock = clock.Add(100 * time.Millisecond)
		p.Tick()
	}
	p.Done()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 5, buf.String())
	assert.Equal(t, "progress: 20% 20/100 read, 20 matched, 20 replayed, 10/s, ETA 8s", lines[0])
	assert.Equal(t, "progress: 100% 100/100 read, 100 matched, 100 replayed, 10/s, ETA 0s", lines[4], "the last line once")

	buf.Reset()
	p = NewProgress(&buf, true, "replayed", 10, now)
	p.Read = 5
	clock = clock.Add(time.Second)
	p.Tick()
	assert.Contains(t, buf.String(), "\r[███████████████░░░░░░░░░░░░░░░]  50% 5/10 read")
	assert.Contains(t, buf.String(), "ETA 1s\x1b[K")
	p.Done()
	assert.True(t, strings.HasSuffix(buf.String(), "\n"))

	// A short run off a terminal prints nothing; no writer, nothing at all.
	buf.Reset()
	NewProgress(&buf, false, "replayed", 1, now).Done()
	assert.Empty(t, buf.String())
	NewProgress(nil, true, "replayed", 1, now).Done()
}
