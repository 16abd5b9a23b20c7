package callwriter_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/callpolicy"
	"github.com/calltrack/calltrack/internal/callwriter"
	"github.com/calltrack/calltrack/internal/crm"
	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/trace"
)

// fakeFollowUps records which calls asked for their follow-up task, failing as told.
type fakeFollowUps struct {
	calls []call.Log
	errs  []error // returned in turn; nil once spent
}

func (f *fakeFollowUps) Ensure(_ context.Context, t *tenant.Tenant, l *call.Log) (string, error) {
	if !callpolicy.Wanted(t, l) {
		return "", nil
	}
	f.calls = append(f.calls, *l)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return "", err
	}
	return callpolicy.TaskWritten, nil
}

// withPolicy gives the fixture's tenant a call policy and a follow-up service.
func withPolicy(f *fixture, fallback string, p tenant.CallPolicy) *fakeFollowUps {
	fu := &fakeFollowUps{}
	f.svc.Tenants = tenant.NewRegistry(&tenant.Tenant{ID: acme, FallbackOwner: fallback, Calls: p})
	f.svc.FollowUps = fu
	return fu
}

func missed(l *call.Log) *call.Log { l.Status, l.Duration = call.Missed, 0; return l }

// Call policies and fallback owners, decided by the service.
func TestServicePolicies(t *testing.T) {
	skipMissed := tenant.CallPolicy{Actions: map[tenant.Category]tenant.Action{tenant.CategoryMissed: tenant.ActionSkip}}
	taskMissed := tenant.CallPolicy{Actions: map[tenant.Category]tenant.Action{tenant.CategoryMissed: tenant.ActionLogAndTask},
		Departments: map[string]string{"sales": "1002"}}

	t.Run("a skipped call writes nothing and is not parked; its trace says why", func(t *testing.T) {
		f := newFixture()
		withPolicy(f, "", skipMissed)
		out, err := f.svc.WriteLog(context.Background(), missed(unmapped()))
		require.NoError(t, err)
		assert.Equal(t, callwriter.Skipped, out)
		assert.Empty(t, f.crm.byCall(callID))
		_, parked := f.parking.has(acme, callID)
		assert.False(t, parked)
		assert.Equal(t, []string{callpolicy.StatusSkipped}, f.trace.statuses(acme, callID))
		assert.Contains(t, f.trace.stages(acme, callID), callpolicy.StageSkipped)
	})
	t.Run("an answered call is logged whatever the policy for missed calls", func(t *testing.T) {
		f := newFixture()
		withPolicy(f, "", skipMissed)
		out, err := f.svc.WriteLog(context.Background(), v1())
		require.NoError(t, err)
		assert.Equal(t, callwriter.Written, out)
		assert.Len(t, f.crm.byCall(callID), 1)
	})
	t.Run("a written call stays written when a later version would be skipped", func(t *testing.T) {
		f := newFixture()
		_, err := f.svc.WriteLog(context.Background(), v1())
		require.NoError(t, err)
		withPolicy(f, "", skipMissed)
		out, err := f.svc.WriteLog(context.Background(), missed(v1()))
		require.NoError(t, err)
		assert.NotEqual(t, callwriter.Skipped, out)
		assert.Len(t, f.crm.byCall(callID), 1)
		assert.NotContains(t, f.trace.statuses(acme, callID), callpolicy.StatusSkipped)
	})
	t.Run("an unmapped agent's call goes to its department's owner, marked as a fallback", func(t *testing.T) {
		f := newFixture()
		withPolicy(f, "9999", taskMissed)
		l := unmapped()
		l.Department = "sales"
		out, err := f.svc.WriteLog(context.Background(), l)
		require.NoError(t, err)
		assert.Equal(t, callwriter.Written, out)
		recs := f.crm.byCall(callID)
		require.Len(t, recs, 1)
		assert.Equal(t, "1002", recs[0].call.OwnerID)
		assert.Equal(t, call.OwnerDepartment, recs[0].call.Log.Owner.Source)
		written := f.trace.updates[acme+":"+callID]
		require.NotEmpty(t, written)
		assert.Contains(t, written[len(written)-1].Stage.Detail, "department sales's fallback owner 1002")
	})
	t.Run("an unmapped agent's call outside any department goes to the tenant's fallback owner", func(t *testing.T) {
		f := newFixture()
		withPolicy(f, "9999", taskMissed)
		_, err := f.svc.WriteLog(context.Background(), unmapped())
		require.NoError(t, err)
		recs := f.crm.byCall(callID)
		require.Len(t, recs, 1)
		assert.Equal(t, "9999", recs[0].call.OwnerID)
		assert.Equal(t, call.OwnerFallback, recs[0].call.Log.Owner.Source)
	})
	t.Run("log_and_task asks for the written call's task; an answered call gets none", func(t *testing.T) {
		f := newFixture()
		fu := withPolicy(f, "", taskMissed)
		_, err := f.svc.WriteLog(context.Background(), missed(v1()))
		require.NoError(t, err)
		require.Len(t, fu.calls, 1)
		assert.Equal(t, "1001", fu.calls[0].Owner.CRMUserID)

		g := newFixture()
		fu = withPolicy(g, "", taskMissed)
		_, err = g.svc.WriteLog(context.Background(), v1())
		require.NoError(t, err)
		assert.Empty(t, fu.calls)
	})

	// A task that fails fails the delivery the way the record's own failure would; the
	// redelivery finds the record written (one record) and asks for the task again.
	cases := []struct {
		name          string
		err           error
		wantErr       error
		wantNot       error
		wantPermanent bool
	}{
		{name: "task create too recent to look up: settle", err: callpolicy.ErrTaskSettling, wantErr: callwriter.ErrSettling},
		{name: "task create with no answer: outcome unknown", err: callpolicy.ErrTaskOutcomeUnknown,
			wantErr: callwriter.ErrOutcomeUnknown, wantNot: callwriter.ErrSettling},
		{name: "task held by another worker: busy", err: callpolicy.ErrBusy, wantErr: callwriter.ErrBusy},
		{name: "task refused by the CRM: the CRM's error", err: &crm.Error{Op: "create task", Status: 400, Permanent: true,
			Err: errors.New("invalid")}, wantPermanent: true},
		{name: "task store down: calltrack's own failure", err: errors.New("redis: connection refused"), wantErr: callwriter.ErrInfra},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			fu := withPolicy(f, "", taskMissed)
			fu.errs = []error{tc.err}
			_, err := f.svc.WriteLog(context.Background(), missed(v1()))
			require.Error(t, err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			if tc.wantNot != nil {
				require.NotErrorIs(t, err, tc.wantNot)
			}
			assert.Equal(t, tc.wantPermanent, crm.IsPermanent(err))
			out, err := f.svc.WriteLog(context.Background(), missed(v1()))
			require.NoError(t, err)
			assert.Equal(t, callwriter.Duplicate, out)
			assert.Len(t, f.crm.byCall(callID), 1, "one record")
			assert.Len(t, fu.calls, 2, "the task asked for again")
			assert.Contains(t, f.trace.statuses(acme, callID), trace.StatusWritten)
		})
	}
}
