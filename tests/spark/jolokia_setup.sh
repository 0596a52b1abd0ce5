#!/usr/bin/env bash
# Fetches the Jolokia JVM agent (org.jolokia:jolokia-agent-jvm, classifier javaagent: one
# self-contained jar for -javaagent) from Maven Central into a cache dir outside the repo.
# Idempotent: returns at once when the pinned version is already there.
# Usage: tests/spark/jolokia_setup.sh     (prints the jar's path on the last line of stdout)
#   JOLOKIA_VERSION (default 2.6.0), JOLOKIA_DIR (default ${XDG_CACHE_HOME:-~/.cache}/sparkscale/jolokia-VERSION)
set -euo pipefail

JOLOKIA_VERSION=${JOLOKIA_VERSION:-2.6.0}   # 2.x agents need Java 11+
cache=${XDG_CACHE_HOME:-$HOME/.cache}/sparkscale
dest=${JOLOKIA_DIR:-$cache/jolokia-$JOLOKIA_VERSION}
jar="$dest/jolokia-agent-jvm-$JOLOKIA_VERSION-javaagent.jar"

die() { echo "jolokia setup: $*" >&2; exit 1; }

# A jar is a zip: a complete one ends with its central directory, which unzip -t checks.
# Without unzip, a non-empty file written by the rename below is taken as complete.
good() {
  [ -s "$jar" ] || return 1
  if command -v unzip >/dev/null 2>&1; then unzip -tq "$jar" >/dev/null 2>&1; fi
}

if good; then
  echo "$jar"
  exit 0
fi

if ! command -v mvn >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "jolokia setup: mvn not found; installing the Debian package maven" >&2
    { apt-get install -y -q --no-install-recommends maven >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends maven >&2; }; } \
      || die "could not install maven (apt-get install maven failed)"
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven (Debian: apt-get install maven)"
fi

echo "jolokia setup: fetching org.jolokia:jolokia-agent-jvm:$JOLOKIA_VERSION:javaagent into $dest" >&2
mkdir -p "$cache" || die "cannot create $cache"
tmp=$(mktemp -d "$cache/.jolokia-$JOLOKIA_VERSION.XXXXXX") || die "cannot create a temp dir in $cache"
trap 'rm -rf "$tmp"' EXIT
# dependency:copy needs no pom; -B: no colours or progress. The jar lands in ~/.m2 too.
if ! mvn -B -q -Dstyle.color=never \
       org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
       -Dartifact="org.jolokia:jolokia-agent-jvm:$JOLOKIA_VERSION:jar:javaagent" \
       -DoutputDirectory="$tmp" > "$tmp/mvn.log" 2>&1; then
  tail -30 "$tmp/mvn.log" >&2
  die "mvn could not fetch org.jolokia:jolokia-agent-jvm:$JOLOKIA_VERSION:javaagent (no network to the registry?)"
fi
rm -f "$tmp/mvn.log"
[ -s "$tmp/$(basename "$jar")" ] || die "mvn finished but $(basename "$jar") is missing from its output"
# Swap in whole, so a concurrent or interrupted run never sees half a directory.
rm -rf "$dest"
mv "$tmp" "$dest" || die "cannot move the jar to $dest"
trap - EXIT
good || die "$jar is not a readable jar"
echo "$jar"
