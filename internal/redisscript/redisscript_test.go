package redisscript_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/redisscript"
	"github.com/calltrack/calltrack/internal/testenv"
)

// sent records the command names each pipeline put on the wire (a hook inside ours).
type sent struct {
	mu    sync.Mutex
	names [][]string
}

func (s *sent) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (s *sent) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (s *sent) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var names []string
		for _, c := range cmds {
			names = append(names, fmt.Sprint(c.Args()[0]))
		}
		if names[0] == "hello" || names[0] == "client" { // a new connection's set-up
			return next(ctx, cmds)
		}
		s.mu.Lock()
		s.names = append(s.names, names)
		s.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (s *sent) take() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.names
	s.names = nil
	return out
}

func TestPipelinedScriptsGoBySHA(t *testing.T) {
	env := testenv.New(t) // its client is calltrack's, with the hook
	rec := &sent{}
	env.Redis.AddHook(rec)
	ctx := t.Context()
	key := env.Prefix + ":k"
	// A script no Redis has seen (the test's own prefix in its text): the first
	// EVALSHA is refused NOSCRIPT and the hook sends the text.
	script := redis.NewScript(fmt.Sprintf(`-- %s
redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] .. '!'`, env.Prefix))
	failing := redis.NewScript(fmt.Sprintf(`-- %s
return redis.error_reply('BAD it failed')`, env.Prefix))

	ictx := redisscript.Independent(ctx)
	run := func(arg string) (string, string, error) {
		p := env.Redis.Pipeline()
		ev := script.Eval(ictx, p, []string{key}, arg)
		ttl := p.PExpire(ictx, env.Prefix+":other", time.Minute)
		_, err := p.Exec(ictx)
		s, _ := ev.Text()
		require.NoError(t, ttl.Err())
		return s, env.Redis.Get(ctx, key).Val(), err
	}

	got, stored, err := run("one")
	require.NoError(t, err)
	assert.Equal(t, "one!", got)
	assert.Equal(t, "one", stored)
	assert.Equal(t, [][]string{{"evalsha", "pexpire"}, {"eval"}}, rec.take(), "unknown to Redis: sent again whole, the script ran once")

	got, stored, err = run("two")
	require.NoError(t, err)
	assert.Equal(t, "two!", got)
	assert.Equal(t, "two", stored)
	assert.Equal(t, [][]string{{"evalsha", "pexpire"}}, rec.take(), "known now: by SHA1 only")

	// A script's own error is the answer, not retried.
	p := env.Redis.Pipeline()
	set := p.Set(ictx, key, "three", 0)
	bad := failing.Eval(ictx, p, []string{key})
	_, err = p.Exec(ictx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "BAD it failed")
	assert.Contains(t, bad.Err().Error(), "BAD it failed")
	require.NoError(t, set.Err())
	assert.Equal(t, [][]string{{"set", "evalsha"}, {"eval"}}, rec.take())
	assert.Equal(t, "eval", bad.Args()[0], "the command reads as it was queued")

	// Pipelines not marked Independent, and transactions, go as queued: text.
	for _, p := range []redis.Pipeliner{env.Redis.Pipeline(), env.Redis.TxPipeline()} {
		ev := script.Eval(ctx, p, []string{key}, "four")
		_, err = p.Exec(ctx)
		require.NoError(t, err)
		assert.Equal(t, "four!", ev.Val())
	}
	assert.Equal(t, [][]string{{"eval"}, {"multi", "eval", "exec"}}, rec.take())
}
