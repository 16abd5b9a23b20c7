// Package sandbox is an in-memory MyOperator API for `calltrack dev` and tests, mounted
// at /sandbox/myoperator/: the users API that user sync pulls, the call-log search that
// the backfill pulls (served from the sandbox's own call log), the recordings link
// exchange, and the outbound-call API click-to-call uses (obd.go: it then posts the
// placed call's webhooks). Paths here are without the /sandbox/myoperator prefix.
package sandbox

import (
	"net/http"
	"slices"
	"sync"
)

// Options configure the sandbox.
type Options struct {
	Token string // the account API token the API calls must carry (?token=); default "demo-myoperator-token"
	// MoreTokens are further accounts' API tokens. Each account has a call log of its
	// own (POST /search lists only its calls), as each MyOperator account does; the
	// users and recordings are shared (a sandbox's simplification).
	MoreTokens []string
	// AfterCallWebhook is where POST /calls?deliver=true posts the afterCall (calltrack's
	// afterCall URL, token included); empty: calls are only recorded.
	AfterCallWebhook string
	// SearchPerMinute answers POST /search with 429 past this many requests in a minute,
	// as MyOperator's pull limits do (about 20); 0: no limit.
	SearchPerMinute int
	// OBDAccounts are the accounts the outbound-call API (POST /obd-api-v1) accepts,
	// with the webhooks their placed calls are delivered to (obd.go).
	OBDAccounts []OBDAccount
}

// Server is the MyOperator sandbox.
type Server struct {
	opts Options
	mux  *http.ServeMux
	mu   sync.Mutex

	users      *usersState
	recordings *recordingsState
	calls      *callsState
	obd        *obdState
}

// New returns a sandbox.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "demo-myoperator-token"
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.routesUsers()
	s.routesRecordings()
	s.routesCalls()
	s.routesOBD()
	return s
}

// Token is the API token of the sandbox's first account.
func (s *Server) Token() string { return s.opts.Token }

// account is the account whose API token is token, or "" when none is.
func (s *Server) account(token string) string {
	if token != "" && (token == s.opts.Token || slices.Contains(s.opts.MoreTokens, token)) {
		return token
	}
	return ""
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }
