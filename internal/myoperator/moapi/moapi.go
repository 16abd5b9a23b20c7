// Package moapi is a client of MyOperator's pull APIs (developers.myoperator.co): the
// users list and the recordings link exchange. Auth is the account's API token as the
// `token` query parameter.
package moapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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

// Error is a failed MyOperator API request. Its text never carries the token.
type Error struct {
	Op        string // e.g. "moapi: list users"
	Status    int    // HTTP status; 0 for transport errors
	Message   string // MyOperator's message, if any
	Permanent bool   // repeating the same request cannot succeed (auth, bad request)
	Err       error  // underlying transport or decoding error, if any
}

func (e *Error) Error() string {
	msg := e.Op
	if e.Status != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// get calls GET BaseURL+path with q plus the token, checks MyOperator's
// {"status":"success"} envelope and decodes the whole answer into out.
func (c *Client) get(ctx context.Context, op, path string, q url.Values, out any) error {
	if c.Token == "" {
		return &Error{Op: op, Message: "no API token configured", Permanent: true}
	}
	if q == nil {
		q = url.Values{}
	}
	q.Set("token", c.Token)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path+"?"+q.Encode(), nil)
	if err != nil {
		return &Error{Op: op, Err: errors.New("bad base URL"), Permanent: true}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "calltrack")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		// *url.Error quotes the URL, token included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &Error{Op: op, Err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return &Error{Op: op, Status: res.StatusCode, Err: err}
	}
	var env struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Details string `json:"details"`
	}
	_ = json.Unmarshal(body, &env)
	msg := env.Message
	if msg == "" {
		msg = env.Details
	}
	if res.StatusCode/100 != 2 || !strings.EqualFold(env.Status, "success") {
		if msg == "" {
			msg = http.StatusText(res.StatusCode)
		}
		// MyOperator answers a bad token with 4xx (or 200 and status "error").
		permanent := res.StatusCode/100 == 4 && res.StatusCode != http.StatusTooManyRequests && res.StatusCode != http.StatusRequestTimeout
		if res.StatusCode/100 == 2 {
			permanent = true
		}
		return &Error{Op: op, Status: res.StatusCode, Message: msg, Permanent: permanent}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &Error{Op: op, Status: res.StatusCode, Message: "undecodable answer", Err: err, Permanent: true}
	}
	return nil
}
