package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/replay"
	"github.com/calltrack/calltrack/internal/trace"
)

// cliConn is how the on-call commands (replay, dlq, groups, trace, the rebuilds,
// backfill) reach Kafka and Redis: the services' CALLTRACK_* variables, which --brokers
// and --redis override.
type cliConn struct {
	brokers []string
	redis   string
}

func (c *cliConn) kafkaFlags(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&c.brokers, "brokers", nil, "Kafka brokers, host:port,... (default $CALLTRACK_KAFKA_BROKERS)")
}

func (c *cliConn) redisFlags(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&c.redis, "redis", "", what+" (default $CALLTRACK_REDIS_ADDR)")
}

// config reads the environment, applies the flags and checks what the command needs.
func (c *cliConn) config(need config.Need) (config.Config, error) {
	cfg, err := config.Load()
	if err != nil {
		return cfg, err
	}
	if len(c.brokers) > 0 {
		cfg.KafkaBrokers = c.brokers
	}
	if c.redis != "" {
		cfg.RedisAddr = c.redis
	}
	if err := cfg.Validate(need); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// openKafka returns a client and producer for cfg's cluster. Unlike the services it
// creates no topics: a tool reads and writes the topics that are there.
// kafka reads the connection settings and opens (and pings) the cluster: what every
// Kafka CLI subcommand starts with.
func (c *cliConn) kafka(ctx context.Context) (config.Config, *kafkabus.Client, error) {
	cfg, err := c.config(config.Need{Kafka: true})
	if err != nil {
		return cfg, nil, err
	}
	k, err := openKafka(ctx, cfg)
	return cfg, k, err
}

func openKafka(ctx context.Context, cfg config.Config) (*kafkabus.Client, error) {
	k, err := kafkabus.NewClient(cfg.Kafka())
	if err != nil {
		return nil, usageError{err}
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := k.Ping(pctx); err != nil {
		return nil, fmt.Errorf("kafka %s: %w", strings.Join(cfg.KafkaBrokers, ","), err)
	}
	return k, nil
}

// openRedis connects Redis and checks it answers.
func openRedis(ctx context.Context, cfg config.Config) (redis.UniversalClient, error) {
	rdb, err := cfg.Redis()
	if err != nil {
		return nil, usageError{err}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", cfg.RedisAddrSafe(), err)
	}
	return rdb, nil
}

// selection is the window and filter flags replay and dlq share.
type selection struct {
	since, until     string
	partitions       []int
	fromOff, toOff   int64
	tenants, callIDs []string
	reasons, types   []string
}

func (s *selection) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.since, "since", "", "window start: RFC 3339 (2026-10-10T09:00:00Z) or a time ago (2h, 30m, 1d); on publish time")
	f.StringVar(&s.until, "until", "", "window end (excluded), same forms; default: the topic's end when the command starts")
	f.IntSliceVar(&s.partitions, "partition", nil, "only these partitions (repeatable)")
	f.Int64Var(&s.fromOff, "from-offset", -1, "first offset to read (of each selected partition)")
	f.Int64Var(&s.toOff, "to-offset", -1, "last offset to read, included (of each selected partition)")
	f.StringSliceVar(&s.tenants, "tenant", nil, "only these tenants (repeatable)")
	f.StringSliceVar(&s.callIDs, "call-id", nil, "only these calls: call UID or afterCall log id (repeatable)")
	f.StringSliceVar(&s.reasons, "reason", nil, "only this DLQ reason: "+strings.Join(kafkabus.DeadLetterReasons, ", ")+" (repeatable)")
	f.StringSliceVar(&s.types, "type", nil, "only this event type: log, recording, live, or a ce_type header value (repeatable)")
}

func (s *selection) window(now time.Time) (replay.Window, error) {
	var w replay.Window
	var err error
	if w.Since, err = replay.ParseTime(s.since, now); err != nil {
		return w, usageError{fmt.Errorf("--since: %w", err)}
	}
	if w.Until, err = replay.ParseTime(s.until, now); err != nil {
		return w, usageError{fmt.Errorf("--until: %w", err)}
	}
	w.Partitions = s.partitions
	if s.fromOff >= 0 || s.toOff >= 0 {
		w.Offsets = &replay.OffsetRange{From: max(s.fromOff, 0), To: s.toOff}
	}
	if err := w.Validate(); err != nil {
		return w, usageError{err}
	}
	return w, nil
}

func (s *selection) filter() replay.Filter {
	return replay.Filter{Tenants: s.tenants, CallIDs: s.callIDs, Reasons: s.reasons, Types: s.types}
}

func replayCmd() *cobra.Command {
	var (
		conn   cliConn
		sel    selection
		topic  string
		to     string
		dry    bool
		rateS  string
		noBar  bool
		traces bool
		reattr bool
	)
	cmd := &cobra.Command{
		Use:   "replay --topic TOPIC [window] [filters] [--to TOPIC] [--dry-run]",
		Short: "Re-publish a topic's messages by time or offset window, with filters (re-drive the DLQ after a fix)",
		Long: `replay reads --topic in a window and re-publishes the messages that pass the filters.

  window   --since/--until (RFC 3339 or a time ago: 2h, 30m, 1d; on publish time), or
           --partition/--from-offset/--to-offset; none: the whole retained topic. The
           end is fixed when replay starts: it never waits for new messages.
  filters  --tenant, --call-id, --reason (DLQ reason), --type (log, recording, live).
  target   --to TOPIC; by default a DLQ or retry message goes back to the topic in its
           original_topic header, any other message to the topic it was read from.

Replayed messages keep their key, value and call headers, lose the retry/DLQ ones
(attempts, reason, error, ...), and carry replayed=true, replayed_from and replayed_at.
The writers are idempotent per tenant+call, so replaying any window any number of
times adds no CRM record twice (and never changes a record already written).
--reattribute drops the owner resolved at ingest from call logs, so that calls
dead-lettered under a wrong mapping are attributed with the fixed one. --dry-run prints what would be replayed, writing
nothing. The summary's last line is "replayed N messages" ("would replay N messages").

Topics may be given by kind: dlq, retry, log, recording, live (the names of
CALLTRACK_TOPIC_SUFFIX's deployment). Needs CALLTRACK_KAFKA_BROKERS (or --brokers);
with CALLTRACK_REDIS_ADDR each replayed call's trace gets a "replayed" stage.`,
		Example: `  calltrack replay --topic dlq --since 1h --dry-run
  calltrack replay --topic dlq --since 1h --reason crm_rejected --rate 20/s
  calltrack replay --topic calltrack.call.dlq.v1 --tenant acme --call-id n2.1596270949.2175190
  calltrack replay --topic log --since 2026-10-10T09:00:00Z --until 2026-10-10T10:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				return usageError{errors.New("--topic is required (e.g. --topic calltrack.call.dlq.v1, or --topic dlq)")}
			}
			perSec, err := parseRate(rateS)
			if err != nil {
				return usageError{fmt.Errorf("--rate: %w", err)}
			}
			w, err := sel.window(time.Now())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg, k, err := conn.kafka(ctx)
			if err != nil {
				return err
			}
			o := replay.Options{Kafka: k, Topics: cfg.Topics(), Topic: topic, Window: w, Filter: sel.filter(),
				To: to, DryRun: dry, Rate: perSec, Reattribute: reattr}
			if !dry {
				p := kafkabus.NewProducer(k)
				defer p.Close()
				o.Publisher = p
				if traces && cfg.RedisAddr != "" {
					if rdb, err := openRedis(ctx, cfg); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "calltrack: traces not updated: %v\n", err)
					} else {
						defer rdb.Close()
						o.Trace = trace.New(rdb, cfg.RedisPrefix)
					}
				}
			}
			if !noBar {
				o.Progress, o.Terminal = cmd.ErrOrStderr(), isTerminal(cmd.ErrOrStderr())
			}
			_, err = replay.Run(ctx, o, cmd.OutOrStdout())
			if errors.Is(err, replay.ErrBadTarget) || errors.Is(err, replay.ErrBadWindow) {
				return usageError{err}
			}
			return err
		},
	}
	conn.kafkaFlags(cmd)
	conn.redisFlags(cmd, "Redis for the calls' traces")
	sel.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "", "source topic, or its kind: dlq, retry, log, recording, live (required)")
	f.StringVar(&to, "to", "", "target topic (default: a DLQ/retry message's original topic, else the source topic)")
	f.BoolVar(&dry, "dry-run", false, "print what would be replayed; write nothing")
	f.StringVar(&rateS, "rate", "", "at most N messages a second: N/s, N/m or N (default: unlimited)")
	f.BoolVar(&reattr, "reattribute", false, "drop the owner ingest resolved from call logs: the writer attributes them with the current mappings (after fixing a wrong mapping)")
	f.BoolVar(&noBar, "no-progress", false, "no progress output on stderr")
	f.BoolVar(&traces, "trace", true, "record a \"replayed\" stage on each call's trace (needs Redis)")
	return cmd
}

// parseRate reads "50/s", "600/m" or "50" as messages per second; "" is unlimited.
func parseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a positive rate such as 50/s", s)
	}
	switch unit {
	case "", "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("%q: unit must be /s, /m or /h", s)
}

// isTerminal reports whether w is a terminal (progress bar) rather than a file or pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
