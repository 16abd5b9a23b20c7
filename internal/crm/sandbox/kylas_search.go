package sandbox

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Call-log search (POST /v1/call-logs/search), as strict as its public sources:
// kylastech/kylas-crm-mcp-server entities/call_log.py (pages from 1, size <= 100,
// sort e.g. createdAt,desc; rules {id, field, type, operator, value[, timeZone]};
// date operators between / greater / less ...) and shared/meta.py OPERATOR_MAPPING.
// Stricter readings, refused with Kylas's error shape: a request without sort is a
// 404 (unconfirmed: no public source found, see docs/crm-contracts.md; the adapter
// always sends sort, so refusing its absence costs nothing); only the standard fields below are filterable
// (whether remoteId is filterable is not documented, so it is not).

// kylasLogFilters are the filterable call-log fields and their operators.
var kylasLogFilters = map[string][]string{
	"startTime":   {"between", "greater", "greater_or_equal", "less", "less_or_equal"},
	"createdAt":   {"between", "greater", "greater_or_equal", "less", "less_or_equal"},
	"updatedAt":   {"between", "greater", "greater_or_equal", "less", "less_or_equal"},
	"callType":    {"equal", "not_equal", "in", "not_in"},
	"outcome":     {"equal", "not_equal", "in", "not_in"},
	"phoneNumber": {"equal", "not_equal", "contains", "begins_with"},
}

type kylasLogRule struct {
	ID       string          `json:"id"`
	Field    string          `json:"field"`
	Type     string          `json:"type"`
	Operator string          `json:"operator"`
	Value    json.RawMessage `json:"value"`
	TimeZone string          `json:"timeZone"`
}

func (k *Kylas) searchCallLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sortBy := q.Get("sort")
	if sortBy == "" {
		kylasFail(w, http.StatusNotFound, "not_found", "no handler for this request: sort is required")
		return
	}
	field, dir, _ := strings.Cut(sortBy, ",")
	if !slices.Contains([]string{"createdAt", "updatedAt", "startTime"}, field) || (dir != "asc" && dir != "desc") {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "sort must be createdAt|updatedAt|startTime,asc|desc")
		return
	}
	var b struct {
		Fields   []string `json:"fields"`
		JSONRule *struct {
			Condition string         `json:"condition"`
			Rules     []kylasLogRule `json:"rules"`
		} `json:"jsonRule"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil && !errors.Is(err, io.EOF) {
		kylasFail(w, http.StatusBadRequest, "invalid_request", "malformed JSON body")
		return
	}
	var preds []func(KylasCallLog) bool
	and := true
	if b.JSONRule != nil {
		switch b.JSONRule.Condition {
		case "AND", "":
		case "OR":
			and = false
		default:
			kylasFail(w, http.StatusBadRequest, "invalid_request", "jsonRule.condition must be AND or OR")
			return
		}
		for i, rule := range b.JSONRule.Rules {
			p, err := kylasLogPredicate(rule)
			if err != nil {
				kylasFail(w, http.StatusBadRequest, "invalid_request", "invalid search rule",
					kylasFieldError{fmt.Sprintf("jsonRule.rules[%d]", i), err.Error()})
				return
			}
			preds = append(preds, p)
		}
	}
	visible := k.opts.Now().Add(-k.gate.searchLag())
	var hits []KylasCallLog
	for _, c := range k.Records() {
		if c.CreatedAt.After(visible) {
			continue // not indexed yet
		}
		match := and
		for _, p := range preds {
			if and {
				match = match && p(c)
			} else {
				match = match || p(c)
			}
		}
		if len(preds) == 0 || match {
			hits = append(hits, c)
		}
	}
	key := func(c KylasCallLog) string {
		switch field {
		case "startTime":
			return c.StartTime
		case "updatedAt":
			return c.UpdatedAt.Format(time.RFC3339Nano)
		}
		return c.CreatedAt.Format(time.RFC3339Nano)
	}
	writeSortedPage(w, r, hits, key, func(c KylasCallLog) int64 { return c.ID }, dir == "desc", 1)
}

// writeSortedPage answers a Kylas search: hits sorted by key (ties by id, the same
// direction), the requested page of them (pages count from first).
func writeSortedPage[T any](w http.ResponseWriter, r *http.Request, hits []T, key func(T) string, id func(T) int64, desc bool, first int) {
	slices.SortStableFunc(hits, func(a, b T) int {
		if desc {
			a, b = b, a
		}
		return cmp.Or(cmp.Compare(key(a), key(b)), cmp.Compare(id(a), id(b)))
	})
	pg, err := paginate(hits, r, first, 20, 100)
	if err != nil {
		kylasFail(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

// kylasLogPredicate compiles one rule, refusing fields and operators the API does not filter on.
func kylasLogPredicate(rule kylasLogRule) (func(KylasCallLog) bool, error) {
	ops, ok := kylasLogFilters[rule.Field]
	if !ok {
		return nil, fmt.Errorf("field %q is not filterable", rule.Field)
	}
	if !slices.Contains(ops, rule.Operator) {
		return nil, fmt.Errorf("operator %q is not allowed on %s (%s)", rule.Operator, rule.Field, strings.Join(ops, ", "))
	}
	switch rule.Field {
	case "startTime", "createdAt", "updatedAt":
		if rule.Type != "date" {
			return nil, fmt.Errorf("type of %s must be date", rule.Field)
		}
		var vals []string
		if rule.Operator == "between" {
			if json.Unmarshal(rule.Value, &vals) != nil || len(vals) != 2 {
				return nil, errors.New("between needs [from, to]")
			}
		} else {
			var v string
			if json.Unmarshal(rule.Value, &v) != nil {
				return nil, errors.New("value must be an ISO-8601 date-time")
			}
			vals = []string{v}
		}
		ts := make([]time.Time, len(vals))
		for i, v := range vals {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("value %q must be an ISO-8601 date-time", v)
			}
			ts[i] = t
		}
		get := func(c KylasCallLog) time.Time {
			switch rule.Field {
			case "startTime":
				t, _ := time.Parse(time.RFC3339Nano, c.StartTime)
				return t
			case "updatedAt":
				return c.UpdatedAt
			}
			return c.CreatedAt
		}
		return func(c KylasCallLog) bool {
			t := get(c)
			switch rule.Operator {
			case "between":
				return !t.Before(ts[0]) && !t.After(ts[1])
			case "greater":
				return t.After(ts[0])
			case "greater_or_equal":
				return !t.Before(ts[0])
			case "less":
				return t.Before(ts[0])
			}
			return !t.After(ts[0])
		}, nil
	}
	get := func(c KylasCallLog) string {
		switch rule.Field {
		case "callType":
			return c.CallType
		case "outcome":
			return c.Outcome
		}
		return c.PhoneNumber
	}
	var vals []string
	if rule.Operator == "in" || rule.Operator == "not_in" {
		if json.Unmarshal(rule.Value, &vals) != nil {
			return nil, errors.New("in needs a list of strings")
		}
	} else {
		var v string
		if json.Unmarshal(rule.Value, &v) != nil {
			return nil, errors.New("value must be a string")
		}
		vals = []string{v}
	}
	return func(c KylasCallLog) bool {
		v := get(c)
		switch rule.Operator {
		case "equal":
			return v == vals[0]
		case "not_equal":
			return v != vals[0]
		case "in":
			return slices.Contains(vals, v)
		case "not_in":
			return !slices.Contains(vals, v)
		case "contains":
			return strings.Contains(v, vals[0])
		}
		return strings.HasPrefix(v, vals[0])
	}, nil
}
