#!/usr/bin/env bash
# The configurations shipped under deploy/ must load: the example file and
# the one embedded in the Kubernetes ConfigMap go through --check-config.
# Usage: tests/deploy/check_deploy.sh SPARKSCALED
set -euo pipefail
bin=${1:?usage: check_deploy.sh SPARKSCALED}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# --check-config builds the Kafka client configuration, which loads the CA
# file it names: stand in the system bundle for the deployment's path.
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || { echo "no system CA bundle at $ca (package ca-certificates)"; exit 1; }
example=$(mktemp)
trap 'rm -f "$tmp" "$example"' EXIT
sed "s#/etc/sparkscale/kafka-ca.pem#$ca#" "$root/deploy/sparkscale.example.yaml" >"$example"
"$bin" --check-config --config "$example" >/dev/null

# Each ConfigMap's "sparkscale.yaml: |" block, dedented by its 4 spaces.
for m in sparkscaled sparkscale-actuator; do
  awk '/sparkscale.yaml: \|/ {on = 1; next} on && /^---/ {exit} on {sub(/^    /, ""); print}' \
    "$root/deploy/kubernetes/$m.yaml" >"$tmp"
  grep -q "clusters:" "$tmp" || { echo "no config block found in the ConfigMap of $m.yaml"; exit 1; }
  "$bin" --check-config --config "$tmp" >/dev/null
done
echo "deploy configs: 3 passed, 0 failed"
