package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/dlq"
	"github.com/calltrack/calltrack/internal/replay"
)

func dlqCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect the dead-letter topic: a summary, or the messages with their headers",
		Long: `dlq reads the dead-letter topic (calltrack.call.dlq.v1, or --topic) with the
window and filters of calltrack replay, so what it lists is what the same replay
re-drives. Needs CALLTRACK_KAFKA_BROKERS (or --brokers).`,
	}
	cmd.AddCommand(dlqSummaryCmd(), dlqShowCmd())
	return cmd
}

// dlqOptions builds the selection shared by the dlq subcommands.
func dlqOptions(cmd *cobra.Command, conn *cliConn, sel *selection, topic string) (dlq.Options, error) {
	w, err := sel.window(time.Now())
	if err != nil {
		return dlq.Options{}, err
	}
	cfg, k, err := conn.kafka(cmd.Context())
	if err != nil {
		return dlq.Options{}, err
	}
	return dlq.Options{Kafka: k, Topics: cfg.Topics(), Topic: topic, Window: w, Filter: sel.filter()}, nil
}

func usage(err error) error {
	if errors.Is(err, replay.ErrBadWindow) {
		return usageError{err}
	}
	return err
}

func dlqSummaryCmd() *cobra.Command {
	var (
		conn  cliConn
		sel   selection
		topic string
	)
	cmd := &cobra.Command{
		Use:     "summary",
		Short:   "Count dead-lettered messages by tenant, reason, type and age, with the commonest errors",
		Example: "  calltrack dlq summary\n  calltrack dlq summary --since 24h --tenant acme",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := dlqOptions(cmd, &conn, &sel, topic)
			if err != nil {
				return err
			}
			s, err := dlq.Summarize(cmd.Context(), o)
			if err != nil {
				return usage(err)
			}
			s.Print(cmd.OutOrStdout())
			return nil
		},
	}
	conn.kafkaFlags(cmd)
	sel.flags(cmd)
	cmd.Flags().StringVar(&topic, "topic", "dlq", "topic to read, or its kind (dlq, retry, ...)")
	return cmd
}

func dlqShowCmd() *cobra.Command {
	var (
		conn  cliConn
		sel   selection
		topic string
		o     dlq.ShowOptions
	)
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print dead-lettered messages with their headers (phone numbers redacted)",
		Long: `show prints the newest matching messages (--limit), oldest first: topic/partition@offset,
publish time, key, headers (tenant, call_id, reason, error, http_status, attempts,
original_topic/partition/offset, ce_*) and the payload with phone numbers masked
(--unmask shows them; mind where the output goes). --json prints one JSON object a line.`,
		Example: "  calltrack dlq show --since 1h --reason crm_rejected\n  calltrack dlq show --call-id n2.1596270949.2175190 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := dlqOptions(cmd, &conn, &sel, topic)
			if err != nil {
				return err
			}
			o.Options = opts
			_, err = dlq.Show(cmd.Context(), o, cmd.OutOrStdout())
			return usage(err)
		},
	}
	conn.kafkaFlags(cmd)
	sel.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "dlq", "topic to read, or its kind (dlq, retry, rejected, ...)")
	f.IntVar(&o.Limit, "limit", 20, "show at most this many messages (the newest)")
	f.BoolVar(&o.Unmask, "unmask", false, "show phone numbers unmasked")
	f.BoolVar(&o.JSON, "json", false, "one JSON object per message")
	return cmd
}
