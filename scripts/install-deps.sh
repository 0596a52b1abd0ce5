#!/usr/bin/env bash
# Installs the Debian packages sparkscale needs to build, test and demo,
# skipping those already present. Usage: scripts/install-deps.sh [build|spark|test|all]
#   spark: build + what `scripts/demo.sh --spark` needs (a JRE, python3-venv)
set -euo pipefail

what=${1:-all}
build_pkgs=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev
            libprotobuf-c-dev protobuf-c-compiler librdkafka-dev libcmocka-dev
            libjansson-dev libyaml-dev curl python3 ca-certificates)
test_pkgs=(clang libclang-rt-14-dev valgrind carbon-c-relay default-jre-headless maven
           python3-venv python3-pip procps etcd-server openssl chromium fonts-dejavu-core strace)

spark_pkgs=(default-jre-headless python3-venv python3-pip)

pkgs=("${build_pkgs[@]}")
case "$what" in
  build) ;;
  spark) pkgs+=("${spark_pkgs[@]}") ;;
  *) pkgs+=("${test_pkgs[@]}") ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# A JRE from elsewhere (e.g. a preinstalled OpenJDK) is good enough for Spark.
if command -v java >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [ "$p" = default-jre-headless ] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
