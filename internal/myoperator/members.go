package myoperator

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// fieldOf is a struct field readObject fills: its JSON name and the field, whose own
// UnmarshalJSONFrom reads the value.
type fieldOf[T any] struct {
	name  string
	field func(*T) jsonv2.UnmarshalerFrom
}

var errNotObject = errors.New("want a JSON object")

// readObject reads the decoder's next value, a JSON object, into v as encoding/json
// matches member names — case-insensitively (strings.EqualFold), the last of
// duplicates winning, unknown members skipped — and hands each value to its field's
// UnmarshalJSONFrom. It is encoding/json/v2's struct decoding for structs of flex
// fields, without the reflection and name folding that were a third of the
// afterCall's decode (issue 14; FuzzDecodeAsV1 holds the reading to v1's). Anything
// but an object is read whole and refused, as v2 refuses it.
func readObject[T any](dec *jsontext.Decoder, v *T, fields *members[T]) error {
	if dec.PeekKind() != '{' {
		if err := dec.SkipValue(); err != nil {
			return err
		}
		return errNotObject
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	var unquoted []byte
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue() // a member name (PeekKind 0 on broken JSON: its error)
		if err != nil {
			return err
		}
		n := []byte(name[1 : len(name)-1])
		if bytes.IndexByte(n, '\\') >= 0 {
			if unquoted, err = jsontext.AppendUnquote(unquoted[:0], name); err != nil {
				return err
			}
			n = unquoted
		}
		m := fields.lookup(n)
		if m == nil {
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		if err := m.field(v).UnmarshalJSONFrom(dec); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// members are a struct's fieldOf, indexed by name.
type members[T any] struct {
	list  []fieldOf[T]
	exact map[string]int
}

// membersOf indexes a struct's fields. Their names must be lowercase ASCII: lookup
// skips the case folding for a name that cannot fold to one.
func membersOf[T any](list []fieldOf[T]) *members[T] {
	m := &members[T]{list: list, exact: make(map[string]int, len(list))}
	for i, f := range list {
		if strings.ToLower(f.name) != f.name || strings.IndexFunc(f.name, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0 {
			panic("myoperator: member name " + f.name + " is not lowercase ASCII")
		}
		m.exact[f.name] = i
	}
	return m
}

// lookup finds name's field: an exact match, else one equal under Unicode case
// folding, as encoding/json's field matching.
func (m *members[T]) lookup(name []byte) *fieldOf[T] {
	if i, ok := m.exact[string(name)]; ok {
		return &m.list[i]
	}
	folds := false // only a name with an uppercase or non-ASCII letter can fold to a lowercase one
	for _, c := range name {
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			folds = true
			break
		}
	}
	if !folds {
		return nil
	}
	for i := range m.list {
		if strings.EqualFold(string(name), m.list[i].name) { // 'ſ' is 's', 'K' (Kelvin) 'k'
			return &m.list[i]
		}
	}
	return nil
}

// UnmarshalJSONFrom reads an afterCall member by member (readObject).
func (p *afterCall) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return readObject(dec, p, afterCallMembers)
}

var afterCallMembers = membersOf([]fieldOf[afterCall]{
	{"_ai", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.LogID }},
	{"_ci", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.CompanyID }},
	{"_cr", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Caller10 }},
	{"_cl", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.CallerE164 }},
	{"_cm", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.CallerName }},
	{"_cy", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.CountryCode }},
	{"_st", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Start }},
	{"_et", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.End }},
	{"_dr", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Duration }},
	{"_ev", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Event }},
	{"_su", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Status }},
	{"_ns", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Nature }},
	{"_cri", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.ClientRef }},
	{"_fn", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.FileName }},
	{"_fu", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.FileURL }},
	{"_dn", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Department }},
	{"_di", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.DepartmentID }},
	{"_dsp", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Disposition }},
	{"_pm", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Params }},
	{"_cn", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Contacts }},
	{"_ld", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.Legs }},
	{"_us", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.UserStatus }},
	{"_tc", func(p *afterCall) jsonv2.UnmarshalerFrom { return &p.TalkTime }},
})

// UnmarshalJSONFrom reads a `{ky, vl}` pair member by member (readObject).
func (p *kv) UnmarshalJSONFrom(dec *jsontext.Decoder) error { return readObject(dec, p, kvMembers) }

var kvMembers = membersOf([]fieldOf[kv]{
	{"ky", func(p *kv) jsonv2.UnmarshalerFrom { return &p.Key }},
	{"vl", func(p *kv) jsonv2.UnmarshalerFrom { return &p.Value }},
})

// UnmarshalJSONFrom reads a `_tc` entry member by member (readObject).
func (p *talkSec) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return readObject(dec, p, talkSecMembers)
}

var talkSecMembers = membersOf([]fieldOf[talkSec]{
	{"ye", func(p *talkSec) jsonv2.UnmarshalerFrom { return &p.User }},
	{"yf", func(p *talkSec) jsonv2.UnmarshalerFrom { return &p.Secs }},
})

// agentMembers are an agent object's members (agent.UnmarshalJSONFrom).
var agentMembers = membersOf([]fieldOf[agent]{
	{"_id", func(p *agent) jsonv2.UnmarshalerFrom { return &p.ID }},
	{"_na", func(p *agent) jsonv2.UnmarshalerFrom { return &p.Name }},
	{"_em", func(p *agent) jsonv2.UnmarshalerFrom { return &p.Email }},
	{"_ex", func(p *agent) jsonv2.UnmarshalerFrom { return &p.Extension }},
	{"_ct", func(p *agent) jsonv2.UnmarshalerFrom { return &p.Contact }},
	{"_nr", func(p *agent) jsonv2.UnmarshalerFrom { return &p.Number }},
})

// UnmarshalJSONFrom reads a `_ld` leg member by member (readObject).
func (p *leg) UnmarshalJSONFrom(dec *jsontext.Decoder) error { return readObject(dec, p, legMembers) }

var legMembers = membersOf([]fieldOf[leg]{
	{"_rst", func(p *leg) jsonv2.UnmarshalerFrom { return &p.RingStart }},
	{"_ds", func(p *leg) jsonv2.UnmarshalerFrom { return &p.DialStatus }},
	{"_did", func(p *leg) jsonv2.UnmarshalerFrom { return &p.DID }},
	{"_st", func(p *leg) jsonv2.UnmarshalerFrom { return &p.Start }},
	{"_et", func(p *leg) jsonv2.UnmarshalerFrom { return &p.End }},
	{"_dr", func(p *leg) jsonv2.UnmarshalerFrom { return &p.Duration }},
	{"_su", func(p *leg) jsonv2.UnmarshalerFrom { return &p.Status }},
	{"_ac", func(p *leg) jsonv2.UnmarshalerFrom { return &p.Action }},
	{"_rr", func(p *leg) jsonv2.UnmarshalerFrom { return &p.Receivers }},
	{"_tt", func(p *leg) jsonv2.UnmarshalerFrom { return &p.Transfers }},
})

// UnmarshalJSONFrom reads a log_details item: the embedded leg's members and its own
// (leg's method would otherwise stand in for the whole item).
func (p *searchLeg) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return readObject(dec, p, searchLegMembers)
}

var searchLegMembers = membersOf(append(embedded(legMembers, func(p *searchLeg) *leg { return &p.leg }), []fieldOf[searchLeg]{
	{"action", func(p *searchLeg) jsonv2.UnmarshalerFrom { return &p.ActionLong }},
	{"duration", func(p *searchLeg) jsonv2.UnmarshalerFrom { return &p.DurationLong }},
	{"start_time", func(p *searchLeg) jsonv2.UnmarshalerFrom { return &p.StartLong }},
	{"end_time", func(p *searchLeg) jsonv2.UnmarshalerFrom { return &p.EndLong }},
	{"status", func(p *searchLeg) jsonv2.UnmarshalerFrom { return &p.StatusLong }},
	{"received_by", func(p *searchLeg) jsonv2.UnmarshalerFrom { return &p.ReceivedBy }},
	{"transferred_to", func(p *searchLeg) jsonv2.UnmarshalerFrom { return &p.TransferredTo }},
}...))

// embedded are an embedded struct's members, promoted to the outer struct O.
func embedded[O, E any](in *members[E], field func(*O) *E) []fieldOf[O] {
	out := make([]fieldOf[O], len(in.list))
	for i, f := range in.list {
		out[i] = fieldOf[O]{f.name, func(o *O) jsonv2.UnmarshalerFrom { return f.field(field(o)) }}
	}
	return out
}
