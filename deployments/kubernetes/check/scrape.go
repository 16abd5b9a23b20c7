package main

import (
	"fmt"
	"slices"
	"strings"
)

// checkScrapes: with prometheus-operator monitors in the render, every role's pods are
// scraped exactly once. A pod behind two Services that one ServiceMonitor selects (or
// also matched by a PodMonitor) is two targets: every sum over its metrics — and the
// serve autoscaler's webhooks per second — counts it twice.
func checkScrapes(objs []obj, add func(string, ...any)) {
	var services, serviceMonitors, podMonitors, workloads []obj
	for _, o := range objs {
		switch o.kind() {
		case "Service":
			services = append(services, o)
		case "ServiceMonitor":
			serviceMonitors = append(serviceMonitors, o)
		case "PodMonitor":
			podMonitors = append(podMonitors, o)
		case "Deployment", "StatefulSet":
			workloads = append(workloads, o)
		}
	}
	if len(serviceMonitors)+len(podMonitors) == 0 {
		return // monitoring is not part of this render
	}
	for _, w := range workloads {
		podLabels := labelsOf(get(w.m, "spec", "template", "metadata", "labels"))
		var by []string // what scrapes the pods, once per target
		for _, sm := range serviceMonitors {
			for _, svc := range services {
				sel := labelsOf(get(svc.m, "spec", "selector"))
				if len(sel) == 0 || !matchesLabels(sel, podLabels) || !selects(get(sm.m, "spec", "selector"), labelsOf(get(svc.m, "metadata", "labels"))) {
					continue
				}
				ports := namesOf(get(svc.m, "spec", "ports"))
				endpoints, _ := get(sm.m, "spec", "endpoints").([]any)
				for _, ep := range endpoints {
					if ports[str(ep, "port")] {
						by = append(by, fmt.Sprintf("%s via Service %s port %s", sm.id(), svc.name(), str(ep, "port")))
					}
				}
			}
		}
		for _, pm := range podMonitors {
			if !selects(get(pm.m, "spec", "selector"), podLabels) {
				continue
			}
			ports := map[string]bool{}
			containers, _ := get(w.m, "spec", "template", "spec", "containers").([]any)
			for _, c := range containers {
				for p := range namesOf(get(c, "ports")) {
					ports[p] = true
				}
			}
			endpoints, _ := get(pm.m, "spec", "podMetricsEndpoints").([]any)
			for _, ep := range endpoints {
				if ports[str(ep, "port")] {
					by = append(by, fmt.Sprintf("%s port %s", pm.id(), str(ep, "port")))
				}
			}
		}
		switch {
		case len(by) == 0:
			add("%s: no ServiceMonitor or PodMonitor scrapes its pods (its metrics and alerts would be missing)", w.id())
		case len(by) > 1:
			slices.Sort(by)
			add("%s: its pods are scraped %d times (%s): every sum over their metrics counts each pod %d times; select one Service (or one PodMonitor) per role", w.id(), len(by), strings.Join(by, "; "), len(by))
		}
	}
}

// labelsOf reads a map of labels.
func labelsOf(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// namesOf: the names of a list of ports.
func namesOf(v any) map[string]bool {
	l, _ := v.([]any)
	out := map[string]bool{}
	for _, p := range l {
		if n := str(p, "name"); n != "" {
			out[n] = true
		}
	}
	return out
}

// matchesLabels: every label of sel is in labels.
func matchesLabels(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// selects evaluates a Kubernetes label selector (matchLabels and matchExpressions) on
// labels. An empty selector selects everything, as in a ServiceMonitor.
func selects(selector any, labels map[string]string) bool {
	if !matchesLabels(labelsOf(get(selector, "matchLabels")), labels) {
		return false
	}
	exprs, _ := get(selector, "matchExpressions").([]any)
	for _, e := range exprs {
		key := str(e, "key")
		got, has := labels[key]
		var values []string
		if l, ok := get(e, "values").([]any); ok {
			for _, v := range l {
				values = append(values, fmt.Sprint(v))
			}
		}
		var ok bool
		switch str(e, "operator") {
		case "In":
			ok = has && slices.Contains(values, got)
		case "NotIn":
			ok = !has || !slices.Contains(values, got)
		case "Exists":
			ok = has
		case "DoesNotExist":
			ok = !has
		}
		if !ok {
			return false
		}
	}
	return true
}
