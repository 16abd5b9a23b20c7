// Package moapi is a client of MyOperator's pull APIs (developers.myoperator.co): the
// users list, the call-log search and the recordings link exchange. Auth is the
// account's API token (the `token` parameter); it never reaches an error or a log.
package moapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL of MyOperator's API.
const DefaultBaseURL = "https://developers.myoperator.co"

// DefaultRetryAfter is how long a 429 without a usable Retry-After holds requests back:
// MyOperator's pull limits are counted per minute (about 20 requests a minute per account).
const DefaultRetryAfter = time.Minute

// Limiter paces an account's requests across replicas (ratelimit.Limiter). Wait is
// called before every request; Pause when MyOperator answers 429, so every replica
// holds back for the Retry-After.
type Limiter interface {
	Wait(ctx context.Context) error
	Pause(ctx context.Context, d time.Duration) error
}

// Client calls one MyOperator account's API.
type Client struct {
	BaseURL string // without trailing slash; in dev http://127.0.0.1:8080/sandbox/myoperator
	Token   string // account API token; never logged
	HTTP    *http.Client
	Limiter Limiter // optional: shared pacing of the account's requests
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
	Op         string        // e.g. "moapi: list users"
	Status     int           // HTTP status; 0 for transport errors
	Message    string        // MyOperator's message, if any
	Permanent  bool          // repeating the same request cannot succeed (auth, bad request)
	RetryAfter time.Duration // with 429: how long MyOperator asks to wait
	Err        error         // underlying transport or decoding error, if any
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

// IsRateLimited reports whether err is MyOperator's 429, and how long it asked to wait.
func IsRateLimited(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusTooManyRequests {
		return e.RetryAfter, true
	}
	return 0, false
}

// envelope is the part of every MyOperator answer that says how it went:
// {"status":"success"|"error","code":200,"message":"...","details":"..."}.
type envelope struct {
	Status  string `json:"status"`
	Code    scalar `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

func (e envelope) message() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Details
}

// failed reports an application error: MyOperator answers some of them with HTTP 200
// and status "error".
func (e envelope) failed() bool {
	return strings.EqualFold(e.Status, "error") || strings.EqualFold(e.Status, "failed")
}

// request is one API call: the method, path, query (the token is added) and, for
// POST, a JSON body (the token is added to it too).
type request struct {
	op, method, path string
	query            url.Values
	body             map[string]any
	limit            int64 // bytes of the answer read at most
}

// send makes one request and returns the HTTP status and the answer's body. It waits
// on the limiter first and, on a 429, pauses it for the Retry-After. Errors are *Error
// and never quote the URL (it carries the token).
func (c *Client) send(ctx context.Context, r request) (int, []byte, error) {
	if c.Token == "" {
		return 0, nil, &Error{Op: r.op, Message: "no API token configured", Permanent: true}
	}
	if c.Limiter != nil {
		if err := c.Limiter.Wait(ctx); err != nil {
			return 0, nil, &Error{Op: r.op, Message: "waiting for the MyOperator rate limit", Err: err}
		}
	}
	q := url.Values{}
	for k, v := range r.query {
		q[k] = v
	}
	var body io.Reader
	if r.method == http.MethodPost {
		// MyOperator reads POST parameters, the token too, from a JSON body (integrators
		// found query parameters refused with "not an authorized request").
		fields := map[string]any{"token": c.Token}
		for k, v := range r.body {
			fields[k] = v
		}
		b, err := json.Marshal(fields)
		if err != nil {
			return 0, nil, &Error{Op: r.op, Err: err, Permanent: true}
		}
		body = bytes.NewReader(b)
	} else {
		q.Set("token", c.Token)
	}
	target := strings.TrimRight(c.BaseURL, "/") + r.path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return 0, nil, &Error{Op: r.op, Err: errors.New("bad base URL"), Permanent: true}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "calltrack")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		// *url.Error quotes the URL, token included: keep only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return 0, nil, &Error{Op: r.op, Err: err}
	}
	defer res.Body.Close()
	limit := r.limit
	if limit == 0 {
		limit = 16 << 20
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, limit))
	if err != nil {
		return res.StatusCode, nil, &Error{Op: r.op, Status: res.StatusCode, Err: err}
	}
	if res.StatusCode == http.StatusTooManyRequests {
		var env envelope
		_ = json.Unmarshal(raw, &env)
		e := &Error{Op: r.op, Status: res.StatusCode, Message: env.message(), RetryAfter: retryAfter(res.Header.Get("Retry-After"), time.Now())}
		if e.Message == "" {
			e.Message = "rate limited"
		}
		if c.Limiter != nil {
			_ = c.Limiter.Pause(context.WithoutCancel(ctx), e.RetryAfter)
		}
		return res.StatusCode, raw, e
	}
	return res.StatusCode, raw, nil
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); DefaultRetryAfter
// when it is missing or unreadable, at least one second.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return max(time.Duration(s)*time.Second, time.Second)
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), time.Second)
	}
	return DefaultRetryAfter
}

// permanent tells whether a failed answer can succeed when repeated: auth and bad
// requests (4xx but 408/429) and application errors (HTTP 200 with status "error")
// cannot; 5xx, 408 and 429 can.
func permanent(status int) bool {
	if status/100 == 2 {
		return true
	}
	return status/100 == 4 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout
}

// call sends r, checks MyOperator's {"status":"success"} envelope and decodes the
// whole answer into out.
func (c *Client) call(ctx context.Context, r request, out any) error {
	status, raw, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	var env envelope
	_ = json.Unmarshal(raw, &env)
	if status/100 != 2 || !strings.EqualFold(env.Status, "success") {
		msg := env.message()
		if msg == "" {
			msg = http.StatusText(status)
		}
		// MyOperator answers a bad token with 4xx (or 200 and status "error").
		return &Error{Op: r.op, Status: status, Message: msg, Permanent: permanent(status)}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Op: r.op, Status: status, Message: "undecodable answer", Err: err, Permanent: true}
	}
	return nil
}
