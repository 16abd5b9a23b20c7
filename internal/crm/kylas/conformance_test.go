package kylas_test

import (
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/kylas"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	crmtest.Run(t, crmtest.Harness{
		Owners:     [2]string{"4242", "5151"},
		Settle:     testSettle,
		LeadSource: "7",
		Setup: func(t *testing.T, o crmtest.Options) (crm.Adapter, crmtest.Backend) {
			sb := newSandbox(t, sandbox.KylasOptions{})
			return adapter(t, sb, o), backend{sb, crmtest.SandboxFaults{S: sb}}
		},
		Another: func(t *testing.T, b crmtest.Backend, o crmtest.Options) crm.Adapter {
			return adapter(t, b.(backend).sb, o)
		},
	})
}

// testSettle is the adapters' search settle time in tests.
const testSettle = 400 * time.Millisecond

// setup starts a sandbox and an adapter pointed at it.
func setup(t *testing.T, opts sandbox.KylasOptions) (*sandbox.Kylas, *kylas.Adapter) {
	t.Helper()
	sb := newSandbox(t, opts)
	return sb, adapter(t, sb, crmtest.Options{})
}

// servers remembers each test sandbox's URL.
var servers sync.Map // *sandbox.Kylas → URL

func newSandbox(t *testing.T, opts sandbox.KylasOptions) *sandbox.Kylas {
	t.Helper()
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	sb := sandbox.NewKylas(withOwners(opts))
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	servers.Store(sb, srv.URL)
	return sb
}

// testOwners are the users this package's calls and tasks are owned by (7, 4242,
// 5151): the sandbox refuses an owner that is not a user, as Kylas does.
var testOwners = []sandbox.KylasUser{
	{ID: 7, FirstName: "Seven", LastName: "Owner", Email: "seven@example.com", Active: true},
	{ID: 4242, FirstName: "Asha", LastName: "Rao", Email: "asha@example.com", Active: true},
	{ID: 5151, FirstName: "Ravi", LastName: "Iyer", Email: "ravi@example.com", Active: true},
}

// withOwners adds the test owners opts' users lack.
func withOwners(opts sandbox.KylasOptions) sandbox.KylasOptions {
	users := slices.Clone(opts.Users)
	for _, u := range testOwners {
		if !slices.ContainsFunc(users, func(v sandbox.KylasUser) bool { return v.ID == u.ID }) {
			users = append(users, u)
		}
	}
	opts.Users = users
	return opts
}

// adapter returns a new adapter (its own caches) on sandbox sb.
func adapter(t *testing.T, sb *sandbox.Kylas, o crmtest.Options) *kylas.Adapter {
	t.Helper()
	u, _ := servers.Load(sb)
	a, err := kylas.New(kylas.Config{BaseURL: u.(string), APIKey: "demo-crm-key", BearerToken: "demo-kylas-oauth",
		SearchSettle: testSettle, Leads: o.Leads, Parties: o.Parties})
	require.NoError(t, err)
	return a
}

func (b backend) Leads(t *testing.T) []crmtest.Lead {
	var out []crmtest.Lead
	for _, p := range b.sb.Leads() {
		_, meta, _ := b.sb.Lead(p.ID)
		l := crmtest.Lead{ID: strconv.FormatInt(p.ID, 10), FirstName: p.FirstName, LastName: p.LastName,
			OwnerID: strconv.FormatInt(meta.OwnerID, 10), Source: strconv.FormatInt(meta.Source, 10)}
		if len(p.PhoneNumbers) > 0 {
			l.Phone = p.PhoneNumbers[0].DialCode + p.PhoneNumbers[0].Value
		}
		out = append(out, l)
	}
	return out
}

type backend struct {
	sb *sandbox.Kylas
	crmtest.SandboxFaults
}

func (b backend) Records(t *testing.T) []crmtest.Record {
	var out []crmtest.Record
	for _, r := range b.sb.Records() {
		rec := crmtest.Record{
			ID: strconv.FormatInt(r.ID, 10), OwnerID: strconv.FormatInt(r.Owner.ID, 10), CallID: r.RemoteID,
			Phone: r.PhoneNumber, Direction: call.Direction(r.CallType), Outcome: r.Outcome,
		}
		if r.CallRecording != nil {
			rec.RecordingURL = r.CallRecording.URL
		}
		if len(r.RelatedTo) > 0 {
			rec.RelatedID, rec.RelatedType = strconv.FormatInt(r.RelatedTo[0].ID, 10), r.RelatedTo[0].Entity
		}
		out = append(out, rec)
	}
	return out
}

// person stores the number as Kylas does: national value, dial code apart.
func person(e164 string) sandbox.KylasPerson {
	ph := sandbox.KylasPhone{Type: "MOBILE", Value: e164, Primary: true}
	if rest, ok := strings.CutPrefix(e164, "+91"); ok {
		ph.Code, ph.DialCode, ph.Value = "IN", "+91", rest
	}
	return sandbox.KylasPerson{FirstName: "Test", LastName: e164, PhoneNumbers: []sandbox.KylasPhone{ph}}
}

func (b backend) AddContact(t *testing.T, e164 string) string {
	return strconv.FormatInt(b.sb.AddContact(person(e164)), 10)
}

func (b backend) AddLead(t *testing.T, e164 string) string {
	return strconv.FormatInt(b.sb.AddLead(person(e164)), 10)
}

func (b backend) DeleteLead(t *testing.T, id string) {
	n, err := strconv.ParseInt(id, 10, 64)
	require.NoError(t, err)
	require.True(t, b.sb.DeleteLead(n), "lead %s", id)
}

func (b backend) DeleteContact(t *testing.T, id string) {
	n, err := strconv.ParseInt(id, 10, 64)
	require.NoError(t, err)
	require.True(t, b.sb.DeleteContact(n), "contact %s", id)
}
