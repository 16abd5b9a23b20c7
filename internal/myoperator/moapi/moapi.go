// Package moapi is a client of MyOperator's pull APIs (developers.myoperator.co): the
// users list and the recordings link exchange. Auth is the account's API token as the
// `token` query parameter.
package moapi

import (
	"net/http"
	"time"
)

// DefaultBaseURL of MyOperator's API.
const DefaultBaseURL = "https://developers.myoperator.co"

// Client calls one MyOperator account's API.
type Client struct {
	BaseURL string // without trailing slash; in dev http://127.0.0.1:8080/sandbox/myoperator
	Token   string // account API token; never logged
	HTTP    *http.Client
}

// New returns a client with defaults.
func New(baseURL, token string) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	return &Client{BaseURL: baseURL, Token: token, HTTP: &http.Client{Timeout: 15 * time.Second}}
}
