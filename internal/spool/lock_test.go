package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One process per spool: a second Open of a directory that is open fails with ErrInUse,
// naming the directory and the holder's pid, and leaves the first one's spool working;
// after Close the directory opens again.
func TestSecondOpenOfASpoolIsRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, 0)
	require.NoError(t, s.Append(ctx, []kafka.Message{msg(1)}))

	s2, err := Open(dir, Options{})
	require.ErrorIs(t, err, ErrInUse)
	assert.Nil(t, s2)
	assert.Contains(t, err.Error(), "spool "+dir+" is in use by another process (pid "+strconv.Itoa(os.Getpid())+"?)")

	// The refused Open changed nothing: the first spool still appends and holds both.
	require.NoError(t, s.Append(ctx, []kafka.Message{msg(2)}))
	assert.Equal(t, uint64(2), s.Stats().Entries)

	require.NoError(t, s.Close())
	s3 := open(t, dir, 0)
	assert.Equal(t, uint64(2), s3.Stats().Entries)
}

// The pid file is only a name: deleting it (as a stale pidfile might be) does not let a
// second process in — the lock is on the directory.
func TestDeletedPidFileDoesNotUnlockTheSpool(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	require.NoError(t, os.Remove(filepath.Join(dir, LockFile)))
	s2, err := Open(dir, Options{})
	require.ErrorIs(t, err, ErrInUse)
	assert.Nil(t, s2)
	live, _ := inUseNow(dir)
	assert.True(t, live, "spool status still sees the spool in use")
	require.NoError(t, s.Close())
	live, _ = inUseNow(dir)
	assert.False(t, live)
}

// The same from another process (serve and `spool drain` on one directory).
func TestSecondProcessCannotOpenASpoolInUse(t *testing.T) {
	if dir := os.Getenv("CALLTRACK_SPOOL_LOCK_CHILD"); dir != "" {
		s, err := Open(dir, Options{})
		if err == nil {
			_ = s.Close()
			os.Stdout.WriteString("OPENED\n")
			return
		}
		os.Stdout.WriteString("REFUSED in-use=" + strconv.FormatBool(errors.Is(err, ErrInUse)) + " " + err.Error() + "\n")
		return
	}
	dir := t.TempDir()
	child := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSecondProcessCannotOpenASpoolInUse$")
		cmd.Env = append(os.Environ(), "CALLTRACK_SPOOL_LOCK_CHILD="+dir)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	out := child()
	assert.Contains(t, out, "REFUSED in-use=true spool "+dir+" is in use by another process (pid "+strconv.Itoa(os.Getpid())+"?)")
	require.NoError(t, s.Close())
	assert.Contains(t, child(), "OPENED", "the lock goes with Close")
}

// okThenDown acknowledges its first `ok` publishes, then refuses.
type okThenDown struct {
	fakeKafka
	ok int
}

func (k *okThenDown) Publish(ctx context.Context, msgs ...kafka.Message) error {
	k.mu.Lock()
	k.down = k.ok <= 0
	k.ok--
	k.mu.Unlock()
	return k.fakeKafka.Publish(ctx, msgs...)
}

// Inspect reads a spool in use without its lock and without changing it, across
// segments and a drained head, and agrees with the spool's own figures; on a closed
// spool it says nobody has it open.
func TestInspectReadsALiveSpool(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, 0)

	info, err := Inspect(dir)
	require.NoError(t, err)
	assert.True(t, info.InUse)
	assert.Equal(t, os.Getpid(), info.PID)
	assert.Zero(t, info.Entries)
	assert.True(t, info.Oldest.IsZero())

	// 40 entries of ~64 KiB: three segments of 1 MiB.
	big := make([]byte, 64<<10)
	for i := range 40 {
		m := msg(i)
		m.Value = append([]byte(strconv.Itoa(i)+":"), big...)
		require.NoError(t, s.Append(ctx, []kafka.Message{m}))
	}
	info, err = Inspect(dir)
	require.NoError(t, err)
	st := s.Stats()
	assert.Equal(t, uint64(40), info.Entries)
	assert.WithinDuration(t, st.Oldest, info.Oldest, 2*time.Second)
	assert.InDelta(t, st.Bytes, info.Bytes, 40*10)

	// Drain 25 (the head is now inside a later segment), then look again.
	k := &okThenDown{ok: 1}
	n, err := (&Drainer{Spool: s, Kafka: k, Batch: 25, Log: zerolog.Nop()}).Drain(ctx)
	require.Error(t, err, "the second publish is refused")
	require.Equal(t, 25, n)
	info, err = Inspect(dir)
	require.NoError(t, err)
	assert.Equal(t, uint64(15), info.Entries)
	assert.Equal(t, s.Stats().Entries, info.Entries)
	assert.False(t, info.Oldest.IsZero())

	require.NoError(t, s.Close())
	info, err = Inspect(dir)
	require.NoError(t, err)
	assert.False(t, info.InUse)
	assert.Equal(t, uint64(15), info.Entries)

	// Reading changed nothing: the spool opens with the same 15, oldest first.
	s2 := open(t, dir, 0)
	assert.Equal(t, uint64(15), s2.Stats().Entries)
	k.setDown(false)
	n, err = (&Drainer{Spool: s2, Kafka: &k.fakeKafka, Log: zerolog.Nop()}).Drain(ctx)
	require.NoError(t, err)
	assert.Equal(t, 15, n)
	vals := k.values()
	assert.True(t, strings.HasPrefix(vals[25], "25:"), "the 26th forwarded is entry 25")

	_, err = Inspect(dir + "/missing")
	assert.Error(t, err, "no spool there")
	_, statErr := os.Stat(dir + "/missing")
	assert.True(t, os.IsNotExist(statErr), "Inspect creates nothing")
}

// A serve killed -9 with calls spooled: while it runs, `spool status` (Inspect) sees them
// and says the spool is in use, and a drain (Open) is refused; once it is dead the lock
// is gone with it, and the next Open finds every call.
func TestSpoolOfAProcessKilledWhileHoldingIt(t *testing.T) {
	if dir := os.Getenv("CALLTRACK_SPOOL_HOLD_CHILD"); dir != "" {
		s, err := Open(dir, Options{})
		if err != nil {
			os.Stdout.WriteString("ERROR " + err.Error() + "\n")
			return
		}
		for i := range 20 {
			if err := s.Append(context.Background(), []kafka.Message{msg(i)}); err != nil {
				os.Stdout.WriteString("ERROR " + err.Error() + "\n")
				return
			}
		}
		os.Stdout.WriteString("READY\n")
		time.Sleep(time.Minute) // killed before
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolOfAProcessKilledWhileHoldingIt$")
	cmd.Env = append(os.Environ(), "CALLTRACK_SPOOL_HOLD_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "READY\n", line)

	info, err := Inspect(dir)
	require.NoError(t, err)
	assert.True(t, info.InUse)
	assert.Equal(t, cmd.Process.Pid, info.PID)
	assert.Equal(t, uint64(20), info.Entries)
	_, err = Open(dir, Options{})
	require.ErrorIs(t, err, ErrInUse)
	assert.Contains(t, err.Error(), fmt.Sprintf("(pid %d?)", cmd.Process.Pid))

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	info, err = Inspect(dir)
	require.NoError(t, err)
	assert.False(t, info.InUse, "the lock died with the process")
	assert.Equal(t, uint64(20), info.Entries)
	s := open(t, dir, 0)
	assert.Equal(t, uint64(20), s.Stats().Entries)
}
