package mapping_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/mapping"
	"github.com/calltrack/calltrack/internal/testenv"
)

// ByCRMUser finds every agent mapped to a CRM user, whatever its status, in that
// tenant only.
func TestByCRMUser(t *testing.T) {
	env := testenv.New(t)
	s := mapping.NewStore(env.Redis, env.Prefix)
	ctx := context.Background()
	for _, m := range []call.Mapping{
		{MyOperatorUserID: "a1", CRMUserID: "1001", Source: call.MappingManual, Status: call.MappingActive},
		{MyOperatorUserID: "a2", CRMUserID: "1002", Source: call.MappingManual, Status: call.MappingActive},
		{MyOperatorUserID: "a3", CRMUserID: "1001", Source: call.MappingEmailMatch, Status: call.MappingSuspended},
	} {
		require.NoError(t, s.Put(ctx, "acme", m))
	}
	require.NoError(t, s.Put(ctx, "beta", call.Mapping{MyOperatorUserID: "b1", CRMUserID: "1001", Source: call.MappingManual, Status: call.MappingActive}))

	got, err := s.ByCRMUser(ctx, "acme", "1001")
	require.NoError(t, err)
	ids := []string{}
	for _, m := range got {
		ids = append(ids, m.MyOperatorUserID+"/"+m.Status)
	}
	assert.Equal(t, []string{"a1/active", "a3/suspended"}, ids)

	got, err = s.ByCRMUser(ctx, "acme", "9999")
	require.NoError(t, err)
	assert.Empty(t, got)
	got, err = s.ByCRMUser(ctx, "acme", "")
	require.NoError(t, err)
	assert.Empty(t, got)
}
