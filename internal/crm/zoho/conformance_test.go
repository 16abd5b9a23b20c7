package zoho_test

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/crm/zoho"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	crmtest.Run(t, crmtest.Harness{
		Owners:     [2]string{"5725767000000411001", "5725767000000411002"},
		Settle:     testSettle,
		LeadSource: "Cold Call",
		Setup: func(t *testing.T, o crmtest.Options) (crm.Adapter, crmtest.Backend) {
			sb, a, url := setup(t, sandbox.ZohoOptions{}, func(c *zoho.Config) { c.Leads, c.Parties = o.Leads, o.Parties })
			return a, backend{sb, crmtest.SandboxFaults{S: sb}, url}
		},
		Another: func(t *testing.T, b crmtest.Backend, o crmtest.Options) crm.Adapter {
			u := b.(backend).url
			a, err := zoho.New(zoho.Config{AccountsURL: u, APIDomain: u, ClientID: sandbox.ZohoClientID,
				ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken, Linger: 10 * time.Millisecond,
				SearchSettle: testSettle, Leads: o.Leads, Parties: o.Parties})
			require.NoError(t, err)
			return a
		},
	})
}

// testSettle is the adapter's search settle time in tests.
const testSettle = 400 * time.Millisecond

// setup starts a sandbox and an adapter pointed at it (in-process token store and
// a short linger unless edit says otherwise).
func setup(t *testing.T, opts sandbox.ZohoOptions, edit func(*zoho.Config)) (*sandbox.Zoho, *zoho.Adapter, string) {
	t.Helper()
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Users == nil { // the calls' owners are users: the sandbox refuses an Owner that is not
		opts.Users = []sandbox.ZohoUser{{ID: owner, FullName: "Asha Rao", Email: "asha@example.com"},
			{ID: "5725767000000411002", FullName: "Ravi Iyer", Email: "ravi@example.com"}}
	}
	sb := sandbox.NewZoho(opts)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	cfg := zoho.Config{AccountsURL: srv.URL, APIDomain: srv.URL, ClientID: sandbox.ZohoClientID,
		ClientSecret: sandbox.ZohoClientSecret, RefreshToken: sandbox.ZohoRefreshToken, Linger: 10 * time.Millisecond,
		SearchSettle: testSettle}
	if edit != nil {
		edit(&cfg)
	}
	a, err := zoho.New(cfg)
	require.NoError(t, err)
	return sb, a, srv.URL
}

type backend struct {
	sb *sandbox.Zoho
	crmtest.SandboxFaults
	url string
}

func (b backend) Leads(t *testing.T) []crmtest.Lead {
	var out []crmtest.Lead
	for _, p := range b.sb.Leads() {
		out = append(out, crmtest.Lead{ID: p.ID, FirstName: p.FirstName, LastName: p.LastName, OwnerID: p.OwnerID,
			Source: p.LeadSource, Phone: p.Phone})
	}
	return out
}

var (
	descCustomer = regexp.MustCompile(`(?m)^Customer: (\S+)$`)
	descCallID   = regexp.MustCompile(`(?m)^Call ID: (\S+)$`)
)

// descField reads one "Key: value" line of a description.
func descField(re *regexp.Regexp, desc string) string {
	if m := re.FindStringSubmatch(desc); m != nil {
		return m[1]
	}
	return ""
}

func (b backend) Records(t *testing.T) []crmtest.Record {
	var out []crmtest.Record
	for _, r := range b.sb.Records() {
		rec := crmtest.Record{
			ID: r.ID, OwnerID: r.Owner.ID, Outcome: r.CallType, RecordingURL: r.VoiceRecording,
			// Zoho's Calls module has no field for the number or our id: they are in the description.
			Phone: descField(descCustomer, r.Description), CallID: descField(descCallID, r.Description),
			Direction: map[string]call.Direction{"Inbound": call.Incoming, "Missed": call.Incoming, "Outbound": call.Outgoing}[r.CallType],
		}
		switch {
		case r.WhoID != nil:
			rec.RelatedID, rec.RelatedType = r.WhoID.ID, "contact"
		case r.WhatID != nil && r.SEModule == "Leads":
			rec.RelatedID, rec.RelatedType = r.WhatID.ID, "lead"
		}
		out = append(out, rec)
	}
	return out
}

// Contacts are stored in E.164 and leads as bare 10-digit numbers, as people
// type them: the adapter must find both.
func (b backend) AddContact(t *testing.T, e164 string) string {
	return b.sb.AddContact(sandbox.ZohoPerson{LastName: "Contact " + e164, Phone: e164})
}

func (b backend) AddLead(t *testing.T, e164 string) string {
	return b.sb.AddLead(sandbox.ZohoPerson{LastName: "Lead " + e164, Mobile: strings.TrimPrefix(e164, "+91")})
}

func (b backend) DeleteLead(t *testing.T, id string) {
	require.True(t, b.sb.DeleteLead(id), "lead %s", id)
}

func (b backend) DeleteContact(t *testing.T, id string) {
	require.True(t, b.sb.DeleteContact(id), "contact %s", id)
}
