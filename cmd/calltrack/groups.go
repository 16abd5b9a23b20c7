package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/replay"
)

func groupsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "Consumer-group tools: describe a group, move a stopped group's offsets to a time",
		Long: `The writers' consumer groups are $CALLTRACK_WRITER_GROUP (default calltrack-writer: the
log and recording topics), <group>-retry (the retry topic) and <group>-popups (the live
topic). Needs CALLTRACK_KAFKA_BROKERS (or --brokers).`,
	}
	cmd.AddCommand(groupsDescribeCmd(), groupsResetCmd())
	return cmd
}

func groupsDescribeCmd() *cobra.Command {
	var (
		conn   cliConn
		group  string
		topics []string
	)
	cmd := &cobra.Command{
		Use:     "describe --group G [--topic T]",
		Short:   "Show a group's state, members, committed offsets and lag",
		Example: "  calltrack groups describe --group calltrack-writer --topic log --topic recording",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group == "" {
				return usageError{errors.New("--group is required")}
			}
			ctx := cmd.Context()
			cfg, k, err := conn.kafka(ctx)
			if err != nil {
				return err
			}
			g, err := k.DescribeGroup(ctx, group)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "group %s: %s, %d member(s)\n", group, g.State, len(g.Members))
			for _, m := range g.Members {
				var as []string
				for t, ps := range m.Assigned {
					slices.Sort(ps)
					as = append(as, fmt.Sprintf("%s %v", t, ps))
				}
				slices.Sort(as)
				fmt.Fprintf(out, "  member %s (%s@%s): %s\n", m.ID, m.ClientID, m.Host, strings.Join(as, "; "))
			}
			for _, t := range topics {
				t = replay.Resolve(t, cfg.Topics())
				parts, err := k.Lag(ctx, group, t)
				if err != nil {
					return err
				}
				var lag int64
				fmt.Fprintf(out, "%s:\n", t)
				for _, p := range parts {
					c := "none"
					if p.Committed >= 0 {
						c = fmt.Sprint(p.Committed)
					}
					lag += p.Lag
					fmt.Fprintf(out, "  partition %d: committed %s, end %d, lag %d\n", p.Partition, c, p.End, p.Lag)
				}
				fmt.Fprintf(out, "  lag %d\n", lag)
			}
			return nil
		},
	}
	conn.kafkaFlags(cmd)
	cmd.Flags().StringVar(&group, "group", "", "consumer group (required)")
	cmd.Flags().StringSliceVar(&topics, "topic", nil, "also show committed offsets and lag on these topics (repeatable; kinds such as log work)")
	return cmd
}

func groupsResetCmd() *cobra.Command {
	var (
		conn   cliConn
		group  string
		topics []string
		toTime string
		dry    bool
	)
	cmd := &cobra.Command{
		Use:   "reset --group G --topic T --to-time T0",
		Short: "Move a stopped consumer group's committed offsets to a time (refused while it has members)",
		Long: `reset moves the group's committed offsets on each --topic to the first message
published at or after --to-time (RFC 3339, a time ago such as 2h, "earliest" or
"latest"), so the group's consumers re-read from there when they start. The group
must be stopped: with members it is refused (their commits would undo the reset).
kafka-go cannot seek a group's reader, so this is how a writer group is rewound.
The writers are idempotent: re-reading adds no CRM record twice.`,
		Example: `  # stop the writers (scale calltrack work to 0), then
  calltrack groups reset --group calltrack-writer --topic log --topic recording --to-time 2h --dry-run
  calltrack groups reset --group calltrack-writer --topic log --topic recording --to-time 2h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group == "" || len(topics) == 0 || toTime == "" {
				return usageError{errors.New("--group, --topic and --to-time are required")}
			}
			var at time.Time
			switch strings.ToLower(toTime) {
			case "earliest":
			case "latest":
				at = time.Now().Add(time.Hour) // nothing is that recent: the end
			default:
				var err error
				if at, err = replay.ParseTime(toTime, time.Now()); err != nil {
					return usageError{fmt.Errorf("--to-time: %w", err)}
				}
			}
			ctx := cmd.Context()
			cfg, k, err := conn.kafka(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			when := "the log start"
			if !at.IsZero() {
				when = at.UTC().Format(time.RFC3339)
			}
			for _, t := range topics {
				t = replay.Resolve(t, cfg.Topics())
				res, err := k.ResetGroup(ctx, group, t, at, dry)
				if err != nil {
					if errors.Is(err, kafkabus.ErrGroupActive) {
						return fmt.Errorf("refused: %w", err)
					}
					return err
				}
				for _, p := range res.Partitions {
					from := "none"
					if p.From >= 0 {
						from = fmt.Sprint(p.From)
					}
					fmt.Fprintf(out, "%s partition %d: %s → %d\n", t, p.Partition, from, p.To)
				}
				verb := "moved"
				if dry {
					verb = "would move"
				}
				fmt.Fprintf(out, "%s %s's offsets on %s to %s (%d partitions change)\n", verb, group, t, when, res.Moved())
			}
			return nil
		},
	}
	conn.kafkaFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&group, "group", "", "consumer group (required; it must be stopped)")
	f.StringSliceVar(&topics, "topic", nil, "topic whose offsets move (repeatable; kinds such as log work)")
	f.StringVar(&toTime, "to-time", "", "RFC 3339 time, a time ago (2h, 30m), earliest or latest (required)")
	f.BoolVar(&dry, "dry-run", false, "print the moves; commit nothing")
	return cmd
}
