package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/config"
)

func parkedCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "parked",
		Short: "Parked (unattributed) call tools",
	}
	var conn cliConn
	rebuild := &cobra.Command{
		Use:   "rebuild",
		Short: "Restore the parked calls in Redis from the journal topic calltrack.call.parked.v1",
		Long: `rebuild reads the compacted topic calltrack.call.parked.v1 from the beginning to its end
(the last record of each tenant:call key wins; a tombstone means the call was written)
and puts every call still parked back in its tenant's parked set in Redis, skipping
calls written since. ` + "`calltrack work`" + ` does this by itself when it finds Redis without
its data; running it again does no harm. It needs only CALLTRACK_KAFKA_BROKERS (or
--brokers) and CALLTRACK_REDIS_ADDR (or --redis).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := conn.open(cmd.Context(), config.Need{Kafka: true, Redis: true})
			if err != nil {
				return err
			}
			defer a.Close()
			st, err := a.RestoreParked(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "read %d records (%d written, %d skipped) from %s\nrestored %d parked calls (%d written since)\n",
				st.Records, st.Tombstones, st.Invalid, a.Topics.Parked, st.Restored, st.Parked-st.Restored)
			return nil
		},
	}
	conn.kafkaFlags(rebuild)
	conn.redisFlags(rebuild, "Redis to restore the parked calls in")
	cmd.AddCommand(rebuild)
	return cmd
}
