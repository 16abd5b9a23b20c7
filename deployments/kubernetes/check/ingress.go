package main

import (
	"fmt"
	"strings"
)

// publicRoutes are the routes serve registers on its main listener (CALLTRACK_HTTP_ADDR)
// for MyOperator and CRM users: an Ingress in front of serve must publish each (an Ingress
// does not tell methods apart). privateRoutes are that listener's others, for the cluster
// only: no Ingress path may cover them. The console and admin API are on their own
// listener (CALLTRACK_ADMIN_ADDR, the Service's port admin), which an Ingress must not
// reach at all. TestRoutesAreClassified fails when serve registers a route in neither
// list, so a new route is published (or kept in) on purpose.
var (
	publicRoutes = []string{
		"/webhooks/myoperator/:tenant/incall",    // MyOperator inCall (POST, legacy GET)
		"/webhooks/myoperator/:tenant/aftercall", // MyOperator afterCall (POST, legacy GET)
		"/webhooks/myoperator/:tenant/v2",        // MyOperator Webhook v2
		"/webhooks/zoho/:tenant/clicktodial",     // Zoho PhoneBridge's click-to-dial callback
		"/r/:tenant/:call/:token",                // recording links written into CRM records
		"/recordings/:tenant/:call",              // the earlier, long form of them
		"/api/v1/tenants/:tenant/calls",          // click-to-call from the CRM side (tenant API token)
	}
	privateRoutes = []string{"/healthz", "/readyz", "/metrics"}
)

// checkIngress: an Ingress that routes to serve publishes every public route, nothing
// private, and only serve's http port. A render without such an Ingress (the small
// overlay: bring your own load balancer) is not checked.
func checkIngress(objs []obj, add func(string, ...any)) {
	var servePods map[string]string
	services := map[string]obj{}
	for _, o := range objs {
		switch {
		case o.kind() == "StatefulSet" && o.name() == "calltrack-serve":
			servePods = labelsOf(get(o.m, "spec", "template", "metadata", "labels"))
		case o.kind() == "Service":
			services[o.name()] = o
		}
	}
	// toServe says whether a backend is a Service of serve's pods, and on which of its
	// container ports; "" when it is not serve.
	toServe := func(backend any) (target string) {
		svc, ok := services[str(backend, "service", "name")]
		if !ok || servePods == nil {
			return ""
		}
		sel := labelsOf(get(svc.m, "spec", "selector"))
		if len(sel) == 0 || !matchesLabels(sel, servePods) {
			return ""
		}
		name := str(backend, "service", "port", "name")
		number, _ := num(backend, "service", "port", "number")
		ports, _ := get(svc.m, "spec", "ports").([]any)
		for _, p := range ports {
			if n, _ := num(p, "port"); (name != "" && str(p, "name") == name) || (name == "" && n == number) {
				t := fmt.Sprint(get(p, "targetPort"))
				if t == "<nil>" {
					t = fmt.Sprint(n)
				}
				return t
			}
		}
		return "?"
	}

	for _, o := range objs {
		if o.kind() != "Ingress" {
			continue
		}
		type path struct{ path, pathType string }
		var paths []path
		if t := toServe(get(o.m, "spec", "defaultBackend")); t != "" {
			add("%s: its defaultBackend is serve: every path would be public, /metrics and /readyz among them", o.id())
		}
		rules, _ := get(o.m, "spec", "rules").([]any)
		for _, r := range rules {
			ps, _ := get(r, "http", "paths").([]any)
			for _, p := range ps {
				t := toServe(get(p, "backend"))
				if t == "" {
					continue
				}
				if t != "http" && t != "8080" {
					add("%s: path %s reaches serve's port %s, not http (:8080): the console and admin API must not be published", o.id(), str(p, "path"), t)
					continue
				}
				paths = append(paths, path{str(p, "path"), str(p, "pathType")})
			}
		}
		if len(paths) == 0 {
			continue // not an Ingress of serve's
		}
		for _, route := range publicRoutes {
			published := false
			for _, p := range paths {
				if p.pathType != "ImplementationSpecific" && covers(p.path, p.pathType, route) {
					published = true
				}
			}
			if !published {
				add("%s: does not publish %s, which MyOperator or CRM users call (add a Prefix path for it)", o.id(), route)
			}
		}
		for _, route := range privateRoutes {
			for _, p := range paths {
				if covers(p.path, p.pathType, route) {
					add("%s: path %s (%s) publishes %s, which is for the cluster only", o.id(), p.path, p.pathType, route)
				}
			}
		}
	}
}

// covers says whether an Ingress path matches a route's requests. Prefix matches by
// whole path elements (/r/ matches /r/acme/..., not /rx); Exact the path alone;
// ImplementationSpecific is taken as Prefix (what ingress-nginx does without regex
// annotations). A route's :parameters match only a Prefix that ends before them.
func covers(path, pathType, route string) bool {
	p := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	r := strings.FieldsFunc(route, func(r rune) bool { return r == '/' })
	if pathType == "Exact" {
		return strings.Join(p, "/") == strings.Join(r, "/") && !strings.Contains(route, ":")
	}
	if len(p) > len(r) {
		return false
	}
	for i := range p {
		if p[i] != r[i] {
			return false
		}
	}
	return true
}
