package zoho_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/sandbox"
)

// An org bigger than a page: every PhoneBridge user comes back, not the first page's
// (the setup maps only the users it lists; one missed has no pop-ups, no click-to-dial).
func TestPhoneBridgeUsersEveryPage(t *testing.T) {
	t.Parallel()
	var users []sandbox.PhoneBridgeUser
	for i := range 2345 {
		users = append(users, sandbox.PhoneBridgeUser{ZohoUser: fmt.Sprintf("pb-%d", i), Name: fmt.Sprint("User ", i),
			Email: fmt.Sprintf("u%d@example.com", i)})
	}
	sb, a, url := setup(t, sandbox.ZohoOptions{PhoneBridgeUsers: users}, nil)
	require.NoError(t, a.IntegratePhoneBridge(t.Context()))
	got, err := a.PhoneBridgeUsers(t.Context())
	require.NoError(t, err)
	require.Len(t, got, len(users))
	assert.Equal(t, "pb-0", got[0].ID)
	assert.Equal(t, "pb-2344", got[len(got)-1].ID)
	assert.Equal(t, "u1000@example.com", got[1000].Email, "the second page follows the first")
	assert.Equal(t, 4, sb.Stats().ByEndpoint["GET /phonebridge/v3/users"], "three pages of 1000, then an empty one")

	// The sandbox holds perPage to Zoho's range, and reads one page (200) when not told.
	for _, q := range []string{"perPage=1001", "perPage=0", "page=0", "page=x"} {
		req, _ := http.NewRequest(http.MethodGet, url+"/phonebridge/v3/users?"+q, nil)
		req.Header.Set("Authorization", "Zoho-oauthtoken "+sandbox.ZohoAccessToken)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, q)
	}
}
