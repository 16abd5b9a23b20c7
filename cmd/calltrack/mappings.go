package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/config"
)

func mappingsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mappings",
		Short: "Agent → CRM-user mapping tools",
	}
	var (
		only []string
		conn cliConn
	)
	rebuild := &cobra.Command{
		Use:   "rebuild",
		Short: "Restore the mappings in Redis from the journal topic calltrack.mapping.v1",
		Long: `rebuild reads the compacted topic calltrack.mapping.v1 from the beginning to its end
(the last record of each tenant:agent key wins; a tombstone deletes), then replaces
each tenant's mappings in Redis with it: the tenants found in the topic and those
with mappings in Redis (or only the --tenant ones). It needs only
CALLTRACK_KAFKA_BROKERS (or --brokers) and CALLTRACK_REDIS_ADDR (or --redis).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := conn.open(cmd.Context(), config.Need{Kafka: true, Redis: true})
			if err != nil {
				return err
			}
			defer a.Close()
			st, err := a.RebuildMappings(cmd.Context(), only...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "read %d records (%d deletions, %d skipped) from %s\n", st.Records, st.Tombstones, st.Invalid, a.Topics.Mapping)
			for _, t := range st.Tenants {
				fmt.Fprintf(out, "%s: %d mappings restored\n", t, st.Mappings[t])
			}
			fmt.Fprintf(out, "restored %d mappings of %d tenants\n", st.Total(), len(st.Tenants))
			return nil
		},
	}
	rebuild.Flags().StringSliceVar(&only, "tenant", nil, "rebuild only these tenants (repeatable)")
	conn.kafkaFlags(rebuild)
	conn.redisFlags(rebuild, "Redis to restore the mappings in")
	cmd.AddCommand(rebuild)
	return cmd
}
