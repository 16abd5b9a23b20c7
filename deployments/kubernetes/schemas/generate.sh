#!/usr/bin/env bash
# Regenerates the JSON Schemas kubeconform checks the manifests with (see README.md here):
# the Kubernetes OpenAPI spec and prometheus-operator's CRDs, both fetched as Go modules
# through the Go module proxy, turned into strict standalone schemas by ../schemagen.
set -euo pipefail
cd "$(dirname "$0")"
K8S=v1.36.3            # the Kubernetes API validated against
PROMOP=v0.85.0         # prometheus-operator: ServiceMonitor, PodMonitor, PrometheusRule
KINDS=v1/ConfigMap,v1/Secret,v1/Service,v1/ServiceAccount,apps/v1/Deployment,apps/v1/StatefulSet
KINDS=$KINDS,autoscaling/v2/HorizontalPodAutoscaler,policy/v1/PodDisruptionBudget
KINDS=$KINDS,networking.k8s.io/v1/NetworkPolicy,networking.k8s.io/v1/Ingress

dir() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'; }
k8s=$(dir "k8s.io/kubernetes@$K8S")
promop=$(dir "github.com/prometheus-operator/prometheus-operator@$PROMOP")
crds=$promop/example/prometheus-operator-crd
find . -name '*.json' -delete
go run ../schemagen -out . -swagger "$k8s/api/openapi-spec/swagger.json" -kinds "$KINDS" \
  "$crds/monitoring.coreos.com_servicemonitors.yaml" \
  "$crds/monitoring.coreos.com_podmonitors.yaml" \
  "$crds/monitoring.coreos.com_prometheusrules.yaml"
echo "schemas of Kubernetes $K8S and prometheus-operator $PROMOP written to $(pwd)"
