package moapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrRecordingNotFound means MyOperator has no recording of that file name.
var ErrRecordingNotFound = errors.New("moapi: recording not found")

// RecordingLinkValidity is how long MyOperator's recording download links work when the
// answer does not say (MyOperator's help centre: "a download link valid 24 h").
const RecordingLinkValidity = 24 * time.Hour

// Link is a fresh recording download link and when it stops working.
type Link struct {
	URL       string
	ExpiresAt time.Time
}

// RecordingLink exchanges a recording file name (afterCall `_fn`, Webhook v2
// `recording_filename`) for a download link, with GET /recordings/link?token=&file=.
// The answer's shape is not documented: the link is read from url, link or
// recording_url, at the top level or under data (or data itself when it is a string);
// its expiry from expires_at / expires_in, else the link's own Expires / X-Amz-Expires
// parameters, else RecordingLinkValidity. Errors are *Error; an unknown file wraps
// ErrRecordingNotFound.
func (c *Client) RecordingLink(ctx context.Context, file string) (Link, error) {
	const op = "moapi: recording link"
	if strings.TrimSpace(file) == "" {
		return Link{}, &Error{Op: op, Message: "no file name", Permanent: true, Err: ErrRecordingNotFound}
	}
	now := time.Now()
	status, body, err := c.send(ctx, request{op: op, method: http.MethodGet, path: "/recordings/link",
		query: url.Values{"file": {file}}, limit: 1 << 20})
	if err != nil {
		return Link{}, err
	}
	var ans recordingAnswer
	_ = json.Unmarshal(body, &ans)
	failed := status/100 != 2 || ans.envelope.failed()
	if link := ans.link(); !failed && link != "" {
		return Link{URL: link, ExpiresAt: ans.expiry(link, now)}, nil
	}
	e := &Error{Op: op, Status: status, Message: ans.Message}
	switch {
	case status == http.StatusNotFound || ans.Code.String() == "404" ||
		strings.Contains(strings.ToLower(ans.Message), "not found") || strings.Contains(strings.ToLower(ans.Message), "no recording"):
		e.Err, e.Permanent = ErrRecordingNotFound, true
	case !failed:
		e.Message, e.Permanent = "no link in the answer", true
	default:
		e.Permanent = permanent(status)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return Link{}, e
}

// recordingAnswer is what GET /recordings/link may answer.
type recordingAnswer struct {
	envelope
	URL          string          `json:"url"`
	Link         string          `json:"link"`
	RecordingURL string          `json:"recording_url"`
	ExpiresAt    scalar          `json:"expires_at"`
	ExpiresIn    scalar          `json:"expires_in"`
	Data         json.RawMessage `json:"data"`
}

// recordingData is the answer's data object, when it is one.
type recordingData struct {
	URL          string `json:"url"`
	Link         string `json:"link"`
	RecordingURL string `json:"recording_url"`
	ExpiresAt    scalar `json:"expires_at"`
	ExpiresIn    scalar `json:"expires_in"`
}

func (a recordingAnswer) data() recordingData {
	var d recordingData
	_ = json.Unmarshal(a.Data, &d)
	return d
}

func (a recordingAnswer) link() string {
	for _, s := range []string{a.URL, a.Link, a.RecordingURL} {
		if isHTTP(s) {
			return strings.TrimSpace(s)
		}
	}
	var s string
	if json.Unmarshal(a.Data, &s) == nil && isHTTP(s) {
		return strings.TrimSpace(s)
	}
	d := a.data()
	for _, s := range []string{d.URL, d.Link, d.RecordingURL} {
		if isHTTP(s) {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// expiry is when the link stops working: what the answer says, else what the link
// itself says (S3-style signed URLs), else the documented validity from now.
func (a recordingAnswer) expiry(link string, now time.Time) time.Time {
	d := a.data()
	for _, v := range []scalar{a.ExpiresAt, d.ExpiresAt} {
		if t, ok := v.time(); ok {
			return t
		}
	}
	for _, v := range []scalar{a.ExpiresIn, d.ExpiresIn} {
		if s, err := strconv.Atoi(v.String()); err == nil && s > 0 {
			return now.Add(time.Duration(s) * time.Second)
		}
	}
	if u, err := url.Parse(link); err == nil {
		q := u.Query()
		for _, k := range []string{"Expires", "expires"} {
			if s, err := strconv.ParseInt(q.Get(k), 10, 64); err == nil && s > 0 {
				return time.Unix(s, 0)
			}
		}
		if start, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date")); err == nil {
			if s, err := strconv.Atoi(q.Get("X-Amz-Expires")); err == nil && s > 0 {
				return start.Add(time.Duration(s) * time.Second)
			}
		}
	}
	return now.Add(RecordingLinkValidity)
}

// time reads the scalar as RFC 3339 or Unix seconds.
func (f scalar) time() (time.Time, bool) {
	s := f.String()
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

// isHTTP reports whether s is an absolute http(s) URL: a redirect must never go
// anywhere else (javascript:, relative paths). Whether plain http is acceptable is the
// caller's decision (recording links follow https only, but for a dev sandbox).
func isHTTP(s string) bool {
	u, err := url.Parse(strings.TrimSpace(s))
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
