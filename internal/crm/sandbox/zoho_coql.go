package sandbox

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// COQL (POST /crm/v8/coql {"select_query": "..."}), as strict as Zoho's documented
// limitations (zoho.com/crm/developer/docs/api/v8/COQL-Limitations.html and
// Get-Records-through-COQL-Query.html): comparators =, !=, >, <, >=, <=, is [not]
// null, [not] between, [not] in (up to 50 values), [not] like (starts with, ends
// with, contains); multi-line fields (Description) refused in criteria; more than two
// criteria must be grouped with brackets; at most 25 criteria; LIMIT at most 2000
// (default 200); 204 when nothing matches. Errors {"code":"INVALID_QUERY",
// "details":{...},"message":...,"status":"error"}. The sandbox serves the Calls module.

type coqlField struct{ multiLine bool }

// coqlModules are the modules and fields the sandbox knows; multi-line fields
// cannot be criteria.
var coqlModules = map[string]map[string]coqlField{
	"Calls": {
		"id": {}, "Subject": {}, "Call_Type": {}, "Call_Start_Time": {}, "Call_Duration": {},
		"Call_Duration_in_seconds": {}, "Owner": {}, "Who_Id": {}, "What_Id": {}, "Call_Result": {},
		"Voice_Recording__s": {}, "Created_Time": {}, "Modified_Time": {}, "Description": {multiLine: true},
	},
	"Leads":    {"id": {}, "First_Name": {}, "Last_Name": {}, "Full_Name": {}, "Email": {}, "Phone": {}, "Mobile": {}, "Lead_Source": {}, "Owner": {}, "Description": {multiLine: true}},
	"Tasks":    {"id": {}, "Subject": {}, "Due_Date": {}, "Status": {}, "Priority": {}, "Owner": {}, "Who_Id": {}, "What_Id": {}, "Created_Time": {}, "Description": {multiLine: true}},
	"Contacts": {"id": {}, "First_Name": {}, "Last_Name": {}, "Full_Name": {}, "Email": {}, "Phone": {}, "Mobile": {}, "Home_Phone": {}, "Other_Phone": {}, "Owner": {}, "Description": {multiLine: true}},
}

type coqlQuery struct {
	module  string
	fields  []string
	where   *coqlExpr
	orderBy string
	desc    bool
	limit   int
	offset  int
}

// coqlExpr is a criterion (op != "") or a group of two joined by and / or.
type coqlExpr struct {
	field, op string
	not       bool
	values    []string
	join      string // "and" / "or" for a group
	l, r      *coqlExpr
}

func (z *Zoho) coql(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Query string `json:"select_query"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil || strings.TrimSpace(b.Query) == "" {
		zohoFail(w, http.StatusBadRequest, "REQUIRED_PARAM_MISSING", "select_query is missing", map[string]any{"param": "select_query"})
		return
	}
	q, err := parseCOQL(b.Query, z.opts.CustomFields)
	if err != nil {
		zohoFail(w, http.StatusBadRequest, "INVALID_QUERY", err.Error(), map[string]any{"reason": err.Error()})
		return
	}
	var rows []map[string]any
	for _, row := range z.coqlRows(q.module) {
		if q.where == nil || q.where.eval(row) {
			rows = append(rows, row)
		}
	}
	if q.orderBy != "" {
		slices.SortStableFunc(rows, func(a, b map[string]any) int {
			c := cmp.Compare(fmt.Sprint(a[q.orderBy]), fmt.Sprint(b[q.orderBy]))
			if q.desc {
				return -c
			}
			return c
		})
	}
	from := min(q.offset, len(rows))
	to := min(from+q.limit, len(rows))
	page := rows[from:to]
	if len(page) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	out := make([]map[string]any, len(page))
	for i, row := range page {
		o := map[string]any{"id": row["id"]}
		for _, f := range q.fields {
			o[f] = row[f]
		}
		out[i] = o
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "info": map[string]any{"count": len(out), "more_records": to < len(rows)}})
}

// coqlRows lists a module's records as rows; calls stored within the search lag are
// not there yet.
func (z *Zoho) coqlRows(module string) []map[string]any {
	var rows []map[string]any
	if module == "Tasks" {
		return z.taskRows()
	}
	if module == "Calls" {
		visible := z.opts.Now().Add(-z.gate.searchLag())
		for _, c := range z.Records() {
			if c.stored.After(visible) {
				continue // not indexed yet
			}
			row := coqlRow(c)
			for k, v := range c.Custom {
				row[k] = v
			}
			rows = append(rows, row)
		}
		return rows
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, p := range z.people(module) {
		rows = append(rows, map[string]any{"id": p.ID, "First_Name": p.FirstName, "Last_Name": p.LastName, "Full_Name": p.name(),
			"Email": p.Email, "Phone": p.Phone, "Mobile": p.Mobile, "Home_Phone": p.HomePhone, "Other_Phone": p.OtherPhone,
			"Lead_Source": p.LeadSource, "Owner": p.OwnerID})
	}
	slices.SortFunc(rows, func(a, b map[string]any) int { return cmp.Compare(a["id"].(string), b["id"].(string)) })
	return rows
}

func coqlRow(c ZohoCall) map[string]any {
	row := map[string]any{"id": c.ID, "Subject": c.Subject, "Call_Type": c.CallType, "Call_Start_Time": c.CallStartTime,
		"Call_Duration": c.CallDuration, "Call_Duration_in_seconds": strconv.Itoa(c.DurationSecs), "Owner": c.Owner.ID,
		"Call_Result": c.CallResult, "Voice_Recording__s": c.VoiceRecording, "Created_Time": c.CreatedTime,
		"Modified_Time": c.ModifiedTime, "Description": c.Description}
	if c.WhoID != nil {
		row["Who_Id"] = c.WhoID.ID
	}
	if c.WhatID != nil {
		row["What_Id"] = c.WhatID.ID
	}
	return row
}

func (e *coqlExpr) eval(row map[string]any) bool {
	if e.op == "" {
		if e.join == "and" {
			return e.l.eval(row) && e.r.eval(row)
		}
		return e.l.eval(row) || e.r.eval(row)
	}
	v, _ := row[e.field].(string)
	var ok bool
	switch e.op {
	case "=", "!=", ">", "<", ">=", "<=":
		c := compareCOQL(e.field, v, e.values[0])
		ok = map[string]bool{"=": c == 0, "!=": c != 0, ">": c > 0, "<": c < 0, ">=": c >= 0, "<=": c <= 0}[e.op]
	case "null":
		ok = v == ""
	case "between":
		ok = compareCOQL(e.field, v, e.values[0]) >= 0 && compareCOQL(e.field, v, e.values[1]) <= 0
	case "in":
		ok = slices.Contains(e.values, v)
	case "like":
		p := e.values[0]
		switch {
		case strings.HasPrefix(p, "%") && strings.HasSuffix(p, "%") && len(p) > 1:
			ok = strings.Contains(v, p[1:len(p)-1])
		case strings.HasPrefix(p, "%"):
			ok = strings.HasSuffix(v, p[1:])
		case strings.HasSuffix(p, "%"):
			ok = strings.HasPrefix(v, p[:len(p)-1])
		default:
			ok = v == p
		}
	}
	return ok != e.not
}

// compareCOQL compares date-times as instants, numbers as numbers, else text.
func compareCOQL(field, a, b string) int {
	if strings.HasSuffix(field, "_Time") {
		ta, ea := time.Parse(zohoTime, a)
		tb, eb := time.Parse(zohoTime, b)
		if ea == nil && eb == nil {
			return ta.Compare(tb)
		}
	}
	if fa, ea := strconv.ParseFloat(a, 64); ea == nil {
		if fb, eb := strconv.ParseFloat(b, 64); eb == nil {
			return cmp.Compare(fa, fb)
		}
	}
	return cmp.Compare(a, b)
}

// --- parser ---

type coqlParser struct {
	module   string
	custom   []string // custom single-line fields of Calls
	toks     []string
	pos      int
	criteria int
}

func parseCOQL(s string, custom []string) (*coqlQuery, error) {
	toks, err := lexCOQL(s)
	if err != nil {
		return nil, err
	}
	p := &coqlParser{toks: toks, custom: custom}
	q := &coqlQuery{limit: 200}
	if !p.keyword("select") {
		return nil, fmt.Errorf("only select queries are supported")
	}
	for {
		f := p.next()
		q.fields = append(q.fields, f)
		if p.peek() != "," {
			break
		}
		p.next()
	}
	if len(q.fields) > 50 {
		return nil, fmt.Errorf("more than 50 fields in the select column")
	}
	if !p.keyword("from") {
		return nil, fmt.Errorf("from clause is missing")
	}
	q.module = p.next()
	if coqlModules[q.module] == nil {
		return nil, fmt.Errorf("module %q: the sandbox serves Calls, Leads, Contacts and Tasks", q.module)
	}
	p.module = q.module
	for _, f := range q.fields {
		if err := p.checkField(f, false); err != nil {
			return nil, err
		}
	}
	if p.keyword("where") {
		if q.where, err = p.expr(); err != nil {
			return nil, err
		}
		if p.criteria > 25 {
			return nil, fmt.Errorf("more than 25 criteria in the where clause")
		}
	}
	if p.keyword("order") {
		if !p.keyword("by") {
			return nil, fmt.Errorf("order needs by")
		}
		q.orderBy = p.next()
		if err := p.checkField(q.orderBy, false); err != nil {
			return nil, err
		}
		if p.keyword("desc") {
			q.desc = true
		} else {
			p.keyword("asc")
		}
	}
	if p.keyword("limit") {
		n, err := strconv.Atoi(p.next())
		if err != nil || n < 1 {
			return nil, fmt.Errorf("limit must be a positive number")
		}
		if p.peek() == "," { // limit offset, count
			p.next()
			c, err := strconv.Atoi(p.next())
			if err != nil || c < 1 {
				return nil, fmt.Errorf("limit count must be a positive number")
			}
			q.offset, n = n, c
		}
		q.limit = n
		if p.keyword("offset") {
			if q.offset, err = strconv.Atoi(p.next()); err != nil || q.offset < 0 {
				return nil, fmt.Errorf("offset must be a number")
			}
		}
	}
	switch {
	case p.pos != len(p.toks):
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos])
	case q.limit > 2000:
		return nil, fmt.Errorf("limit %d exceeds 2000 records per call", q.limit)
	case q.offset+q.limit > 100_000:
		return nil, fmt.Errorf("offset and limit exceed 100000 records")
	}
	return q, nil
}

func (p *coqlParser) checkField(f string, criterion bool) error {
	if p.module == "Calls" && slices.Contains(p.custom, f) {
		return nil
	}
	spec, ok := coqlModules[p.module][f]
	switch {
	case !ok:
		return fmt.Errorf("the column %q given seems to be invalid", f)
	case criterion && spec.multiLine:
		return fmt.Errorf("multi-line field %s cannot be used in criteria", f)
	}
	return nil
}

// expr reads one criterion or bracketed group, or two joined by and / or: a third
// criterion without brackets is ambiguous and refused, as Zoho does.
func (p *coqlParser) expr() (*coqlExpr, error) {
	l, err := p.term()
	if err != nil {
		return nil, err
	}
	join := strings.ToLower(p.peek())
	if join != "and" && join != "or" {
		return l, nil
	}
	p.next()
	r, err := p.term()
	if err != nil {
		return nil, err
	}
	if j := strings.ToLower(p.peek()); j == "and" || j == "or" {
		return nil, fmt.Errorf("more than two criteria must be grouped with brackets")
	}
	return &coqlExpr{join: join, l: l, r: r}, nil
}

func (p *coqlParser) term() (*coqlExpr, error) {
	if p.peek() == "(" {
		p.next()
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, fmt.Errorf("missing closing bracket")
		}
		return e, nil
	}
	p.criteria++
	f := p.next()
	if err := p.checkField(f, true); err != nil {
		return nil, err
	}
	e := &coqlExpr{field: f}
	if p.keyword("not") {
		e.not = true
	}
	switch op := strings.ToLower(p.next()); op {
	case "=", "!=", ">", "<", ">=", "<=":
		if e.not {
			return nil, fmt.Errorf("not %s is not a comparator", op)
		}
		e.op = op
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		e.values = []string{v}
	case "is":
		e.op = "null"
		e.not = p.keyword("not")
		if !p.keyword("null") {
			return nil, fmt.Errorf("is must be followed by [not] null")
		}
	case "between":
		e.op = "between"
		a, err := p.value()
		if err != nil {
			return nil, err
		}
		if !p.keyword("and") {
			return nil, fmt.Errorf("between needs and")
		}
		b, err := p.value()
		if err != nil {
			return nil, err
		}
		e.values = []string{a, b}
	case "in":
		e.op = "in"
		if p.next() != "(" {
			return nil, fmt.Errorf("in needs a bracketed list")
		}
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			e.values = append(e.values, v)
			if t := p.next(); t == ")" {
				break
			} else if t != "," {
				return nil, fmt.Errorf("in list: unexpected %q", t)
			}
		}
		if len(e.values) > 50 {
			return nil, fmt.Errorf("in takes up to 50 values")
		}
	case "like":
		e.op = "like"
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if strings.Contains(strings.Trim(v, "%"), "%") {
			return nil, fmt.Errorf("like supports starts with, ends with and contains only")
		}
		e.values = []string{v}
	default:
		return nil, fmt.Errorf("comparator %q is not supported", op)
	}
	if strings.HasSuffix(f, "_Time") {
		for _, v := range e.values {
			if _, err := time.Parse(zohoTime, v); err != nil {
				return nil, fmt.Errorf("%s: %q is not a date-time like 2026-03-14T14:56:53+05:30", f, v)
			}
		}
	}
	return e, nil
}

// value reads a quoted string (backslash escapes) or a bare number.
func (p *coqlParser) value() (string, error) {
	t := p.next()
	if strings.HasPrefix(t, "'") {
		return t[1:], nil // the lexer keeps the opening quote as a marker
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return t, nil
	}
	return "", fmt.Errorf("value %q must be quoted", t)
}

func (p *coqlParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *coqlParser) next() string {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *coqlParser) keyword(k string) bool {
	if strings.EqualFold(p.peek(), k) && !strings.HasPrefix(p.peek(), "'") {
		p.pos++
		return true
	}
	return false
}

// lexCOQL splits a query: words, numbers, punctuation, comparators and quoted strings
// (kept as "'" + unescaped text).
func lexCOQL(s string) ([]string, error) {
	var toks []string
	rs := []rune(s)
	for i := 0; i < len(rs); {
		c := rs[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '\'':
			var b strings.Builder
			i++
			for ; i < len(rs) && rs[i] != '\''; i++ {
				if rs[i] == '\\' && i+1 < len(rs) {
					i++
				}
				b.WriteRune(rs[i])
			}
			if i >= len(rs) {
				return nil, fmt.Errorf("unterminated quoted value")
			}
			i++
			toks = append(toks, "'"+b.String())
		case strings.ContainsRune("(),", c):
			toks = append(toks, string(c))
			i++
		case strings.ContainsRune("=!<>", c):
			j := i + 1
			if j < len(rs) && rs[j] == '=' {
				j++
			}
			toks = append(toks, string(rs[i:j]))
			i = j
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && !strings.ContainsRune("(),=!<>'", rs[j]) {
				j++
			}
			toks = append(toks, string(rs[i:j]))
			i = j
		}
	}
	return toks, nil
}
