package moapi_test

import (
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/directory"
	"github.com/calltrack/calltrack/internal/directory/directorytest"
	"github.com/calltrack/calltrack/internal/myoperator/moapi"
	"github.com/calltrack/calltrack/internal/myoperator/sandbox"
)

type usersBackend struct {
	sb  *sandbox.Server
	url string
	n   atomic.Int64
}

func (b *usersBackend) Put(t *testing.T, id string, s directorytest.Seed) string {
	if id == "" {
		id = fmt.Sprintf("5cd40f65%08x", b.n.Add(1))
	}
	b.sb.PutUser(sandbox.User{ID: id, Name: s.Name, Email: s.Email, Enabled: s.Active})
	return id
}

func (b *usersBackend) Remove(t *testing.T, id string) { require.True(t, b.sb.RemoveUser(id)) }

func (b *usersBackend) Source(t *testing.T) directory.Source { return moapi.New(b.url, b.sb.Token()) }

func TestUsersConformance(t *testing.T) {
	directorytest.Run(t, func(t *testing.T) directorytest.Backend {
		sb := sandbox.New(sandbox.Options{})
		srv := httptest.NewServer(sb)
		t.Cleanup(srv.Close)
		return &usersBackend{sb: sb, url: srv.URL}
	})
}
