// Package sandbox is an in-memory MyOperator API for `calltrack dev` and tests, mounted
// at /sandbox/myoperator/: the users API that user sync pulls, and the recordings link
// exchange. Paths here are without the /sandbox/myoperator prefix.
package sandbox

import (
	"net/http"
	"sync"
)

// Options configure the sandbox.
type Options struct {
	Token string // the account API token the API calls must carry (?token=); default "demo-myoperator-token"
}

// Server is the MyOperator sandbox.
type Server struct {
	opts Options
	mux  *http.ServeMux
	mu   sync.Mutex

	users      *usersState
	recordings *recordingsState
}

// New returns a sandbox.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "demo-myoperator-token"
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.routesUsers()
	s.routesRecordings()
	return s
}

// Token is the API token the sandbox accepts.
func (s *Server) Token() string { return s.opts.Token }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }
