package popup_test

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/crm/zoho"
	"github.com/calltrack/calltrack/internal/popup"
	"github.com/calltrack/calltrack/internal/testenv"
)

// The setup integrates calltrack, maps PhoneBridge users to CRM users by email,
// registers click-to-dial for the mapped ones and stores the map; pop-ups then name
// the PhoneBridge user. Before it, Zoho refuses PhoneBridge calls.
func TestSetupPhoneBridge(t *testing.T) {
	env := testenv.New(t)
	sb := sandbox.NewZoho(sandbox.ZohoOptions{Seed: 1,
		Users: []sandbox.ZohoUser{
			{ID: asha.CRMUserID, FullName: "Asha", Email: "asha@example.com"},
			{ID: sumit.CRMUserID, FullName: "Sumit", Email: "sumit@example.com"},
			{ID: "5725767000000411009", FullName: "Ex", Email: "ex@example.com", Status: "disabled"},
		},
		PhoneBridgeUsers: []sandbox.PhoneBridgeUser{
			{ZohoUser: "pb-1", Name: "Asha", Email: "ASHA@example.com"},
			{ZohoUser: "pb-2", Name: "Stranger", Email: "stranger@example.com"},
		}})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	a, err := zoho.New(zoho.Config{AccountsURL: srv.URL, APIDomain: srv.URL, ClientID: sandbox.ZohoClientID,
		ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken})
	require.NoError(t, err)
	store := popup.PhoneBridgeStore{Redis: env.Redis, Prefix: env.Prefix, Tenant: "acme"}
	n := popup.PhoneBridge{API: a, Users: store}

	_, err = a.PhoneBridgeUsers(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "PROVIDER_NOT_REGISTERED")
	err = n.Notify(t.Context(), live(call.Ringing, call.Incoming), asha)
	assert.ErrorIs(t, err, popup.ErrNoPhoneBridgeUser)
	assert.True(t, crm.IsPermanent(err))

	_, err = popup.SetupPhoneBridge(t.Context(), a, a, store, "", "")
	assert.ErrorContains(t, err, "no click-to-dial URI")

	r, err := popup.SetupPhoneBridge(t.Context(), a, a, store, "https://calltrack.example/webhooks/zoho/acme/clicktodial", "s3cret")
	require.NoError(t, err)
	assert.True(t, r.Integrated)
	assert.Equal(t, 1, r.Mapped)
	assert.Equal(t, []popup.SetupUser{
		{PhoneBridgeID: "pb-1", Email: "ASHA@example.com", CRMUserID: asha.CRMUserID, Status: "registered"},
		{PhoneBridgeID: "pb-2", Email: "stranger@example.com", Status: "no_crm_user"},
	}, r.Users)
	require.Len(t, r.Unmapped, 1, "Sumit has no PhoneBridge user; Ex is disabled")
	assert.Equal(t, sumit.CRMUserID, r.Unmapped[0].ID)
	dial := sb.ClickToDials()
	require.Len(t, dial, 1)
	assert.Equal(t, "https://calltrack.example/webhooks/zoho/acme/clicktodial", dial["pb-1"].URI)
	assert.Contains(t, dial["pb-1"].AuthParam, "s3cret")

	require.NoError(t, n.Notify(t.Context(), live(call.Ringing, call.Incoming), asha))
	got := sb.Notifications()
	require.Len(t, got, 1)
	assert.Equal(t, "pb-1", got[0].ZohoUser, "the PhoneBridge user id, not the CRM user id")
	assert.ErrorIs(t, n.Notify(t.Context(), live(call.Ringing, call.Incoming), sumit), popup.ErrNoPhoneBridgeUser)

	// Run again: same result, the map replaced.
	_, err = popup.SetupPhoneBridge(t.Context(), a, a, store, "https://calltrack.example/cb2", "")
	require.NoError(t, err)
	m, err := store.All(t.Context())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{asha.CRMUserID: "pb-1"}, m)
}

func TestSetupPhoneBridgeOtherProvider(t *testing.T) {
	env := testenv.New(t)
	sb := sandbox.NewZoho(sandbox.ZohoOptions{Seed: 1, OtherPhoneBridgeProvider: true})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	a, err := zoho.New(zoho.Config{AccountsURL: srv.URL, APIDomain: srv.URL, ClientID: sandbox.ZohoClientID,
		ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken})
	require.NoError(t, err)
	_, err = popup.SetupPhoneBridge(t.Context(), a, a, popup.PhoneBridgeStore{Redis: env.Redis, Prefix: env.Prefix, Tenant: "x"},
		"https://calltrack.example/cb", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DIFFERENT_PROVIDER_ALREADY_ENABLED")
	assert.True(t, crm.IsPermanent(err))
}
