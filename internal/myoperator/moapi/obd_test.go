package moapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/myoperator/sandbox"
)

// The outbound-call client against the strict sandbox: accepted calls give
// MyOperator's unique_id; refusals are permanent *Error with MyOperator's details and
// no secret in the text; a server error is not permanent.
func TestOBDPlace(t *testing.T) {
	mo := sandbox.New(sandbox.Options{OBDAccounts: []sandbox.OBDAccount{{CompanyID: "c1", APIKey: "the-x-api-key",
		SecretToken: "the-secret-token", PublicIVRID: "ivr1"}}})
	mo.PutUser(sandbox.User{ID: "u-off", Enabled: false})
	srv := httptest.NewServer(mo)
	t.Cleanup(srv.Close)
	t.Cleanup(mo.WaitOBD)
	o := &moapi.OBD{URL: srv.URL + "/obd-api-v1", APIKey: "the-x-api-key", SecretToken: "the-secret-token", CompanyID: "c1",
		PublicIVRID: "ivr1", MaxCallDuration: 600, CallerID: "+911206544510"}
	ctx := context.Background()

	id, err := o.Place(ctx, moapi.Dial{UserID: "u1", Number: "+919711636496", ReferenceID: "c2c-1"})
	require.NoError(t, err)
	assert.NotEmpty(t, id)
	require.Len(t, mo.OBDCalls(), 1)
	assert.Equal(t, "u1", mo.OBDCalls()[0].UserID)

	for _, tc := range []struct {
		name string
		o    moapi.OBD
		d    moapi.Dial
		msg  string
	}{
		{"duplicate reference", *o, moapi.Dial{UserID: "u1", Number: "+919711636496", ReferenceID: "c2c-1"}, "duplicate reference_id"},
		{"disabled user", *o, moapi.Dial{UserID: "u-off", Number: "+919711636496", ReferenceID: "c2c-2"}, "user is disabled"},
		{"wrong secret", func() moapi.OBD { x := *o; x.SecretToken = "other-secret"; return x }(),
			moapi.Dial{UserID: "u1", Number: "+919711636496", ReferenceID: "c2c-3"}, "invalid credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.o.Place(ctx, tc.d)
			var me *moapi.Error
			require.True(t, errors.As(err, &me), "%v", err)
			assert.True(t, me.Permanent)
			assert.Equal(t, http.StatusForbidden, me.Status)
			assert.Contains(t, me.Message, tc.msg)
			for _, secret := range []string{"the-x-api-key", "the-secret-token", "other-secret"} {
				assert.NotContains(t, err.Error(), secret)
			}
		})
	}

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream", http.StatusBadGateway)
	}))
	t.Cleanup(down.Close)
	x := *o
	x.URL = down.URL
	_, err = x.Place(ctx, moapi.Dial{UserID: "u1", Number: "+919711636496", ReferenceID: "c2c-9"})
	var me *moapi.Error
	require.True(t, errors.As(err, &me))
	assert.False(t, me.Permanent, "a 502 may succeed later")
	assert.False(t, strings.Contains(err.Error(), "the-secret-token"))
}
