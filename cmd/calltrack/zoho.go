package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/calltrack/calltrack/internal/app"
	"github.com/calltrack/calltrack/internal/config"
)

func zohoCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "zoho", Short: "Zoho CRM set-up tasks"}
	pb := &cobra.Command{Use: "phonebridge", Short: "Zoho PhoneBridge (live call pop-ups)"}
	var tenantID, callback string
	setup := &cobra.Command{
		Use:   "setup --tenant T",
		Short: "Make calltrack the org's PhoneBridge provider, map PhoneBridge users to CRM users, register click-to-dial",
		Long: `setup integrates calltrack as the tenant's Zoho PhoneBridge provider, lists the
PhoneBridge users, maps each to the CRM user with the same email, registers the
click-to-dial URI (crm.clicktodial_uri, else <CALLTRACK_PUBLIC_URL>/webhooks/zoho/<tenant>/clicktodial,
or --callback-uri) for each mapped user — which enables their pop-ups — and stores the map
the pop-up notifier uses (Redis). It prints the report as JSON. Run it again after users
change. The admin endpoint POST /admin/v1/tenants/{tenant}/phonebridge/setup does the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenantID == "" {
				return usageError{errors.New("--tenant is required")}
			}
			a, err := open(cmd.Context(), config.Need{Kafka: true, Redis: true, Tenants: true})
			if err != nil {
				return err
			}
			defer a.Close()
			r, err := a.SetupPhoneBridge(cmd.Context(), tenantID, callback)
			if errors.Is(err, app.ErrNoSuchTenant) || errors.Is(err, app.ErrNotZoho) {
				return usageError{err}
			}
			out, _ := json.MarshalIndent(r, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return err
		},
	}
	setup.Flags().StringVar(&tenantID, "tenant", "", "the Zoho tenant")
	setup.Flags().StringVar(&callback, "callback-uri", "", "click-to-dial URI to register (default: the tenant's crm.clicktodial_uri or CALLTRACK_PUBLIC_URL's)")
	pb.AddCommand(setup)
	cmd.AddCommand(pb)
	return cmd
}
