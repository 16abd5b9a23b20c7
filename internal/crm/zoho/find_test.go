package zoho_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/crm/crmtest"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/crm/zoho"
)

// With crm.call_id_field the call id goes to that single-line custom field, the
// Subject stays plain, and FindCall queries the field with =.
func TestFindByCustomField(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{CustomFields: []string{"Calltrack_Call_ID"}},
		func(c *zoho.Config) { c.CallIDField = "Calltrack_Call_ID" })
	c := crmtest.NewCall("cf-1", "+919711636496", owner, call.Incoming, call.Answered)
	id, err := a.CreateCall(t.Context(), c)
	require.NoError(t, err)
	r := sb.Records()[0]
	assert.Equal(t, "cf-1", r.Custom["Calltrack_Call_ID"])
	assert.NotContains(t, r.Subject, "[cf-1]")

	got, found, err := a.FindCall(t.Context(), c)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, id, got)
	_, found, err = a.FindCall(t.Context(), crmtest.NewCall("cf-2", "+919711636496", owner, call.Incoming, call.Answered))
	require.NoError(t, err)
	assert.False(t, found)
}

// A long subject is cut so that the call id suffix survives whole within 255 characters.
func TestSubjectKeepsCallID(t *testing.T) {
	t.Parallel()
	sb, a, _ := setup(t, sandbox.ZohoOptions{}, nil)
	c := crmtest.NewCall("long-subject-call-id", "+919711636496", owner, call.Incoming, call.Answered)
	c.Log.Department = strings.Repeat("d", 300)
	_, err := a.CreateCall(t.Context(), c)
	require.NoError(t, err)
	subj := []rune(sb.Records()[0].Subject)
	assert.LessOrEqual(t, len(subj), 255)
	assert.True(t, len(subj) > 20 && string(subj[len(subj)-len(" [long-subject-call-id]"):]) == " [long-subject-call-id]", "%s", string(subj))
	_, found, err := a.FindCall(t.Context(), c)
	require.NoError(t, err)
	assert.True(t, found)
}
