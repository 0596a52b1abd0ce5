#!/usr/bin/env bash
# What deploy/ ships, checked against this tree and its build:
#  1. the configurations load: the example file and the one embedded in each
#     Kubernetes ConfigMap go through --check-config;
#  2. the systemd units (check_systemd.py: hardening, restart and stop against the
#     daemons' shutdown bounds, cmake --install, systemd-analyze verify/security);
#  3. the Containerfile's references (check_containerfile.py);
#  4. the Spark settings: deploy/spark/ is their one place (check_spark_conf.py).
# Usage: tests/deploy/check_deploy.sh BUILD_DIR
set -uo pipefail
build=$(cd "${1:?usage: check_deploy.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$build/ingest/sparkscaled
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

configs() {
  # --check-config builds the Kafka client configuration, which loads the CA
  # file it names: stand in the system bundle for the deployment's path.
  local ca=/etc/ssl/certs/ca-certificates.crt m
  [ -s "$ca" ] || { echo "deploy configs: no system CA bundle at $ca (package ca-certificates)"; return 1; }
  sed "s#/etc/sparkscale/kafka-ca.pem#$ca#" "$root/deploy/sparkscale.example.yaml" > "$tmp/example.yaml"
  "$bin" --check-config --config "$tmp/example.yaml" >/dev/null || return 1
  # Each ConfigMap's "sparkscale.yaml: |" block, dedented by its 4 spaces.
  for m in sparkscaled sparkscale-actuator; do
    awk '/sparkscale.yaml: \|/ {on = 1; next} on && /^---/ {exit} on {sub(/^    /, ""); print}' \
      "$root/deploy/kubernetes/$m.yaml" > "$tmp/$m.yaml"
    grep -q "clusters:" "$tmp/$m.yaml" || { echo "no config block found in the ConfigMap of $m.yaml"; return 1; }
    "$bin" --check-config --config "$tmp/$m.yaml" >/dev/null || return 1
  done
  echo "deploy configs: 3 passed, 0 failed"
}

configs || { echo "deploy configs: FAIL"; failed=$((failed + 1)); }
python3 "$here/check_systemd.py" "$build" || failed=$((failed + 1))
python3 "$here/check_containerfile.py" "$build" || failed=$((failed + 1))
python3 "$here/check_spark_conf.py" || failed=$((failed + 1))
[ "$failed" -eq 0 ] && echo "deploy: PASS" || echo "deploy: $failed part(s) failed"
[ "$failed" -eq 0 ]
