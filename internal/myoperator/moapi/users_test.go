package moapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/myoperator/sandbox"
)

func TestUsersAgainstSandbox(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Token: "tok-123"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	// More than one page, so paging through next_page is exercised.
	n := sandbox.UsersPageSize + 5
	for i := range n {
		sb.PutUser(sandbox.User{ID: fmt.Sprintf("5cd40f6556f2f%03d", i), Name: fmt.Sprintf("Agent %d", i),
			Email: fmt.Sprintf("agent%d@example.com", i), ContactNumber: fmt.Sprintf("98585%05d", i), Enabled: i != 3})
	}
	sb.PutUser(sandbox.User{ID: "5cd40f6556f2f000", Name: "Agent Zero", Email: "zero@example.com", ContactNumber: "9858500000",
		AlternateNumber: "+14155550100", Extension: "10", Enabled: true})

	var src directory.Source = moapi.New(srv.URL, "tok-123")
	users, err := src.Users(t.Context())
	require.NoError(t, err)
	require.Len(t, users, n, "every user of every page, once")
	assert.Equal(t, directory.User{ID: "5cd40f6556f2f000", Name: "Agent Zero", Email: "zero@example.com",
		Phones: []string{"+919858500000", "+14155550100"}, Active: true,
		Fields: map[string]string{"uuid": users[0].Fields["uuid"], "extension": "10"}}, users[0])
	assert.NotEmpty(t, users[0].Fields["uuid"])
	assert.False(t, users[3].Active, "is_enabled 0")
	assert.True(t, users[n-1].Active)
	assert.Equal(t, "agent24@example.com", users[n-1].Email)
}

func TestUsersErrorsHideToken(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(sandbox.New(sandbox.Options{Token: "right"}))
	t.Cleanup(srv.Close)

	_, err := moapi.New(srv.URL, "wrong-secret").Users(t.Context())
	var me *moapi.Error
	require.ErrorAs(t, err, &me)
	assert.True(t, me.Permanent, "a bad token is not worth retrying")
	assert.Equal(t, http.StatusBadRequest, me.Status)
	assert.Contains(t, err.Error(), "not an authorized request")
	assert.NotContains(t, err.Error(), "wrong-secret")

	// A transport error must not quote the URL, which carries the token.
	_, err = moapi.New("http://127.0.0.1:1", "secret-in-url").Users(t.Context())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret-in-url")
	require.ErrorAs(t, err, &me)
	assert.False(t, me.Permanent)

	_, err = moapi.New(srv.URL, "").Users(t.Context())
	assert.ErrorContains(t, err, "no API token")
}

// MyOperator sends flags and numbers as strings or numbers, and ends paging with a
// null, missing or repeated next_page.
func TestUsersLenientShapes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("page") {
		case "1":
			fmt.Fprint(w, `{"status":"success","code":200,"data":[{"user_id":"a1","name":"A","contact_number":9858548544,"is_enabled":1,"email":null},
				{"user_id":"a2","name":"B","contact_number":"","is_enabled":"0","email":"b@example.com","uuid":{"x":1}}],"next_page":"2"}`)
		case "2":
			fmt.Fprint(w, `{"status":"success","data":[{"user_id":"a3","is_enabled":true,"country_code":"1","contact_number":"4155550100"}],"next_page":2}`)
		default:
			t.Errorf("unexpected page %q", r.URL.RawQuery)
		}
	}))
	t.Cleanup(srv.Close)
	users, err := moapi.New(srv.URL, "t").Users(t.Context())
	require.NoError(t, err)
	require.Len(t, users, 3)
	assert.Equal(t, []string{"+919858548544"}, users[0].Phones)
	assert.True(t, users[0].Active)
	assert.Empty(t, users[0].Email)
	assert.False(t, users[1].Active)
	assert.Empty(t, users[1].Phones)
	assert.True(t, users[2].Active)
	assert.Equal(t, []string{"+14155550100"}, users[2].Phones)

	// status "error" with HTTP 200 is a failure too.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"error","code":401,"message":"token expired"}`)
	}))
	t.Cleanup(bad.Close)
	_, err = moapi.New(bad.URL, "t").Users(t.Context())
	var me *moapi.Error
	require.True(t, errors.As(err, &me))
	assert.True(t, strings.Contains(err.Error(), "token expired"))
}
