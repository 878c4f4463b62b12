#!/usr/bin/env bash
# Renders the Helm chart deploy/helm/trawl as `helm template` would (with
# deploy/helm/render, Helm's template engine built from Debian's Go
# libraries: Debian ships no helm) for three layouts: the default values,
# values-s3.yaml and ci/scaling-values.yaml; then validates every manifest,
# and the PersistentVolumeClaim the init job applies, against the JSON
# schemas of Kubernetes $K8S_VERSION with kubernetes-validate (PyPI), in
# strict mode (an unknown field fails). Values the chart must refuse are
# checked to fail. Offline; scripts/setup.sh installs the tools.
#
# Usage: scripts/check_helm.sh [OUT_DIR]     (default target/helm-check)
# Writes OUT_DIR/LAYOUT.yaml (the rendered chart) and OUT_DIR/LAYOUT.json
# (every document as JSON: [{"source", "embedded", "manifest"}]).
# TRAWL_HELM_CHART=DIR checks another copy of the chart.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CHART=${TRAWL_HELM_CHART:-deploy/helm/trawl}
OUT=${1:-target/helm-check}
K8S_VERSION=1.37.0
VENV=target/tools-venv
TOOLS=target/helm-render
LAYOUTS=(default s3 scaling)

missing=()
command -v go >/dev/null 2>&1 || missing+=("go (Debian golang-go)")
[ -d /usr/share/gocode/src/github.com/Masterminds/sprig ] || missing+=("sprig (Debian golang-github-masterminds-sprig-dev)")
[ -d /usr/share/gocode/src/github.com/ghodss/yaml ] || missing+=("ghodss/yaml (Debian golang-github-ghodss-yaml-dev)")
[ -x "$VENV/bin/kubernetes-validate" ] || missing+=("kubernetes-validate ($VENV)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "check_helm: missing: ${missing[*]} (scripts/setup.sh installs them)" >&2
  exit 3
fi

mkdir -p "$OUT" "$TOOLS"
GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$ROOT/$TOOLS/gocache" GOFLAGS= \
  go build -o "$TOOLS/helm-render" ./deploy/helm/render

render() {
  "$TOOLS/helm-render" --name lab --namespace forensics --kube-version "v$K8S_VERSION" "$@" "$CHART"
}

for layout in "${LAYOUTS[@]}"; do
  case $layout in
    default) files=() ;;
    s3) files=(-f "$CHART/values-s3.yaml") ;;
    scaling) files=(-f "$CHART/ci/scaling-values.yaml") ;;
  esac
  if ! render "${files[@]}" >"$OUT/$layout.yaml" 2>"$OUT/$layout.err"; then
    echo "check_helm: the chart does not render ($layout): $(cat "$OUT/$layout.err")" >&2
    exit 1
  fi
  # Every document as JSON, and the manifests the chart carries inside
  # ConfigMaps (the init job's claim) as documents of their own.
  "$VENV/bin/python" - "$OUT/$layout.yaml" "$OUT/$layout.json" "$OUT/$layout.embedded.yaml" <<'PY'
import json, re, sys, yaml
src, out_json, out_embedded = sys.argv[1:4]
docs, embedded = [], []
for part in re.split(r"(?m)^---[ \t]*$", open(src).read()):
    if not part.strip():
        continue
    m = re.search(r"(?m)^# Source: (\S+)", part)
    manifest = yaml.safe_load(part)
    if manifest is None:
        continue
    source = m.group(1) if m else "?"
    docs.append({"source": source, "embedded": False, "manifest": manifest})
    if manifest.get("kind") == "ConfigMap":
        for key, text in (manifest.get("data") or {}).items():
            if key.endswith(".yaml"):
                inner = yaml.safe_load(text)
                if isinstance(inner, dict) and "apiVersion" in inner and "kind" in inner:
                    docs.append({"source": f"{source}#{key}", "embedded": True, "manifest": inner})
                    embedded.append(f"# Source: {source}#{key}\n{text}")
json.dump(docs, open(out_json, "w"), indent=1)
open(out_embedded, "w").write("".join(f"---\n{e}" for e in embedded))
PY
done

# Validation, strict, against the schemas of one current release.
validate_files=()
for layout in "${LAYOUTS[@]}"; do
  validate_files+=("$OUT/$layout.yaml")
  [ -s "$OUT/$layout.embedded.yaml" ] && validate_files+=("$OUT/$layout.embedded.yaml")
done
version=$("$VENV/bin/pip" show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p')
if ! "$VENV/bin/kubernetes-validate" --strict -k "$K8S_VERSION" "${validate_files[@]}" >"$OUT/validate.log" 2>&1; then
  grep -v '^INFO ' "$OUT/validate.log" >&2 || true
  echo "check_helm: manifests do not validate against Kubernetes $K8S_VERSION (kubernetes-validate $version, strict)" >&2
  exit 1
fi
passed=$(grep -c '^INFO .* passed for resource' "$OUT/validate.log" || true)
if grep -v '^INFO ' "$OUT/validate.log" | grep -q .; then
  grep -v '^INFO ' "$OUT/validate.log" >&2
  echo "check_helm: kubernetes-validate warned (above): the chart must validate cleanly" >&2
  exit 1
fi
if [ "$passed" -lt 1 ]; then
  echo "check_helm: kubernetes-validate checked nothing" >&2
  exit 1
fi

# Values the chart must refuse, with the reason it gives.
refuse() {
  local what=$1; shift
  local err
  if err=$(render "$@" 2>&1 >/dev/null); then
    echo "check_helm: rendered, but must be refused: $what ($*)" >&2
    exit 1
  fi
  echo "refused (as it must): $what: ${err#Error: }"
}
refuse "init off without the Secrets it makes" --set init.enabled=false
refuse "an object store without credentials" --set objectStore.enabled=true
refuse "a grace period not past the drain" --set worker.drainMarginSeconds=0
refuse "autoscaling on no metric" --set worker.autoscaling.cpu.enabled=false
refuse "an audit key Secret while the init job makes the key" --set scheduler.auditKey.existingSecret=mine
refuse "a fraction of a core for a worker" --set worker.cpu=0.5

echo "check_helm: ${#LAYOUTS[@]} layouts rendered (${LAYOUTS[*]}); $passed manifests valid against Kubernetes $K8S_VERSION (kubernetes-validate $version, strict)"
