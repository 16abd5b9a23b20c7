package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
			require.Len(t, objs, 8)
			got := strings.Join(Check(objs), "\n")
			if c.want == "" {
				assert.Empty(t, got)
			} else {
				assert.Contains(t, got, c.want)
			}
		})
	}
}
