#!/usr/bin/env bash
# Renders every kustomization under deploy/ and validates the result offline:
#   - built-in kinds against the Kubernetes OpenAPI schemas (kubernetes-validate, strict),
#   - ServiceMonitor/PodMonitor objects against the schemas in deploy/crds/.
set -euo pipefail
cd "$(dirname "$0")"

K8S_VERSION="${K8S_VERSION:-1.35.0}"

command -v kubectl >/dev/null || { echo "validate.sh: kubectl is required (for kustomize)" >&2; exit 2; }
if ! command -v kubernetes-validate >/dev/null; then
    python3 -m pip install --quiet kubernetes-validate
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for k in base overlays/*/; do
    k="${k%/}"
    name="$(echo "$k" | tr '/' '_')"
    echo "rendering $k"
    kubectl kustomize "$k" > "$out/$name.yaml"
done

# Built-in kinds; custom resources are checked below against our CRDs.
python3 - "$out" <<'PY'
import glob, sys, yaml
for path in glob.glob(sys.argv[1] + "/*.yaml"):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    builtin = [d for d in docs if not d["apiVersion"].startswith("monitoring.coreos.com/")]
    custom = [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]
    yaml.safe_dump_all(builtin, open(path + ".builtin", "w"))
    yaml.safe_dump_all(custom, open(path + ".custom", "w"))
PY
kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$out"/*.builtin crds/*.yaml

python3 - "$out" <<'PY'
import glob, sys, yaml, jsonschema
schemas = {}
for f in glob.glob("crds/*.yaml"):
    crd = yaml.safe_load(open(f))
    for v in crd["spec"]["versions"]:
        key = (crd["spec"]["group"] + "/" + v["name"], crd["spec"]["names"]["kind"])
        schemas[key] = v["schema"]["openAPIV3Schema"]
failed = False
for path in sorted(glob.glob(sys.argv[1] + "/*.custom")):
    for d in yaml.safe_load_all(open(path)):
        if not d:
            continue
        key = (d["apiVersion"], d["kind"])
        name = f'{d["kind"].lower()}/{d["metadata"]["name"]}'
        if key not in schemas:
            print(f"ERROR {path}: no CRD schema for {key}")
            failed = True
            continue
        errors = list(jsonschema.Draft7Validator(schemas[key]).iter_errors(d))
        for e in errors:
            print(f"ERROR {path}: {name}: {'/'.join(map(str, e.path))}: {e.message}")
        failed |= bool(errors)
        if not errors:
            print(f"INFO {path}: {name} passed against deploy/crds")
sys.exit(1 if failed else 0)
PY
echo "deploy/: all manifests valid"
