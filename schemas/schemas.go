// Package schemas holds the JSON Schemas of the events calltrack puts on Kafka, one
// per topic, named after it (calltrack.call.log.v1.json, ...), and validates record
// values against them. Each schema is self-contained (draft 2020-12, no external
// $ref), so it can be copied to a schema registry or another team as one file.
// openapi.yaml, next to them, describes the HTTP API.
//
// Compiled schemas are cached; everything here is safe for concurrent use.
package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// BaseURL is the prefix of every schema's $id: the $id of a topic's schema is
// BaseURL + topic + ".json".
const BaseURL = "https://calltrack.dev/schemas/"

// Topics whose record value is not validated as JSON.
const (
	// topicRejected carries the raw webhook body as text, not JSON.
	topicRejected = "calltrack.webhook.rejected.v1"
	// topicMapping is compacted: an empty value is a tombstone (a deleted mapping).
	topicMapping = "calltrack.mapping.v1"
	// topicParked is compacted: an empty value is a tombstone (a call written since).
	topicParked = "calltrack.call.parked.v1"
)

// ErrUnknownTopic is returned for a topic that has no schema.
var ErrUnknownTopic = errors.New("schemas: no schema for topic")

//go:embed *.json
var files embed.FS

// FS returns the schema files (<topic>.json), e.g. to serve or publish them.
func FS() fs.FS { return files }

type entry struct {
	once sync.Once
	sch  *jsonschema.Schema
	err  error
}

// entries has one entry per embedded schema; built once, then only read.
var entries = func() map[string]*entry {
	m := map[string]*entry{}
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		panic(err) // the pattern is constant and valid
	}
	for _, n := range names {
		m[strings.TrimSuffix(n, ".json")] = &entry{}
	}
	return m
}()

// Topics returns the topics that have a schema, sorted.
func Topics() []string {
	out := make([]string, 0, len(entries))
	for t := range entries {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// URL returns the $id of a topic's schema.
func URL(topic string) string { return BaseURL + topic + ".json" }

// Source returns the schema document of a topic as stored.
func Source(topic string) ([]byte, error) {
	if _, ok := entries[topic]; !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	return files.ReadFile(topic + ".json")
}

// Compile returns the compiled schema of a topic. It is compiled once and cached.
// Formats (date-time) are asserted, and no $ref may leave the document: the schema
// must be self-contained.
func Compile(topic string) (*jsonschema.Schema, error) {
	e, ok := entries[topic]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	e.once.Do(func() { e.sch, e.err = compile(topic) })
	return e.sch, e.err
}

func compile(topic string) (*jsonschema.Schema, error) {
	raw, err := files.ReadFile(topic + ".json")
	if err != nil {
		return nil, fmt.Errorf("schemas: %s: %w", topic, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schemas: %s.json: %w", topic, err)
	}
	url := URL(topic)
	if obj, ok := doc.(map[string]any); !ok || obj["$id"] != url {
		return nil, fmt.Errorf("schemas: %s.json: $id must be %q", topic, url)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	// No loader for any scheme: a $ref outside the document fails to compile.
	c.UseLoader(jsonschema.SchemeURLLoader{})
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schemas: %s: %w", topic, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schemas: %s: %w", topic, err)
	}
	return sch, nil
}

// Validate checks a record value of topic against the topic's schema. The value is
// JSON, except on calltrack.webhook.rejected.v1, whose value is the raw webhook body
// and is validated as a string, and on the compacted calltrack.mapping.v1 and
// calltrack.call.parked.v1, where an empty value is a tombstone and is not validated. A failed validation returns an error wrapping a
// *jsonschema.ValidationError.
func Validate(topic string, value []byte) error {
	sch, err := Compile(topic)
	if err != nil {
		return err
	}
	var inst any
	switch {
	case topic == topicRejected:
		inst = string(value)
	case (topic == topicMapping || topic == topicParked) && len(value) == 0:
		return nil
	default:
		if inst, err = jsonschema.UnmarshalJSON(bytes.NewReader(value)); err != nil {
			return fmt.Errorf("schemas: %s: value is not JSON: %w", topic, err)
		}
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("schemas: %s: %w", topic, err)
	}
	return nil
}
