package moapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// MaxPageSize is the most call logs one search page holds (MyOperator: page_size ≤ 100).
const MaxPageSize = 100

// SearchQuery asks for one page of the account's call logs of a time window.
type SearchQuery struct {
	From, To time.Time // the window, sent as Unix seconds (MyOperator filters on the call's start)
	Offset   int       // log_from: how many logs of the window to skip
	PageSize int       // page_size; 0 or more than MaxPageSize: MaxPageSize
	// SearchKey narrows the search (MyOperator: free text, e.g. a call's unique id or a
	// number); empty: every call of the window.
	SearchKey string
}

// SearchPage is one page of call logs: the window's total and the page's hits, each
// as MyOperator sent it ({"_id", "_source": {...}}), for myoperator.ParseSearchHit.
type SearchPage struct {
	Total int
	Hits  []json.RawMessage
}

// Search lists call logs with POST /search, whose parameters (token included) go in a
// JSON body: {"token","from","to","log_from","page_size"}. The answer is
// {"status":"success","code":200,"data":{"total":N,"hits":[{"_source":{...}}]}};
// an application error may come as HTTP 200 with status "error", a bad token as 400,
// too many requests as 429 (*Error with RetryAfter; the Limiter is paused). Sources:
// public integrations that call it (see docs/myoperator-api.md).
func (c *Client) Search(ctx context.Context, q SearchQuery) (SearchPage, error) {
	const op = "moapi: search call logs"
	size := q.PageSize
	if size <= 0 || size > MaxPageSize {
		size = MaxPageSize
	}
	var ans struct {
		Data struct {
			Total flexTotal       `json:"total"`
			Hits  json.RawMessage `json:"hits"`
		} `json:"data"`
	}
	body := map[string]any{"from": q.From.Unix(), "to": q.To.Unix(), "log_from": q.Offset, "page_size": size}
	if q.SearchKey != "" {
		body["search_key"] = q.SearchKey
	}
	err := c.call(ctx, request{op: op, method: http.MethodPost, path: "/search", body: body}, &ans)
	if err != nil {
		return SearchPage{}, err
	}
	hits, err := hitList(ans.Data.Hits)
	if err != nil {
		return SearchPage{}, &Error{Op: op, Status: http.StatusOK, Message: "undecodable hits", Err: err, Permanent: true}
	}
	return SearchPage{Total: int(ans.Data.Total), Hits: hits}, nil
}

// hitList reads data.hits: an array of hits, or Elasticsearch's own {"hits": [...]}.
func hitList(raw json.RawMessage) ([]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '{' {
		var inner struct {
			Hits json.RawMessage `json:"hits"`
		}
		if err := json.Unmarshal(raw, &inner); err != nil {
			return nil, err
		}
		return hitList(inner.Hits)
	}
	var hits []json.RawMessage
	if err := json.Unmarshal(raw, &hits); err != nil {
		return nil, err
	}
	return hits, nil
}

// flexTotal is data.total: a number, a numeric string, or Elasticsearch's {"value": N}.
type flexTotal int

func (t *flexTotal) UnmarshalJSON(b []byte) error {
	var v struct {
		Value scalar `json:"value"`
	}
	var s scalar
	if json.Unmarshal(b, &v) == nil && v.Value != "" {
		s = v.Value
	} else {
		_ = json.Unmarshal(b, &s)
	}
	n, _ := strconv.ParseFloat(s.String(), 64)
	*t = flexTotal(n)
	return nil
}
