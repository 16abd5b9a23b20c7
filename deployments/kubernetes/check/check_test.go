package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/calltrack/calltrack/internal/app"
	"github.com/calltrack/calltrack/internal/config"
	"github.com/calltrack/calltrack/internal/metrics"
)

// good is a trimmed render of the production overlay: the rules hold.
const good = `
apiVersion: v1
kind: ConfigMap
metadata: {name: calltrack-config-h2k8f}
data: {CALLTRACK_KAFKA_PARTITIONS: "12", CALLTRACK_SHUTDOWN_TIMEOUT: 25s}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: calltrack-serve}
spec:
  template:
    metadata: {labels: {app.kubernetes.io/name: calltrack, app.kubernetes.io/component: serve}}
    spec:
      terminationGracePeriodSeconds: 70
      securityContext: {runAsNonRoot: true}
      containers:
        - name: calltrack
          env: [{name: CALLTRACK_SPOOL_DIR, value: /var/lib/calltrack/spool}]
          lifecycle: {preStop: {sleep: {seconds: 5}}}
          readinessProbe: {httpGet: {path: /readyz, port: http}}
          livenessProbe: {httpGet: {path: /healthz, port: http}}
          resources: {requests: {cpu: 250m, memory: 64Mi}, limits: {memory: 256Mi}}
          securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
          ports: [{name: http, containerPort: 8080}, {name: admin, containerPort: 8081}]
          volumeMounts: [{name: spool, mountPath: /var/lib/calltrack/spool}]
  volumeClaimTemplates:
    - metadata: {name: spool}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: calltrack-work}
spec:
  replicas: 2
  template:
    metadata: {labels: {app.kubernetes.io/name: calltrack, app.kubernetes.io/component: work}}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
        - name: calltrack
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /readyz, port: http}}
          livenessProbe: {httpGet: {path: /healthz, port: http}}
          resources: {requests: {cpu: 250m, memory: 128Mi}, limits: {memory: 512Mi}}
          securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: calltrack-work}
spec:
  scaleTargetRef: {kind: Deployment, name: calltrack-work}
  maxReplicas: 12
---
apiVersion: v1
kind: Service
metadata:
  name: calltrack-serve
  labels: {app.kubernetes.io/name: calltrack, app.kubernetes.io/component: serve, calltrack/metrics: "true"}
spec:
  selector: {app.kubernetes.io/name: calltrack, app.kubernetes.io/component: serve}
  ports: [{name: http, port: 80, targetPort: http}, {name: admin, port: 8081, targetPort: admin}]
---
apiVersion: v1
kind: Service
metadata:
  name: calltrack-serve-headless
  labels: {app.kubernetes.io/name: calltrack, app.kubernetes.io/component: serve}
spec:
  clusterIP: None
  selector: {app.kubernetes.io/name: calltrack, app.kubernetes.io/component: serve}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: calltrack-serve}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: calltrack, app.kubernetes.io/component: serve, calltrack/metrics: "true"}
  endpoints: [{port: http, path: /metrics}]
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: calltrack-work-sync}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: calltrack}
    matchExpressions: [{key: app.kubernetes.io/component, operator: In, values: [work, sync]}]
  podMetricsEndpoints: [{port: http, path: /metrics}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: calltrack}
spec:
  rules:
    - http:
        paths:
          - {path: /webhooks/, pathType: Prefix, backend: {service: {name: calltrack-serve, port: {name: http}}}}
          - {path: /r/, pathType: Prefix, backend: {service: {name: calltrack-serve, port: {name: http}}}}
          - {path: /recordings/, pathType: Prefix, backend: {service: {name: calltrack-serve, port: {name: http}}}}
          - {path: /api/v1/, pathType: Prefix, backend: {service: {name: calltrack-serve, port: {name: http}}}}
`

func TestCheck(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"production render", "", "", ""},
		{"work autoscaled past the partitions", "maxReplicas: 12", "maxReplicas: 13", "maxReplicas 13 exceeds CALLTRACK_KAFKA_PARTITIONS 12"},
		{"work replicas past the partitions", "replicas: 2", "replicas: 20", "20 replicas but 12 partitions"},
		{"grace shorter than the drain", "terminationGracePeriodSeconds: 70", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds 30 < 55"},
		{"spool on the container's disk", "volumeClaimTemplates:\n    - metadata: {name: spool}", "volumeClaimTemplates: []", "not on a persistent volume"},
		{"liveness on readiness", "livenessProbe: {httpGet: {path: /healthz, port: http}}\n          resources: {requests: {cpu: 250m, memory: 64Mi}",
			"livenessProbe: {httpGet: {path: /readyz, port: http}}\n          resources: {requests: {cpu: 250m, memory: 64Mi}", "liveness must not follow readiness"},
		{"no memory limit", "limits: {memory: 512Mi}", "limits: {}", "needs cpu and memory requests and a memory limit"},
		{"root", "component: work}}\n    spec:\n      securityContext: {runAsNonRoot: true}", "component: work}}\n    spec:\n      securityContext: {}", "runAsNonRoot is not true"},
		{"partitions unset", `CALLTRACK_KAFKA_PARTITIONS: "12", `, "", "CALLTRACK_KAFKA_PARTITIONS \"\" is not a number"},
		{"serve scraped through both its Services", "serve, calltrack/metrics: \"true\"}\n  endpoints", "serve}\n  endpoints",
			"StatefulSet/calltrack-serve: its pods are scraped 2 times (ServiceMonitor/calltrack-serve via Service calltrack-serve port http; ServiceMonitor/calltrack-serve via Service calltrack-serve-headless port http)"},
		{"serve also in the PodMonitor", "values: [work, sync]", "values: [work, sync, serve]", "StatefulSet/calltrack-serve: its pods are scraped 2 times"},
		{"work not scraped", "values: [work, sync]", "values: [sync]", "Deployment/calltrack-work: no ServiceMonitor or PodMonitor scrapes its pods"},
		{"short recording links not published", "          - {path: /r/, pathType: Prefix, backend: {service: {name: calltrack-serve, port: {name: http}}}}\n", "",
			"Ingress/calltrack: does not publish /r/:tenant/:call/:token"},
		{"click-to-call not published", "path: /api/v1/,", "path: /api/v2/,", "Ingress/calltrack: does not publish /api/v1/tenants/:tenant/calls"},
		{"everything published", "path: /api/v1/,", "path: /,", "Ingress/calltrack: path / (Prefix) publishes /metrics"},
		{"the admin port published", "path: /api/v1/, pathType: Prefix, backend: {service: {name: calltrack-serve, port: {name: http}}}",
			"path: /api/v1/, pathType: Prefix, backend: {service: {name: calltrack-serve, port: {number: 8081}}}", "path /api/v1/ reaches serve's port admin"},
		{"readiness published exactly", "path: /api/v1/, pathType: Prefix", "path: /readyz, pathType: Exact", "path /readyz (Exact) publishes /readyz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := good
			if c.from != "" {
				require.Contains(t, in, c.from)
				in = strings.Replace(in, c.from, c.to, 1)
			}
			objs, err := decode(strings.NewReader(in))
			require.NoError(t, err)
			require.Len(t, objs, 9)
			got := strings.Join(Check(objs), "\n")
			if c.want == "" {
				assert.Empty(t, got)
			} else {
				assert.Contains(t, got, c.want)
			}
		})
	}
}

// An Ingress of another Service is not held to serve's routes.
func TestIngressOfAnotherService(t *testing.T) {
	objs, err := decode(strings.NewReader(strings.ReplaceAll(good, "name: calltrack-serve, port:", "name: other, port:")))
	require.NoError(t, err)
	assert.Empty(t, Check(objs))
}

// The production overlay's Ingress, with base's Services, publishes every public route.
func TestProductionIngress(t *testing.T) {
	var objs []obj
	for _, f := range []string{"../base/serve.yaml", "../overlays/production/ingress.yaml"} {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		o, err := decode(bytes.NewReader(raw))
		require.NoError(t, err)
		objs = append(objs, o...)
	}
	var problems []string
	checkIngress(objs, func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) })
	assert.Empty(t, problems)
}

// Every route serve's main listener registers — as serve runs on Kubernetes, with the
// admin surface on CALLTRACK_ADMIN_ADDR — is public or private, on purpose: a new route
// lands in one list, and checkIngress then holds the Ingress to it.
func TestRoutesAreClassified(t *testing.T) {
	a := &app.App{Cfg: config.Config{AdminAddr: "127.0.0.1:8081"}, Log: zerolog.Nop(), Metrics: metrics.New()}
	registered := map[string]bool{}
	for _, r := range a.HTTP().Routes() {
		registered[r.Path] = true
	}
	classified := map[string]bool{}
	for _, r := range append(slices.Clone(publicRoutes), privateRoutes...) {
		classified[r] = true
	}
	assert.Equal(t, classified, registered, "serve's routes changed: list each in publicRoutes or privateRoutes (deployments/kubernetes/check/ingress.go)")
}
