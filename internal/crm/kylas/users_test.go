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

// Real Kylas documents no users listing: every page of the lookup, then one GET per
// user. 120 users take 3 pages of 50.
func TestUsersReadEveryLookupPage(t *testing.T) {
	t.Parallel()
	var users []sandbox.KylasUser
	for i := range 120 {
		users = append(users, sandbox.KylasUser{ID: int64(100 + i), FirstName: fmt.Sprintf("U%03d", i), Email: fmt.Sprintf("u%03d@example.com", i), Active: i%7 != 0})
	}
	sb := sandbox.NewKylas(sandbox.KylasOptions{Users: users})
	var lookups, gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/users/lookup" {
			lookups.Add(1)
		} else {
			gets.Add(1)
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key"})
	require.NoError(t, err)
	got, err := a.Users(t.Context())
	require.NoError(t, err)
	require.Len(t, got, 120)
	for i, u := range got {
		assert.Equal(t, fmt.Sprintf("u%03d@example.com", i), u.Email)
		assert.Equal(t, i%7 != 0, u.Active)
	}
	assert.EqualValues(t, 3, lookups.Load(), "three pages of 50")
	assert.EqualValues(t, 120, gets.Load(), "one GET per user")
}

// A page that cannot be read fails the whole list: a shorter list would make user
// sync remove the mappings of the users it lacks.
func TestUsersPartialListIsAnError(t *testing.T) {
	t.Parallel()
	var users []sandbox.KylasUser
	for i := range 60 {
		users = append(users, sandbox.KylasUser{ID: int64(100 + i), FirstName: "U", Active: true})
	}
	sb := sandbox.NewKylas(sandbox.KylasOptions{Users: users})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/users/lookup" && r.URL.Query().Get("page") == "1" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/v1/users/lookup" && r.URL.Query().Get("page") == "0" && r.URL.Query().Get("size") != "50" {
			t.Errorf("lookup asked %s a page; Kylas gives at most 50", r.URL.Query().Get("size"))
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key"})
	require.NoError(t, err)
	got, err := a.Users(t.Context())
	require.Error(t, err)
	assert.Nil(t, got)
	assert.ErrorContains(t, err, "page 1")
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
		if r.URL.Path == "/v1/users/lookup" {
			fmt.Fprint(w, `{"content":[{"id":7,"name":"Asha Rao"}],"totalPages":1}`)
			return
		}
		fmt.Fprint(w, `{"id":7,"firstName":"Asha","lastName":"Rao","email":"asha@example.com",
			"role":{"id":1,"name":"Sales Agent"},"phoneNumbers":[{"value":"9858548544","dialCode":"+91"}],
			"customFieldValues":{"cfMyOperatorId":"5cd40f6556f2f124"},"timezone":"Asia/Calcutta","meta":{"x":1}}`)
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

func TestPing(t *testing.T) {
	t.Parallel()
	sb := sandbox.NewKylas(sandbox.KylasOptions{})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	good, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "demo-crm-key"})
	require.NoError(t, err)
	assert.NoError(t, good.Ping(t.Context()))
	bad, err := kylas.New(kylas.Config{BaseURL: srv.URL, APIKey: "wrong"})
	require.NoError(t, err)
	assert.ErrorContains(t, bad.Ping(t.Context()), "HTTP 401")
}
