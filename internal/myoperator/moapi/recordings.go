package moapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrRecordingNotFound means MyOperator has no recording of that file name.
var ErrRecordingNotFound = errors.New("moapi: recording not found")

// RecordingLink exchanges a recording file name (afterCall `_fn`, Webhook v2
// `recording_filename`) for a download link, with GET /recordings/link?token=&file=.
// MyOperator's links expire after 24 h, so callers ask again each time. The answer's
// shape is not documented: the link is read from url, link or recording_url, at the
// top level or under data (or data itself when it is a string). Errors are *Error;
// an unknown file wraps ErrRecordingNotFound.
func (c *Client) RecordingLink(ctx context.Context, file string) (string, error) {
	const op = "moapi: recording link"
	if c.Token == "" {
		return "", &Error{Op: op, Message: "no API token configured", Permanent: true}
	}
	if strings.TrimSpace(file) == "" {
		return "", &Error{Op: op, Message: "no file name", Permanent: true, Err: ErrRecordingNotFound}
	}
	q := url.Values{"token": {c.Token}, "file": {file}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/recordings/link?"+q.Encode(), nil)
	if err != nil {
		return "", &Error{Op: op, Err: errors.New("bad base URL"), Permanent: true}
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
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return "", &Error{Op: op, Err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return "", &Error{Op: op, Status: res.StatusCode, Err: err}
	}
	var ans recordingAnswer
	_ = json.Unmarshal(body, &ans)
	failed := res.StatusCode/100 != 2 || strings.EqualFold(ans.Status, "error") || strings.EqualFold(ans.Status, "failed")
	if link := ans.link(); !failed && link != "" {
		return link, nil
	}
	e := &Error{Op: op, Status: res.StatusCode, Message: ans.Message}
	switch {
	case res.StatusCode == http.StatusNotFound || ans.Code.String() == "404" ||
		strings.Contains(strings.ToLower(ans.Message), "not found") || strings.Contains(strings.ToLower(ans.Message), "no recording"):
		e.Err, e.Permanent = ErrRecordingNotFound, true
	case !failed:
		e.Message, e.Permanent = "no link in the answer", true
	case res.StatusCode/100 == 4 && res.StatusCode != http.StatusTooManyRequests, res.StatusCode/100 == 2:
		e.Permanent = true
	}
	if e.Message == "" {
		e.Message = http.StatusText(res.StatusCode)
	}
	return "", e
}

// recordingAnswer is what GET /recordings/link may answer.
type recordingAnswer struct {
	Status       string          `json:"status"`
	Code         scalar          `json:"code"`
	Message      string          `json:"message"`
	URL          string          `json:"url"`
	Link         string          `json:"link"`
	RecordingURL string          `json:"recording_url"`
	Data         json.RawMessage `json:"data"`
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
	var d struct {
		URL          string `json:"url"`
		Link         string `json:"link"`
		RecordingURL string `json:"recording_url"`
	}
	if json.Unmarshal(a.Data, &d) == nil {
		for _, s := range []string{d.URL, d.Link, d.RecordingURL} {
			if isHTTP(s) {
				return strings.TrimSpace(s)
			}
		}
	}
	return ""
}

// isHTTP reports whether s is an absolute http(s) URL: a redirect must never go
// anywhere else (javascript:, relative paths).
func isHTTP(s string) bool {
	u, err := url.Parse(strings.TrimSpace(s))
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
