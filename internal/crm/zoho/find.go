package zoho

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/crm"
)

// findWindow is how far around the call's start time FindCall looks. The start time
// written is derived from the call log alone (callStart), so it is exact; the margin
// is cheap, and covers a start bounded by now on a replica whose clock ran behind the
// receiving one's.
const findWindow = 2 * time.Minute

// subjectTag is the suffix that carries our call id on Subject, a single-line field
// COQL can filter on (it cannot filter on multi-line fields such as Description:
// zoho.com/crm/developer/docs/api/v8/COQL-Limitations.html).
func subjectTag(callID string) string { return " [" + callID + "]" }

// FindCall finds the Calls record calltrack wrote for c (crm.Finder) with one COQL
// query (POST /crm/v8/coql, scope ZohoCRM.coql.READ; Calls cannot be upserted, so
// there is no external-id route: zoho.com/crm/developer/docs/api/v8/upsert-records.html).
// The call id is on a single-line field: the configured custom field
// (Config.CallIDField, compared with =), else the " [<call id>]" suffix of Subject
// (like '%<id>%', checked exactly in the results), with a Call_Start_Time window.
// An absent answer comes from a query made Config.SearchSettle after FindCall began
// (crm.FindSettled): whether COQL lags behind inserts is not documented.
func (a *Adapter) FindCall(ctx context.Context, c crm.Call) (string, bool, error) {
	if c.Log.CallID == "" {
		return "", false, &crm.Error{Op: "zoho: find call", Message: "the call has no call id", Permanent: true}
	}
	return crm.FindSettled(ctx, a.cfg.SearchSettle, func(ctx context.Context) (string, bool, error) {
		return a.findOnce(ctx, c)
	})
}

func (a *Adapter) findOnce(ctx context.Context, c crm.Call) (string, bool, error) {
	const op = "zoho: find call"
	start, _ := a.startAndDuration(c.Log)
	t, err := time.Parse(zohoTime, start)
	if err != nil {
		return "", false, &crm.Error{Op: op, Message: "call start time", Err: err, Permanent: true}
	}
	from, to := t.Add(-findWindow).Format(zohoTime), t.Add(findWindow).Format(zohoTime)
	id := c.Log.CallID
	field, cond := "Subject", fmt.Sprintf("Subject like '%%%s%%'", coqlEscape(id))
	if a.cfg.CallIDField != "" {
		field, cond = a.cfg.CallIDField, fmt.Sprintf("%s = '%s'", a.cfg.CallIDField, coqlEscape(id))
	}
	q := fmt.Sprintf("select id, %s from Calls where (%s and Call_Start_Time between '%s' and '%s') limit 200", field, cond, from, to)
	var hits []hit
	if _, err := crm.RetrySearch(ctx, func() (struct{}, error) {
		var err error
		hits, err = a.coql(ctx, op, q)
		return struct{}{}, err
	}); err != nil {
		return "", false, err
	}
	for _, h := range hits {
		v, _ := h[field].(string)
		if (a.cfg.CallIDField != "" && v == id) || (a.cfg.CallIDField == "" && strings.HasSuffix(v, subjectTag(id))) {
			return h.id(), true, nil
		}
	}
	return "", false, nil
}

// coql runs one COQL select; 204 is no match.
func (a *Adapter) coql(ctx context.Context, op, query string) ([]hit, error) {
	r, err := a.sendJSON(ctx, op, http.MethodPost, "/crm/v8/coql", map[string]string{"select_query": query})
	if err != nil {
		return nil, err
	}
	switch st := r.resp.StatusCode; {
	case st == http.StatusNoContent:
		return nil, nil
	case st >= 200 && st <= 299:
		var body struct {
			Data []hit `json:"data"`
		}
		dec := json.NewDecoder(bytes.NewReader(r.data))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return nil, &crm.Error{Op: op, Status: st, Message: "decoding response", Err: err}
		}
		return body.Data, nil
	default:
		return nil, apiError(op, r)
	}
}

// coqlEscape escapes a value for a quoted COQL literal (backslash before ' and \).
func coqlEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}
