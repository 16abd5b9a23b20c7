package ingest

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/calltrack/calltrack/internal/call"
	"github.com/calltrack/calltrack/internal/myoperator"
	"github.com/calltrack/calltrack/internal/testenv"
)

// logHashIgnores are the fields ingest or the writer sets, not the payload: a
// redelivery differs there and is still the same call; and Malformed, the parser's
// note of what it skipped, which is no part of the event (two payloads that differ
// only there write the same call).
var logHashIgnores = map[string]bool{"Owner": true, "Internal": true, "OwnerUnresolved": true, "ReceivedAt": true,
	"EarlierAgents": true, "Malformed": true}

// TestLogHashCoversEveryField changes each field of a call.Log in turn, through
// nested structs, slices and pointers, and wants another hash — but for the fields
// ingest sets, which must not move it. A field added to call.Log and not to
// appendLog fails here.
func TestLogHashCoversEveryField(t *testing.T) {
	base := func() *call.Log {
		l := &call.Log{}
		fill(reflect.ValueOf(l).Elem(), 1)
		return l
	}
	want := logHash(base())
	if logHash(base()) != want {
		t.Fatal("the same log hashes differently")
	}
	paths := leaves(reflect.TypeFor[call.Log](), nil)
	if len(paths) < 40 {
		t.Fatalf("only %d leaf fields found: the walk is broken", len(paths))
	}
	for _, path := range paths {
		l := base()
		change(reflect.ValueOf(l).Elem(), path)
		got := logHash(l)
		name := strings.Join(path, ".")
		if logHashIgnores[path[0]] {
			if got != want {
				t.Errorf("%s is ingest's own, yet changing it changed the hash", name)
			}
			continue
		}
		if got == want {
			t.Errorf("changing %s left the hash as it was: appendLog misses it", name)
		}
	}
	// A list one item longer, and the same bytes moved between two fields.
	l := base()
	l.Legs = append(l.Legs, l.Legs[0])
	if logHash(l) == want {
		t.Error("an extra leg left the hash as it was")
	}
	a, b := base(), base()
	a.CallerNumber, a.CallerName = "ab", "c"
	b.CallerNumber, b.CallerName = "a", "bc"
	if logHash(a) == logHash(b) {
		t.Error("moving a byte from one field to the next left the hash as it was")
	}
}

// fill gives every field of v a value other than its zero, slices one item.
func fill(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, n, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), n+i)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), n)
	case reflect.String:
		v.SetString("v" + strings.Repeat("x", n%7))
	case reflect.Int:
		v.SetInt(int64(n + 1))
	case reflect.Bool:
		v.SetBool(true)
	default:
		panic("fill: no value for " + v.Kind().String())
	}
}

// leaves lists the paths to every leaf field of t (a slice's first item stands for
// its items; a pointer and a slice are leaves themselves too: nil and empty).
func leaves(t reflect.Type, prefix []string) [][]string {
	var out [][]string
	for i := range t.NumField() {
		f := t.Field(i)
		p := append(append([]string(nil), prefix...), f.Name)
		ft := f.Type
		switch {
		case ft == reflect.TypeFor[time.Time]():
			out = append(out, p)
		case ft.Kind() == reflect.Struct:
			out = append(out, leaves(ft, p)...)
		case ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice:
			out = append(out, p) // set to nil / empty
			if ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeFor[time.Time]() {
				out = append(out, leaves(ft.Elem(), p)...)
			}
		default:
			out = append(out, p)
		}
	}
	return out
}

// change alters the leaf at path; a path ending at a pointer or slice empties it.
func change(v reflect.Value, path []string) {
	f := v.FieldByName(path[0])
	for f.Kind() == reflect.Pointer || f.Kind() == reflect.Slice {
		if len(path) == 1 {
			f.SetZero()
			return
		}
		if f.Kind() == reflect.Pointer {
			f = f.Elem()
		} else {
			f = f.Index(0)
		}
	}
	if len(path) > 1 {
		change(f, path[1:])
		return
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(f.String() + "!")
	case reflect.Int:
		f.SetInt(f.Int() + 1)
	case reflect.Bool:
		f.SetBool(!f.Bool())
	case reflect.Struct: // time.Time
		f.Set(reflect.ValueOf(f.Interface().(time.Time).Add(time.Second)))
	default:
		panic("change: " + f.Kind().String())
	}
}

// BenchmarkDedupeKey is the hash of an afterCall's dedupe key both ways, on the
// sample payload: go test -run '^$' -bench DedupeKey -benchmem ./internal/ingest/
// (figures in BENCHMARKS.md, section 5).
func BenchmarkDedupeKey(b *testing.B) {
	raw, err := os.ReadFile("../myoperator/testdata/aftercall_answered.json")
	if err != nil {
		b.Fatal(err)
	}
	obj, err := myoperator.ExtractJSON("application/json", raw, nil)
	if err != nil {
		b.Fatal(err)
	}
	l, err := myoperator.ParseAfterCall("acme", obj, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		hash func() string
	}{
		{"Payload", func() string { return payloadHash(obj) }}, // canonical JSON, inCalls'
		{"Log", func() string { return logHash(l) }},           // the parsed log, afterCalls'
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			defer testenv.ReportCPUPerOp(b, testenv.CPUTime())
			for b.Loop() {
				if bc.hash() == "" {
					b.Fatal("no hash")
				}
			}
		})
	}
}

// A delivery's hash is its dedupe key across versions: MyOperator's retry of a
// delivery a previous version took must hash the same (a field added to call.Log goes
// in only when set). The value is the one before caller_raw was added.
func TestLogHashIsStableAcrossVersions(t *testing.T) {
	raw, err := os.ReadFile("../myoperator/testdata/aftercall_answered.json")
	if err != nil {
		t.Fatal(err)
	}
	l, err := myoperator.ParseAfterCall("acme", raw, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := logHash(l), "9a93f75dce717986e3119887017d9667"; got != want {
		t.Errorf("the sample afterCall hashes to %s, not %s as before: redeliveries across an upgrade would be published again", got, want)
	}
}
