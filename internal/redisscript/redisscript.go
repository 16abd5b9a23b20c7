// Package redisscript sends the Lua scripts of pipelines by their SHA1 (EVALSHA)
// instead of their text, falling back to the text when Redis does not know them.
//
// A pipeline cannot use redis.Script.Run's EVALSHA-then-EVAL dance (the answers come
// after the whole pipeline ran), so the stores queue EVAL with the text: ~1.4 KB per
// webhook on the wire, and Redis hashing the text on every call. The hook rewrites
// each pipelined EVAL into EVALSHA; the few that Redis answers NOSCRIPT (its script
// cache is empty after a restart or SCRIPT FLUSH) are sent again as EVAL, which
// caches them, in one more round trip. A command that was refused NOSCRIPT did not
// run, so sending it again runs it once — but after the pipeline's other commands,
// so only pipelines whose commands do not depend on each other's order opt in
// (Independent); the others, and transactions, go as queued.
package redisscript

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"sync"

	"github.com/redis/go-redis/v9"
)

type independentKey struct{}

// Independent marks a pipeline (the ctx of its Exec) whose commands may run in any
// order: its scripts may go by SHA1.
func Independent(ctx context.Context) context.Context {
	return context.WithValue(ctx, independentKey{}, true)
}

// Hook is a go-redis hook (client.AddHook) for plain pipelines; single commands and
// transactions pass through (redis.Script.Run already tries EVALSHA first).
type Hook struct {
	shas sync.Map // script text → its SHA1, hex
}

// New returns a Hook.
func New() *Hook { return &Hook{} }

// DialHook passes through.
func (h *Hook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook passes through.
func (h *Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

// ProcessPipelineHook sends an Independent pipeline's EVALs as EVALSHA, and again as
// EVAL those Redis did not know.
func (h *Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if ctx.Value(independentKey{}) == nil {
			return next(ctx, cmds)
		}
		var swapped []redis.Cmder
		var texts []string
		for _, c := range cmds {
			args := c.Args()
			if len(args) < 3 || args[0] != "eval" {
				continue
			}
			text, ok := args[1].(string)
			if !ok {
				continue
			}
			args[0], args[1] = "evalsha", h.sha(text)
			swapped = append(swapped, c)
			texts = append(texts, text)
		}
		err := next(ctx, cmds)
		if len(swapped) == 0 {
			return err
		}
		var again []redis.Cmder
		for i, c := range swapped {
			args := c.Args()
			args[0], args[1] = "eval", texts[i] // the command reads as it was queued
			if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				c.SetErr(nil)
				again = append(again, c)
			}
		}
		if len(again) == 0 {
			return err
		}
		_ = next(ctx, again) // each command's answer is its own; the pipeline's is the first error
		return firstErr(cmds)
	}
}

func (h *Hook) sha(text string) string {
	if v, ok := h.shas.Load(text); ok {
		return v.(string)
	}
	sum := sha1.Sum([]byte(text))
	s := hex.EncodeToString(sum[:])
	h.shas.Store(text, s)
	return s
}

// firstErr is what go-redis's Pipeline.Exec reports: the first command's error.
func firstErr(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}
