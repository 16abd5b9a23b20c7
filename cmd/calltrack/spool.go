package main

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/spool"
)

// spoolCmd inspects or drains a serve replica's spool directory — e.g. the volume of a
// replica that was scaled down while Kafka was unreachable. status reads a spool in use
// too (it takes no lock and writes nothing); drain, like serve, refuses a spool another
// process has open (spool.ErrInUse).
func spoolCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "spool", Short: "Inspect or drain a spool directory (calls kept while Kafka was down)"}
	var dir string
	dirFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&dir, "dir", envOr("CALLTRACK_SPOOL_DIR", ""), "the spool directory (default $CALLTRACK_SPOOL_DIR)")
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "How many calls wait in the spool, its size and the age of the oldest",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError{fmt.Errorf("--dir is required")}
			}
			st, err := spool.Inspect(dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d waiting, %d bytes", dir, st.Entries, st.Bytes)
			if !st.Oldest.IsZero() {
				fmt.Fprintf(cmd.OutOrStdout(), ", oldest spooled %s (%s ago)", st.Oldest.Format(time.RFC3339), time.Since(st.Oldest).Round(time.Second))
			}
			if st.InUse {
				pid := "pid unknown"
				if st.PID > 0 {
					pid = fmt.Sprintf("pid %d", st.PID)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "; in use by a running process (%s), which drains it itself", pid)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	var conn cliConn
	drain := &cobra.Command{
		Use:   "drain",
		Short: "Forward the spool to Kafka (in order, removing what Kafka acknowledged) and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError{fmt.Errorf("--dir is required")}
			}
			_, k, err := conn.kafka(cmd.Context())
			if err != nil {
				return err
			}
			p := kafkabus.NewProducer(k)
			defer p.Close()
			s, err := spool.Open(dir, spool.Options{})
			if err != nil {
				return err
			}
			defer s.Close()
			n, err := (&spool.Drainer{Spool: s, Kafka: p, Log: zerolog.Nop()}).Drain(cmd.Context())
			fmt.Fprintf(cmd.OutOrStdout(), "drained %d, %d left\n", n, s.Stats().Entries)
			return err
		},
	}
	dirFlag(status)
	dirFlag(drain)
	conn.kafkaFlags(drain)
	cmd.AddCommand(status, drain)
	return cmd
}
