package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/trace"
)

func traceCmd() *cobra.Command {
	var (
		conn   cliConn
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "trace TENANT CALL_ID",
		Short: "Show a call's trace: status, owner, CRM record, and the stages it passed with times",
		Long: `trace prints what calltrack knows of one call (CALL_ID: the MyOperator call UID or
the afterCall log id): its status (that of its call-log write), owner, CRM record and
each stage (received, published, retrying, dead_lettered, replayed, written, ...) with
its time and the time since the first. Traces are kept 7 days. --json prints the raw
trace, as the admin API serves it. Needs CALLTRACK_REDIS_ADDR (or --redis) and
CALLTRACK_REDIS_PREFIX when it is not the default.`,
		Example: "  calltrack trace demo n2.1596270949.2175190",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := conn.config(config.Need{Redis: true})
			if err != nil {
				return err
			}
			rdb, err := openRedis(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer rdb.Close()
			t, err := trace.New(rdb, cfg.RedisPrefix).Get(cmd.Context(), args[0], args[1])
			if errors.Is(err, trace.ErrNotFound) {
				return fmt.Errorf("no trace of call %s of tenant %s (traces are kept 7 days; check the tenant id, and give the call UID or afterCall log id)", args[1], args[0])
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(t)
			}
			trace.Render(out, t)
			return nil
		},
	}
	conn.redisFlags(cmd, "Redis holding the traces")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw trace (JSON)")
	return cmd
}
