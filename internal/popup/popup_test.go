package popup_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/crm/zoho"
	"github.com/calltrack/calltrack/internal/popup"
)

var (
	_ popup.Notifier     = popup.Nop{}
	_ popup.Notifier     = popup.PhoneBridge{}
	_ popup.CallNotifier = (*zoho.Adapter)(nil)
)

// phoneBridge is a PhoneBridge notifier on a Zoho sandbox.
func phoneBridge(t *testing.T) (*sandbox.Zoho, popup.PhoneBridge) {
	t.Helper()
	// PhoneBridge users whose ids are the CRM ids, so that no user map is needed here.
	sb := sandbox.NewZoho(sandbox.ZohoOptions{Seed: 1, PhoneBridgeUsers: []sandbox.PhoneBridgeUser{
		{ZohoUser: asha.CRMUserID, Email: asha.Email}, {ZohoUser: sumit.CRMUserID, Email: sumit.Email}}})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	a, err := zoho.New(zoho.Config{AccountsURL: srv.URL, APIDomain: srv.URL, ClientID: sandbox.ZohoClientID,
		ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken})
	require.NoError(t, err)
	require.NoError(t, a.IntegratePhoneBridge(t.Context()))
	for _, o := range []call.Owner{asha, sumit} {
		require.NoError(t, a.RegisterClickToDial(t.Context(), o.CRMUserID, "https://calltrack.example/cb", ""))
	}
	return sb, popup.PhoneBridge{API: a}
}

var (
	asha   = call.Owner{CRMUserID: "5725767000000411001", Email: "asha@example.com"}
	sumit  = call.Owner{CRMUserID: "5725767000000411002", Email: "sumit@example.com"}
	rungAt = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
)

// live is an inCall for a ring group of Asha and Sumit, both mapped.
func live(state call.LiveState, dir call.Direction) call.Live {
	return call.Live{Tenant: "t", CallID: "n2.1596270949.2175190", Source: "myoperator.v1", State: state, Direction: dir,
		CallerNumber: "+919711636496", DID: "+918000000000", AgentPhones: []string{"+918586848544", "+918586848545"},
		Agents: []call.Agent{{Email: asha.Email, Phone: "+918586848544"}, {Email: sumit.Email, Phone: "+918586848545"}},
		Owners: []call.Owner{asha, sumit}, CallTime: rungAt, ReceivedAt: rungAt.Add(time.Second)}
}

func TestPhoneBridgeCallNotify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                         string
		ev                           call.Live
		owner                        call.Owner
		typ, state, from, to, person string
	}{
		{"incoming ringing, first agent", live(call.Ringing, call.Incoming), asha, "received", "ringing", "+919711636496", "+918586848544", asha.CRMUserID},
		{"incoming ringing, second agent", live(call.Ringing, call.Incoming), sumit, "received", "ringing", "+919711636496", "+918586848545", sumit.CRMUserID},
		{"answered", live(call.LiveAnswered, call.Incoming), sumit, "received", "answered", "+919711636496", "+918586848545", sumit.CRMUserID},
		{"outgoing ringing", live(call.Ringing, call.Outgoing), sumit, "dialed", "ringing", "+918586848545", "+919711636496", sumit.CRMUserID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb, n := phoneBridge(t)
			require.NoError(t, n.Notify(t.Context(), tc.ev, tc.owner))
			got := sb.Notifications()
			require.Len(t, got, 1)
			assert.Equal(t, tc.typ, got[0].Type)
			assert.Equal(t, tc.state, got[0].State)
			assert.Equal(t, "n2.1596270949.2175190", got[0].ID)
			assert.Equal(t, tc.from, got[0].From)
			assert.Equal(t, tc.to, got[0].To)
			assert.Equal(t, tc.person, got[0].ZohoUser)
			assert.Equal(t, "2026-03-14 09:26:53", got[0].StartTime, "GMT, yyyy-MM-dd HH:mm:ss")
			assert.Equal(t, 1, sb.Stats().ByEndpoint["POST /phonebridge/v3/callnotify"])
		})
	}
}

// The exact form sent, as Zoho's docs name the fields.
func TestPhoneBridgeForm(t *testing.T) {
	t.Parallel()
	ev := live(call.Ringing, call.Incoming)
	ev.Agents, ev.Owners, ev.AgentPhones = nil, nil, []string{"918586848544"} // unmapped by index: the only agent phone
	ev.CallTime = time.Time{}
	f, err := popup.PhoneBridge{}.Form(ev, asha, asha.CRMUserID)
	require.NoError(t, err)
	assert.Equal(t, url.Values{
		"type": {"received"}, "state": {"ringing"}, "id": {"n2.1596270949.2175190"}, "from": {"+919711636496"},
		"to": {"+918586848544"}, "zohouser": {asha.CRMUserID}, "start_time": {"2026-03-14 09:26:54"},
	}, f)
	assert.Equal(t, "from=%2B919711636496", url.Values{"from": f["from"]}.Encode(), "+ is encoded")

	ev.AgentPhones = nil // no agent number: the DID the customer dialled
	f, err = popup.PhoneBridge{}.Form(ev, asha, asha.CRMUserID)
	require.NoError(t, err)
	assert.Equal(t, "+918000000000", f.Get("to"))

	ev.CallerNumber = "anonymous"
	_, err = popup.PhoneBridge{}.Form(ev, asha, asha.CRMUserID)
	assert.ErrorIs(t, err, popup.ErrNoNumber)
	err = popup.PhoneBridge{}.Notify(t.Context(), ev, asha)
	assert.True(t, crm.IsPermanent(err), "%v", err)
}

func TestPhoneBridgeErrorsClassified(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadRequest} {
		sb, n := phoneBridge(t)
		require.NoError(t, sb.SetFaults(sandbox.Faults{ErrorRate: 1, Status: status}))
		err := n.Notify(t.Context(), live(call.Ringing, call.Incoming), asha)
		require.Error(t, err)
		assert.Equal(t, status, crm.HTTPStatus(err))
		assert.Equal(t, status == http.StatusBadRequest, crm.IsPermanent(err), "%d: %v", status, err)
		assert.Empty(t, sb.Notifications())
	}
}

// Ended and missed are not sent: PhoneBridge would log the call itself, and the
// writer's Calls record is the call's one record.
func TestPhoneBridgeLeavesTheRecordToTheWriter(t *testing.T) {
	t.Parallel()
	sb, n := phoneBridge(t)
	for _, ev := range []call.Live{live(call.Ended, call.Incoming), live(call.LiveMissed, call.Incoming), live(call.LiveMissed, call.Outgoing)} {
		require.NoError(t, n.Notify(t.Context(), ev, asha))
	}
	assert.Empty(t, sb.Notifications())
	assert.Empty(t, sb.Records(), "no Calls record logged by PhoneBridge")
}

func TestNop(t *testing.T) {
	t.Parallel()
	assert.NoError(t, popup.Nop{}.Notify(t.Context(), live(call.Ringing, call.Incoming), asha))
}

// pbMap is a PhoneBridge user map held in memory (the setup's map, as stored).
type pbMap map[string]string

func (m pbMap) PhoneBridgeUser(_ context.Context, crmUserID string) (string, bool, error) {
	pb, ok := m[crmUserID]
	return pb, ok, nil
}

// A call that rings two agents whose PhoneBridge ids differ from their CRM ids:
// each pop-up names the agent's own number (found by the CRM user id in the event's
// owners) and the PhoneBridge user id as zohouser — never the DID, never the CRM id.
func TestPhoneBridgeTwoAgentsWithUserMap(t *testing.T) {
	t.Parallel()
	const pbAsha, pbSumit = "pb-5725767000000411001", "pb-5725767000000411002"
	users := pbMap{asha.CRMUserID: pbAsha, sumit.CRMUserID: pbSumit}
	noDID := func(ev call.Live) call.Live { ev.DID = ""; return ev }
	cases := []struct {
		name                         string
		ev                           call.Live
		owner                        call.Owner
		typ, state, from, to, person string
	}{
		{"ringing, first agent", live(call.Ringing, call.Incoming), asha, "received", "ringing", "+919711636496", "+918586848544", pbAsha},
		{"ringing, second agent", live(call.Ringing, call.Incoming), sumit, "received", "ringing", "+919711636496", "+918586848545", pbSumit},
		{"ringing, second agent, no DID", noDID(live(call.Ringing, call.Incoming)), sumit, "received", "ringing", "+919711636496", "+918586848545", pbSumit},
		{"answered by the first agent", live(call.LiveAnswered, call.Incoming), asha, "received", "answered", "+919711636496", "+918586848544", pbAsha},
		{"outgoing, second agent", live(call.Ringing, call.Outgoing), sumit, "dialed", "ringing", "+918586848545", "+919711636496", pbSumit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := sandbox.NewZoho(sandbox.ZohoOptions{Seed: 1, PhoneBridgeUsers: []sandbox.PhoneBridgeUser{
				{ZohoUser: pbAsha, Email: asha.Email}, {ZohoUser: pbSumit, Email: sumit.Email}}})
			srv := httptest.NewServer(sb)
			t.Cleanup(srv.Close)
			a, err := zoho.New(zoho.Config{AccountsURL: srv.URL, APIDomain: srv.URL, ClientID: sandbox.ZohoClientID,
				ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken})
			require.NoError(t, err)
			require.NoError(t, a.IntegratePhoneBridge(t.Context()))
			for _, pb := range []string{pbAsha, pbSumit} {
				require.NoError(t, a.RegisterClickToDial(t.Context(), pb, "https://calltrack.example/cb", ""))
			}
			n := popup.PhoneBridge{API: a, Users: users}
			require.NoError(t, n.Notify(t.Context(), tc.ev, tc.owner))
			got := sb.Notifications()
			require.Len(t, got, 1)
			assert.Equal(t, tc.typ, got[0].Type)
			assert.Equal(t, tc.state, got[0].State)
			assert.Equal(t, tc.from, got[0].From)
			assert.Equal(t, tc.to, got[0].To, "the rung agent's own number")
			assert.Equal(t, tc.person, got[0].ZohoUser, "the PhoneBridge user id")

			f, err := n.Form(tc.ev, tc.owner, tc.person)
			require.NoError(t, err)
			assert.Equal(t, tc.person, f.Get("zohouser"))
		})
	}
}
