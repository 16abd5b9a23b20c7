// Package directorytest is the conformance suite every directory.Source (the
// MyOperator users API, each CRM's users API) runs against its sandbox: one set of
// expectations whatever the directory.
package directorytest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/directory"
)

// Seed is a user to put in a backend.
type Seed struct {
	Name   string // "First Last"
	Email  string
	Active bool
}

// Backend is one source with the sandbox behind it.
type Backend interface {
	// Put adds a user (or replaces the user id names, when id is not "") and returns
	// its id as the source lists it.
	Put(t *testing.T, id string, s Seed) string
	// Remove deletes a user.
	Remove(t *testing.T, id string)
	// Source is the client under test, reading the backend.
	Source(t *testing.T) directory.Source
}

// Run runs the suite. newBackend returns an empty backend for each subtest.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	t.Run("lists active and inactive users with their emails as stored", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		a := b.Put(t, "", Seed{Name: "Asha Rao", Email: "asha@example.com", Active: true})
		p := b.Put(t, "", Seed{Name: "Priya Nair", Email: "Priya.Nair@Example.com", Active: true})
		x := b.Put(t, "", Seed{Name: "Ex Employee", Email: "ex@example.com", Active: false})
		got := byID(t, b.Source(t))
		require.Len(t, got, 3)
		assert.Equal(t, "asha@example.com", got[a].Email)
		assert.Equal(t, "Asha Rao", got[a].Name)
		assert.True(t, got[a].Active)
		assert.Equal(t, "Priya.Nair@Example.com", got[p].Email, "emails keep their case: matching may be case-sensitive")
		assert.False(t, got[x].Active)
	})
	t.Run("changes and removals show on the next listing", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		a := b.Put(t, "", Seed{Name: "Asha Rao", Email: "asha@example.com", Active: true})
		r := b.Put(t, "", Seed{Name: "Ravi K", Email: "ravi@example.com", Active: true})
		b.Put(t, a, Seed{Name: "Asha Menon", Email: "asha.menon@example.com", Active: false})
		b.Remove(t, r)
		got := byID(t, b.Source(t))
		require.Len(t, got, 1)
		assert.Equal(t, directory.User{ID: a, Name: "Asha Menon", Email: "asha.menon@example.com", Active: false},
			directory.User{ID: got[a].ID, Name: got[a].Name, Email: got[a].Email, Active: got[a].Active})
	})
	t.Run("pages through many users", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		const n = 230
		for i := range n {
			b.Put(t, "", Seed{Name: fmt.Sprintf("Agent %03d", i), Email: fmt.Sprintf("agent%03d@example.com", i), Active: true})
		}
		got := byID(t, b.Source(t))
		assert.Len(t, got, n, "every user once")
	})
	t.Run("empty directory", func(t *testing.T) {
		t.Parallel()
		users, err := newBackend(t).Source(t).Users(t.Context())
		require.NoError(t, err)
		assert.Empty(t, users)
	})
}

func byID(t *testing.T, s directory.Source) map[string]directory.User {
	t.Helper()
	users, err := s.Users(t.Context())
	require.NoError(t, err)
	out := map[string]directory.User{}
	for _, u := range users {
		require.NotEmpty(t, u.ID)
		_, dup := out[u.ID]
		require.False(t, dup, "user %s listed twice", u.ID)
		out[u.ID] = u
	}
	return out
}
