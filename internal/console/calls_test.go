package console

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/calltrack/calltrack/internal/tenant"
)

func TestRecordURL(t *testing.T) {
	zoho := &tenant.Tenant{CRM: tenant.CRM{Kind: "zoho", Zoho: tenant.Zoho{APIDomain: "https://www.zohoapis.in"}}}
	assert.Equal(t, "https://crm.zoho.in/crm/tab/Calls/5725767000000411001", RecordURL(zoho, "5725767000000411001"))
	assert.Empty(t, RecordURL(zoho, ""))
	assert.Empty(t, RecordURL(&tenant.Tenant{CRM: tenant.CRM{Kind: "kylas", BaseURL: "https://api.kylas.io"}}, "77"), "no documented Kylas record URL")
	assert.Empty(t, RecordURL(&tenant.Tenant{CRM: tenant.CRM{Kind: "zoho", Zoho: tenant.Zoho{APIDomain: "http://127.0.0.1:8080/sandbox/zoho"}}}, "77"))
}
