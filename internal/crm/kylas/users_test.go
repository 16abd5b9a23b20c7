package kylas_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/crm/kylas"
	"github.com/calltrack/calltrack/internal/crm/sandbox"
	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/directory/directorytest"
)

type usersBackend struct {
	sb     *sandbox.Kylas
	url    string
	nextID atomic.Int64
}

func (b *usersBackend) Put(t *testing.T, id string, s directorytest.Seed) string {
	n := b.nextID.Add(1) + 1000
	if id != "" {
		n, _ = strconv.ParseInt(id, 10, 64)
	}
	first, last, _ := strings.Cut(s.Name, " ")
	b.sb.AddUser(sandbox.KylasUser{ID: n, FirstName: first, LastName: last, Email: s.Email, Active: s.Active})
	return strconv.FormatInt(n, 10)
}

func (b *usersBackend) Remove(t *testing.T, id string) {
	n, _ := strconv.ParseInt(id, 10, 64)
	require.True(t, b.sb.RemoveUser(n))
}

func (b *usersBackend) Source(t *testing.T) directory.Source {
	a, err := kylas.New(kylas.Config{BaseURL: b.url, APIKey: "demo-crm-key"})
	require.NoError(t, err)
	return a
}

func TestUsersConformance(t *testing.T) {
	directorytest.Run(t, func(t *testing.T) directorytest.Backend {
		sb := sandbox.NewKylas(sandbox.KylasOptions{})
		srv := httptest.NewServer(sb)
		t.Cleanup(srv.Close)
		return &usersBackend{sb: sb, url: srv.URL}
	})
}

// Real Kylas documents no users listing: lookup + GET /v1/users/{id} must do.
func TestUsersFallBackToLookup(t *testing.T) {
	t.Parallel()
	sb := sandbox.NewKylas(sandbox.KylasOptions{Users: []sandbox.KylasUser{
		{ID: 11, FirstName: "Asha", LastName: "Rao", Email: "asha@example.com", Active: true},
		{ID: 12, FirstName: "Ex", Email: "ex@example.com", Active: false},
	}})
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/users" {
			http.NotFound(w, r)
			return
		}
		gets.Add(1)
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key"})
	require.NoError(t, err)
	users, err := a.Users(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []directory.User{
		{ID: "11", Name: "Asha Rao", Email: "asha@example.com", Active: true},
		{ID: "12", Name: "Ex", Email: "ex@example.com", Active: false},
	}, users)
	assert.EqualValues(t, 3, gets.Load(), "one lookup, one GET per user")
}

// Roles, phones and custom fields are read where Kylas gives them.
func TestUsersOptionalFields(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("api-key") != "k" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"001","message":"bad key"}`)
			return
		}
		fmt.Fprint(w, `{"content":[{"id":7,"firstName":"Asha","lastName":"Rao","email":"asha@example.com",
			"role":{"id":1,"name":"Sales Agent"},"phoneNumbers":[{"value":"9858548544","dialCode":"+91"}],
			"customFieldValues":{"cfMyOperatorId":"5cd40f6556f2f124"},"timezone":"Asia/Calcutta","meta":{"x":1}}],"totalPages":1}`)
	}))
	t.Cleanup(srv.Close)
	a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "k"})
	require.NoError(t, err)
	users, err := a.Users(t.Context())
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.Equal(t, directory.User{ID: "7", Name: "Asha Rao", Email: "asha@example.com", Active: true, Role: "Sales Agent",
		Phones: []string{"+919858548544"}, Fields: map[string]string{"cfMyOperatorId": "5cd40f6556f2f124", "timezone": "Asia/Calcutta"}}, users[0])

	bad, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "wrong"})
	require.NoError(t, err)
	_, err = bad.Users(t.Context())
	assert.ErrorContains(t, err, "HTTP 401")
}
