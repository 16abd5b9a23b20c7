// Command schemagen writes the JSON Schemas kubeconform validates calltrack's manifests
// with, because its default download (from GitHub) is out of reach in CI. It reads the
// Kubernetes OpenAPI v2 spec and CustomResourceDefinitions, both from Go modules (so the
// Go module proxy serves them), and writes one standalone, strict schema per kind:
//
//	<out>/<group>/<kind>_<version>.json     (core kinds: group "v1")
//
// which is kubeconform's -schema-location '<out>/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'.
// Strict, as kubeconform's own schemas are: every object that lists its properties
// refuses others (a misspelt field fails), unless it preserves unknown fields.
// deployments/kubernetes/schemas/README.md has the command that made the committed ones.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

func main() {
	swagger := flag.String("swagger", "", "Kubernetes api/openapi-spec/swagger.json")
	kinds := flag.String("kinds", "", "comma list of group/version/Kind to write from the swagger (core: v1/Kind)")
	out := flag.String("out", "", "output directory")
	flag.Parse()
	if *out == "" {
		fail(errors.New("-out is required"))
	}
	if *swagger != "" {
		if err := fromSwagger(*swagger, strings.Split(*kinds, ","), *out); err != nil {
			fail(err)
		}
	}
	for _, crd := range flag.Args() {
		if err := fromCRD(crd, *out); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "schemagen:", err)
	os.Exit(1)
}

type gvk struct{ Group, Version, Kind string }

// apiVersion is how a manifest names the group and version: "v1" for core.
func (k gvk) apiVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

// path is kubeconform's {{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json.
func (k gvk) path(out string) string {
	parts := strings.Split(k.apiVersion(), "/")
	return filepath.Join(out, parts[0], strings.ToLower(k.Kind)+"_"+parts[len(parts)-1]+".json")
}

func parseGVK(s string) (gvk, error) {
	i := strings.LastIndex(s, "/")
	if i < 0 {
		return gvk{}, fmt.Errorf("kind %q: want group/version/Kind or v1/Kind", s)
	}
	gv, kind := s[:i], s[i+1:]
	if j := strings.Index(gv, "/"); j >= 0 {
		return gvk{Group: gv[:j], Version: gv[j+1:], Kind: kind}, nil
	}
	return gvk{Version: gv, Kind: kind}, nil
}

// fromSwagger writes the named kinds of a Kubernetes OpenAPI v2 spec.
func fromSwagger(file string, want []string, out string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var spec struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	byGVK := map[gvk]string{}
	for name, def := range spec.Definitions {
		list, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, x := range list {
			m, _ := x.(map[string]any)
			g, _ := m["group"].(string)
			v, _ := m["version"].(string)
			k, _ := m["kind"].(string)
			byGVK[gvk{g, v, k}] = name
		}
	}
	for _, w := range want {
		k, err := parseGVK(strings.TrimSpace(w))
		if err != nil {
			return err
		}
		name, ok := byGVK[k]
		if !ok {
			return fmt.Errorf("%s: no definition of %s", file, w)
		}
		s := expand(spec.Definitions, name, nil)
		props, _ := s["properties"].(map[string]any)
		if props != nil { // the only values a manifest of this kind may have
			props["apiVersion"] = map[string]any{"type": "string", "enum": []any{k.apiVersion()}}
			props["kind"] = map[string]any{"type": "string", "enum": []any{k.Kind}}
		}
		if err := write(k.path(out), s); err != nil {
			return err
		}
	}
	return nil
}

// expand returns the definition with every $ref replaced by what it names; a
// definition that contains itself is cut off as "anything" at the repeat.
func expand(defs map[string]map[string]any, name string, seen []string) map[string]any {
	for _, s := range seen {
		if s == name {
			return map[string]any{}
		}
	}
	def, ok := defs[name]
	if !ok {
		return map[string]any{}
	}
	switch name {
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	}
	seen = append(seen, name)
	return strict(walk(def, func(m map[string]any) map[string]any {
		if ref, ok := m["$ref"].(string); ok {
			return expand(defs, strings.TrimPrefix(ref, "#/definitions/"), seen)
		}
		return nil
	})).(map[string]any)
}

// walk copies v, replacing each object for which f returns non-nil.
func walk(v any, f func(map[string]any) map[string]any) any {
	switch t := v.(type) {
	case map[string]any:
		if r := f(t); r != nil {
			return r
		}
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = walk(x, f)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = walk(x, f)
		}
		return out
	}
	return v
}

// strict makes every object schema that lists properties refuse other ones, unless
// it keeps unknown fields on purpose; x-kubernetes-int-or-string becomes its types.
func strict(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = strict(x)
		}
		if _, ok := t["properties"]; ok {
			if _, set := t["additionalProperties"]; !set && t["x-kubernetes-preserve-unknown-fields"] != true {
				t["additionalProperties"] = false
			}
		}
		if t["x-kubernetes-int-or-string"] == true && t["anyOf"] == nil && t["oneOf"] == nil {
			delete(t, "type")
			t["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
	case []any:
		for i, x := range t {
			t[i] = strict(x)
		}
	}
	return v
}

// fromCRD writes one schema per served version of a CustomResourceDefinition.
func fromCRD(file, out string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var crd struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Group string `yaml:"group"`
			Names struct {
				Kind string `yaml:"kind"`
			} `yaml:"names"`
			Versions []struct {
				Name   string `yaml:"name"`
				Served bool   `yaml:"served"`
				Schema struct {
					OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
				} `yaml:"schema"`
			} `yaml:"versions"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if crd.Kind != "CustomResourceDefinition" {
		return fmt.Errorf("%s: not a CustomResourceDefinition", file)
	}
	for _, v := range crd.Spec.Versions {
		if !v.Served || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		k := gvk{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
		if err := write(k.path(out), strict(v.Schema.OpenAPIV3Schema).(map[string]any)); err != nil {
			return err
		}
	}
	return nil
}

func write(path string, schema map[string]any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(schema, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
