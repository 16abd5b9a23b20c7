package call

import (
	"errors"
	"strings"
	"testing"
)

// A CRM user id is held to the form its CRM writes it in (docs/crm-contracts.md,
// "User ids"): text a lenient number parser would read as an id is not one.
func TestValidateCRMUserID(t *testing.T) {
	for _, tc := range []struct {
		kind, id string
		ok       bool
	}{
		{CRMKylas, "1001", true},
		{CRMKylas, "9223372036854775807", true},
		{CRMKylas, "9223372036854775808", false}, // past int64: the adapter cannot send it
		{CRMKylas, "0", false},
		{CRMKylas, "007", false},
		{CRMKylas, "+5", false},
		{CRMKylas, "-1", false},
		{CRMKylas, "1e3", false},
		{CRMKylas, " 7", false},
		{CRMKylas, "7 ", false},
		{CRMKylas, "", false},
		{CRMKylas, "sumit", false},
		{CRMZoho, "1386586000000078001", true},
		{CRMZoho, strings.Repeat("9", MaxZohoIDLen), true},
		{CRMZoho, strings.Repeat("9", MaxZohoIDLen+1), false},
		{CRMZoho, "+1386586000000078001", false},
		{CRMZoho, "1386586000000078001 ", false},
		{CRMZoho, "", false},
		{CRMZoho, "zuid-1", false},
		{"", "anything", true}, // a CRM whose id form calltrack does not know
	} {
		err := ValidateCRMUserID(tc.kind, tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateCRMUserID(%q, %q) = %v, want ok=%v", tc.kind, tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidCRMUserID) {
			t.Errorf("ValidateCRMUserID(%q, %q) = %v, not ErrInvalidCRMUserID", tc.kind, tc.id, err)
		}
	}
}
