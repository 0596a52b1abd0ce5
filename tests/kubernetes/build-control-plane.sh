#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and (optionally) kubectl from the
# k8s.io/kubernetes Go module into a cache dir outside the repo, for control-plane.sh.
#
# k8s.io/kubernetes cannot be built with a plain `go install`: its go.mod replaces
# every k8s.io/<staging> module (k8s.io/api, k8s.io/client-go, ...) with a directory
# under ./staging, and replace directives of a dependency are ignored. So this script
# writes a throwaway main module in the cache dir that requires k8s.io/kubernetes and
# replaces each of those staging modules with its published v0.<minor>.<patch> twin.
# The list of staging modules is read from kubernetes's own go.mod (from the module
# proxy), so it stays right when the version changes.
#
# Idempotent: returns at once when the binaries are there and answer --version.
# Usage: tests/kubernetes/build-control-plane.sh     (the bin dir is the last line of stdout)
#        tests/kubernetes/build-control-plane.sh --check   (exit 0 if built, 1 if not; builds nothing)
#   SS_K8S_VERSION   (default v1.37.2)
#   SS_K8S_CACHE     (default ${XDG_CACHE_HOME:-~/.cache}/sparkscale/k8s-$SS_K8S_VERSION)
#   SS_K8S_KUBECTL=0 skip kubectl (the tests do not need it; it adds about 40 s)
#   SS_K8S_BUILD_P   go build -p (default: go's default, the number of cores)
set -euo pipefail

K8S_VERSION=${SS_K8S_VERSION:-v1.37.2}
case "$K8S_VERSION" in
  v1.*.*) ;;
  *) echo "k8s build: SS_K8S_VERSION must look like v1.37.2 (got '$K8S_VERSION')" >&2; exit 1 ;;
esac
STAGING_VERSION=v0.${K8S_VERSION#v1.}          # v1.37.2 -> v0.37.2
cache=${SS_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparkscale/k8s-$K8S_VERSION}
bin=$cache/bin
keepmod=$cache/build-module     # the last successful build's go.mod and go.sum, for reference

bins=(kube-apiserver kube-controller-manager)
[ "${SS_K8S_KUBECTL:-1}" = 0 ] || bins+=(kubectl)

die() { echo "k8s build: $*" >&2; exit 1; }

# A binary counts only if it runs and reports the version we pin.
runs() {
  local out
  case "$1" in
    kubectl) out=$("$bin/kubectl" version --client 2>/dev/null) || return 1 ;;
    *)       out=$("$bin/$1" --version 2>/dev/null) || return 1 ;;
  esac
  grep -q -- "$K8S_VERSION" <<< "$out"
}

all_there() {
  local b
  for b in "${bins[@]}"; do
    [ -x "$bin/$b" ] && runs "$b" || return 1
  done
}

if [ "${1:-}" = --check ]; then
  all_there
  exit $?
fi
if all_there; then
  echo "k8s build: ${bins[*]} $K8S_VERSION already built" >&2
  echo "$bin"
  exit 0
fi

command -v go >/dev/null 2>&1 \
  || die "go not found on PATH (Kubernetes $K8S_VERSION needs Go 1.26 or newer; install Go and retry)"

# Only the module proxy: never fall back to fetching from version control.
proxy=$(go env GOPROXY)
proxy=${proxy//,direct/}; proxy=${proxy//|direct/}
case "$proxy" in ""|direct) proxy=https://proxy.golang.org ;; esac   # off: module cache only
export GOPROXY=$proxy
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off
unset GOOS GOARCH

mkdir -p "$cache" || die "cannot create $cache"
work=$(mktemp -d "$cache/.build.XXXXXX") || die "cannot create a temp dir in $cache"
trap 'rm -rf "$work"' EXIT

start=$(date +%s)
echo "k8s build: fetching k8s.io/kubernetes@$K8S_VERSION from $GOPROXY" >&2
if ! (cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION") > "$work/dl.json" 2> "$work/dl.err"; then
  cat "$work/dl.json" "$work/dl.err" >&2
  die "the Go module proxy ($GOPROXY) did not serve k8s.io/kubernetes@$K8S_VERSION"
fi
kmod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' "$work/dl.json")
[ -s "$kmod" ] || die "go mod download gave no go.mod for k8s.io/kubernetes@$K8S_VERSION (see $work/dl.json)"

# The staging modules: lines "k8s.io/foo => ./staging/src/k8s.io/foo" in kubernetes's go.mod.
mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$kmod")
[ ${#staging[@]} -gt 0 ] || die "found no ./staging replace directives in $kmod"
gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$kmod")
have=$(go env GOVERSION); have=${have#go}
if [ -n "$gover" ] && [ "$(printf '%s\n%s\n' "$gover" "$have" | sort -V | head -n 1)" != "$gover" ]; then
  die "k8s.io/kubernetes@$K8S_VERSION needs Go $gover or newer; this go is $have"
fi
echo "k8s build: $K8S_VERSION replaces ${#staging[@]} staging modules; pinning each to $STAGING_VERSION" >&2

# The throwaway module lives in the cache dir, never in the repo; each run has its own.
moddir=$work/module
mkdir -p "$moddir"
{
  echo "// Throwaway module written by sparkscale's tests/kubernetes/build-control-plane.sh."
  echo "module sparkscale.test/k8s-control-plane"
  echo
  echo "go ${gover:-1.26.0}"
  echo
  # kubernetes's own godebug defaults, so the binaries behave like the released ones.
  grep '^godebug ' "$kmod" || true
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  for m in "${staging[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
  echo ")"
} > "$moddir/go.mod"

pkgs=()
for b in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done

echo "k8s build: resolving dependencies" >&2
if ! (cd "$moddir" && go mod download k8s.io/kubernetes 2> "$work/deps.err" \
        && go list -deps "${pkgs[@]}" > /dev/null 2>> "$work/deps.err"); then
  tail -30 "$work/deps.err" >&2
  grep -Eq "404|410|not found|unknown revision" "$work/deps.err" \
    && die "the Go module proxy ($GOPROXY) refused a module above (is every staging module published at $STAGING_VERSION?)"
  die "could not resolve the dependencies of k8s.io/kubernetes@$K8S_VERSION (no network to the Go module proxy $GOPROXY?)"
fi

# What hack/lib/version.sh stamps into a release build, so --version and /version say $K8S_VERSION.
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
pflag=()
[ -z "${SS_K8S_BUILD_P:-}" ] || pflag=(-p "$SS_K8S_BUILD_P")

echo "k8s build: go build ${bins[*]} ($(nproc) cores: about 6 minutes on 2 the first time, more when other builds share them)" >&2
mkdir -p "$work/bin"
if ! (cd "$moddir" && go build "${pflag[@]}" -trimpath -ldflags="$ld" -o "$work/bin/" "${pkgs[@]}") 2> "$work/build.err"; then
  tail -40 "$work/build.err" >&2
  die "go build failed"
fi
mkdir -p "$bin"
for b in "${bins[@]}"; do
  [ -x "$work/bin/$b" ] || die "go build finished but $b is missing"
  mv -f "$work/bin/$b" "$bin/$b"
done
all_there || die "the new binaries in $bin do not report $K8S_VERSION"
rm -rf "$keepmod"
cp -r "$moddir" "$keepmod" 2>/dev/null || true
echo "k8s build: built ${bins[*]} in $(( $(date +%s) - start )) s" >&2
echo "$bin"
