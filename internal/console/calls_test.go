package console

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/calltrack/calltrack/internal/tenant"
)

func TestRecordURL(t *testing.T) {
	zoho := func(accounts, org string) *tenant.Tenant {
		return &tenant.Tenant{CRM: tenant.CRM{Kind: "zoho", Zoho: tenant.Zoho{AccountsURL: accounts, OrgDomain: org}}}
	}
	for _, tc := range []struct {
		t    *tenant.Tenant
		want string
	}{
		{zoho("https://accounts.zoho.in", "org74822955"), "https://crm.zoho.in/crm/org74822955/tab/Calls/5725767000000411001"},
		{zoho("https://accounts.zohocloud.ca", "org110001007505"), "https://crm.zohocloud.ca/crm/org110001007505/tab/Calls/5725767000000411001"},
		{zoho("https://accounts.zoho.in", ""), ""},                                            // no org segment: no link that may not open
		{zoho("http://127.0.0.1:8080/sandbox/zoho", "org1"), ""},                              // not a Zoho data centre
		{&tenant.Tenant{CRM: tenant.CRM{Kind: "kylas", BaseURL: "https://api.kylas.io"}}, ""}, // no documented Kylas record URL
	} {
		assert.Equal(t, tc.want, RecordURL(tc.t, "5725767000000411001"))
		if tc.want == "" {
			assert.NotEmpty(t, recordNote(tc.t), "the console says why there is no link")
		}
	}
	assert.Empty(t, RecordURL(zoho("https://accounts.zoho.in", "org74822955"), ""))
}
