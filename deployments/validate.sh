#!/usr/bin/env bash
# Checks the deployment files the way CI does, with no network but the package registries:
#   - every kustomize overlay renders, passes kubeconform -strict against the schemas in
#     kubernetes/schemas (Kubernetes + prometheus-operator CRDs, made by schemas/generate.sh)
#     and calltrack's own rules (kubernetes/check: work replicas ≤ partitions, the spool's
#     volume and drain time, probes, resources, non-root, each pod scraped once);
#   - the Prometheus alert rules pass `promtool check rules` and their unit tests
#     (monitoring/calltrack.rules.test.yaml).
# Tools are installed once at pinned versions into a cache directory (go install; promtool
# unpacked from Debian's prometheus package, not installed: no server is set up) and
# reused by later runs.
set -euo pipefail
cd "$(dirname "$0")/.."

KUSTOMIZE=v5.8.2      # v5.8.3 needs Go 1.27
KUBECONFORM=v0.8.0
tools=${CALLTRACK_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/calltrack-tools}
mkdir -p "$tools/bin"
export PATH="$tools/bin:$PATH"

install_go() { # binary module@version
  local stamp="$tools/bin/.$1-${2##*@}"
  [[ -x "$tools/bin/$1" && -e "$stamp" ]] && return
  GOBIN="$tools/bin" GOFLAGS=-mod=mod go install "$2"
  touch "$stamp"
}
install_go kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE"
install_go kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM"
if [[ ! -x "$tools/bin/promtool" ]]; then
  deb=$(mktemp -d)
  (cd "$deb" && { apt-get download prometheus 2>/dev/null || { apt-get update -q >/dev/null && apt-get download prometheus; }; })
  dpkg-deb -x "$deb"/prometheus_*.deb "$deb/x"
  cp "$deb/x/usr/bin/promtool" "$tools/bin/promtool"
  rm -rf "$deb"
fi

schemas=deployments/kubernetes/schemas
for overlay in deployments/kubernetes/overlays/*/; do
  echo "validate: $overlay"
  out=$(mktemp --suffix=.yaml)
  kustomize build "$overlay" >"$out"
  kubeconform -strict -summary -schema-location "$schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" "$out"
  go run ./deployments/kubernetes/check <"$out"
  rm -f "$out"
done

echo "validate: alert rules"
(cd deployments/monitoring && promtool check rules calltrack.rules.yaml && promtool test rules calltrack.rules.test.yaml)
