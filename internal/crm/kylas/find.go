package kylas

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/crm"
)

// findWindow is how far around the call's start time FindCall looks: the start time
// we write is derived from the call log alone, so the record's startTime is exact;
// the margin covers a log whose start was derived from its receipt time.
const findWindow = 2 * time.Minute

// findMaxPages bounds the pages of one window FindCall reads (100 records each).
const findMaxPages = 20

// foundLog is a call-log search hit: what FindCall needs to recognise ours.
type foundLog struct {
	ID       json.Number `json:"id"`
	RemoteID string      `json:"remoteId"`
	Notes    []note      `json:"notes"`
}

// dateRule is a jsonRule rule on a date-time field; value is [from, to] for between.
type dateRule struct {
	ID       string   `json:"id"`
	Field    string   `json:"field"`
	Type     string   `json:"type"`
	Operator string   `json:"operator"`
	Value    []string `json:"value"`
	TimeZone string   `json:"timeZone"`
}

// FindCall finds the call log calltrack wrote for c (crm.Finder). Kylas documents no
// filter on remoteId, so it searches the call logs whose startTime is within
// findWindow of the call's (POST /v1/call-logs/search, a documented DATETIME filter;
// page from 1, size <= 100, sort always sent: kylastech/kylas-crm-mcp-server
// entities/call_log.py; that a search without sort is a 404 is unconfirmed, no public
// source found) and recognises ours by remoteId (the sync route) or by the
// "Call ID: <id>" line of its note (the plain route, which has no remoteId). An
// absent answer comes from a search made crm.DefaultSearchSettle (or
// Config.SearchSettle) after FindCall began (crm.FindSettled).
func (a *Adapter) FindCall(ctx context.Context, c crm.Call) (string, bool, error) {
	if c.Log.CallID == "" {
		return "", false, &crm.Error{Op: "kylas: find call log", Message: "the call has no call id", Permanent: true}
	}
	return crm.FindSettled(ctx, a.cfg.SearchSettle, func(ctx context.Context) (string, bool, error) {
		return a.findOnce(ctx, c)
	})
}

func (a *Adapter) findOnce(ctx context.Context, c crm.Call) (string, bool, error) {
	const op = "kylas: find call log"
	start, _ := times(c.Log)
	body := map[string]any{
		"fields": []string{"id", "remoteId", "notes", "startTime"},
		"jsonRule": map[string]any{"condition": "AND", "valid": true, "rules": []dateRule{{
			ID: "startTime", Field: "startTime", Type: "date", Operator: "between", TimeZone: "Etc/UTC",
			Value: []string{kylasTS(start.Add(-findWindow)), kylasTS(start.Add(findWindow))},
		}}},
	}
	for page := 1; page <= findMaxPages; page++ {
		q := url.Values{"page": {strconv.Itoa(page)}, "size": {"100"}, "sort": {"createdAt,desc"}}
		var resp struct {
			Content    []foundLog `json:"content"`
			TotalPages int        `json:"totalPages"`
		}
		if _, err := crm.RetrySearch(ctx, func() (struct{}, error) {
			return struct{}{}, a.do(ctx, op, http.MethodPost, "/v1/call-logs/search?"+q.Encode(), body, &resp)
		}); err != nil {
			return "", false, err
		}
		for _, l := range resp.Content {
			if isOurs(l, c.Log.CallID) {
				return l.ID.String(), true, nil
			}
		}
		if page >= resp.TotalPages || len(resp.Content) == 0 {
			return "", false, nil
		}
	}
	// A window this full cannot be read whole: saying "absent" could duplicate.
	return "", false, &crm.Error{Op: op, Message: "more than " + strconv.Itoa(findMaxPages*100) + " call logs around the call's start time"}
}

// isOurs: the log carries callID as its remoteId or on its note's "Call ID:" line.
func isOurs(l foundLog, callID string) bool {
	if l.RemoteID == callID {
		return true
	}
	for _, n := range l.Notes {
		for _, line := range strings.Split(n.Description, "\n") {
			if strings.TrimSpace(strings.TrimPrefix(line, "Call ID:")) == callID && strings.HasPrefix(line, "Call ID:") {
				return true
			}
		}
	}
	return false
}
