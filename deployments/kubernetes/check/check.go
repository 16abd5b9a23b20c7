package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// obj is one manifest, as generic YAML. (A struct, not a named map type: yaml.v3 would
// decode every nested mapping into the named type too.)
type obj struct{ m map[string]any }

func decode(r io.Reader) ([]obj, error) {
	dec := yaml.NewDecoder(r)
	var out []obj
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode manifests: %w", err)
		}
		if m != nil {
			out = append(out, obj{m})
		}
	}
}

// get walks a path of map keys and list indexes ("spec", "template", 0, ...).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := get(v, path...).(string); return s }

func num(v any, path ...any) (int, bool) {
	n, ok := get(v, path...).(int)
	return n, ok
}

func (o obj) kind() string { return str(o.m, "kind") }
func (o obj) name() string { return str(o.m, "metadata", "name") }
func (o obj) id() string   { return o.kind() + "/" + o.name() }

// Check returns every broken rule.
func Check(objs []obj) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	config := map[string]string{}
	for _, o := range objs {
		if o.kind() == "ConfigMap" && strings.HasPrefix(o.name(), "calltrack-config") {
			data, _ := get(o.m, "data").(map[string]any)
			for k, v := range data {
				config[k], _ = v.(string)
			}
		}
	}
	partitions, err := strconv.Atoi(config["CALLTRACK_KAFKA_PARTITIONS"])
	if err != nil {
		add("ConfigMap calltrack-config: CALLTRACK_KAFKA_PARTITIONS %q is not a number", config["CALLTRACK_KAFKA_PARTITIONS"])
	}
	shutdown, err := time.ParseDuration(config["CALLTRACK_SHUTDOWN_TIMEOUT"])
	if err != nil {
		shutdown = 20 * time.Second // the default
	}

	for _, o := range objs {
		m := o.m
		switch o.kind() {
		case "Deployment", "StatefulSet":
			pod := get(m, "spec", "template", "spec")
			checkPod(o.id(), pod, add)
			if o.name() == "calltrack-work" {
				if n, ok := num(m, "spec", "replicas"); ok && partitions > 0 && n > partitions {
					add("%s: %d replicas but %d partitions: %d would idle", o.id(), n, partitions, n-partitions)
				}
			}
			if o.name() == "calltrack-serve" {
				checkServe(o, pod, shutdown, config, add)
			}
		case "HorizontalPodAutoscaler":
			target := str(m, "spec", "scaleTargetRef", "name")
			if target == "calltrack-work" {
				if n, _ := num(m, "spec", "maxReplicas"); partitions > 0 && n > partitions {
					add("%s: maxReplicas %d exceeds CALLTRACK_KAFKA_PARTITIONS %d (writers beyond the partition count idle)", o.id(), n, partitions)
				}
			}
		}
	}
	checkScrapes(objs, add) // scrape.go
	checkIngress(objs, add) // ingress.go
	return problems
}

// checkPod: probes, resources and a non-root, read-only container everywhere.
func checkPod(id string, pod any, add func(string, ...any)) {
	if get(pod, "securityContext", "runAsNonRoot") != true {
		add("%s: pod securityContext.runAsNonRoot is not true", id)
	}
	containers, _ := get(pod, "containers").([]any)
	for _, c := range containers {
		name := str(c, "name")
		for _, p := range []string{"readinessProbe", "livenessProbe"} {
			if get(c, p) == nil {
				add("%s: container %s has no %s", id, name, p)
			}
		}
		if str(c, "livenessProbe", "httpGet", "path") == "/readyz" {
			add("%s: container %s: liveness must not follow readiness (/readyz checks Kafka and Redis; an outage would restart every replica)", id, name)
		}
		if get(c, "resources", "requests", "cpu") == nil || get(c, "resources", "requests", "memory") == nil || get(c, "resources", "limits", "memory") == nil {
			add("%s: container %s needs cpu and memory requests and a memory limit", id, name)
		}
		if get(c, "securityContext", "readOnlyRootFilesystem") != true || get(c, "securityContext", "allowPrivilegeEscalation") != false {
			add("%s: container %s: readOnlyRootFilesystem true and allowPrivilegeEscalation false are required", id, name)
		}
	}
}

// checkServe: the spool is on a volume of its own, and the pod gets time to drain.
func checkServe(o obj, pod any, shutdown time.Duration, config map[string]string, add func(string, ...any)) {
	m := o.m
	c := get(pod, "containers", 0)
	dir := config["CALLTRACK_SPOOL_DIR"]
	env, _ := get(c, "env").([]any)
	for _, e := range env {
		if str(e, "name") == "CALLTRACK_SPOOL_DIR" {
			dir = str(e, "value")
		}
	}
	if dir == "" {
		dir = "/var/lib/calltrack/spool"
	}
	claims := map[string]bool{}
	if o.kind() == "StatefulSet" {
		vcts, _ := get(m, "spec", "volumeClaimTemplates").([]any)
		for _, v := range vcts {
			claims[str(v, "metadata", "name")] = true
		}
	}
	mounted := false
	mounts, _ := get(c, "volumeMounts").([]any)
	for _, v := range mounts {
		if str(v, "mountPath") == dir && claims[str(v, "name")] {
			mounted = true
		}
	}
	if !mounted {
		add("%s: the spool %s is not on a persistent volume of its own (a volumeClaimTemplate of a StatefulSet)", o.id(), dir)
	}
	pre, _ := num(c, "lifecycle", "preStop", "sleep", "seconds")
	grace, ok := num(pod, "terminationGracePeriodSeconds")
	if !ok {
		grace = 30
	}
	// preStop, then in-flight requests, then the spool's drain: each up to the timeout.
	if need := pre + int(2*shutdown/time.Second); grace < need {
		add("%s: terminationGracePeriodSeconds %d < %d (preStop %ds + 2 × CALLTRACK_SHUTDOWN_TIMEOUT %s): the spool may not drain on scale-down", o.id(), grace, need, pre, shutdown)
	}
}
