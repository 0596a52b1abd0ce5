#!/usr/bin/env bash
# Fetches Apache Kafka (kafka_2.13: KRaft broker + controller, StorageTool) and kafka-tools (TopicCommand)
# with their runtime jars from Maven Central into a cache dir outside the repo, for run_kafka_e2e.sh.
# Idempotent: returns at once when the pinned version is already complete.
# Usage: tests/kafka/setup.sh        (prints the jar directory on the last line of stdout)
#   KAFKA_VERSION (default 3.7.2), KAFKA_JARS_DIR (default ${XDG_CACHE_HOME:-~/.cache}/sparkscale/kafka-VERSION)
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-3.7.2}   # 3.7.x runs on Java 11/17 (Java 8 was dropped for the broker in 4.0)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/sparkscale
dest=${KAFKA_JARS_DIR:-$cache/kafka-$KAFKA_VERSION}
stamp="$dest/.complete"

die() { echo "kafka setup: $*" >&2; exit 1; }

# A previous run that finished wrote the list of jars it copied; every one must still be there.
complete() {
  [ -f "$stamp" ] || return 1
  local j n=0
  while read -r j; do
    [ -s "$dest/$j" ] || return 1
    n=$((n + 1))
  done < "$stamp"
  [ "$n" -gt 0 ] && [ -s "$dest/kafka_2.13-$KAFKA_VERSION.jar" ] && [ -s "$dest/kafka-tools-$KAFKA_VERSION.jar" ]
}

if complete; then
  echo "$dest"
  exit 0
fi

command -v java >/dev/null 2>&1 || die "java not found (Kafka $KAFKA_VERSION needs Java 11 or 17: apt-get install default-jre-headless)"
if ! command -v mvn >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "kafka setup: mvn not found; installing the Debian package maven" >&2
    { apt-get install -y -q --no-install-recommends maven >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends maven >&2; }; } \
      || die "could not install maven (apt-get install maven failed)"
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven (Debian: apt-get install maven)"
fi

echo "kafka setup: fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION + kafka-tools and their runtime jars into $dest" >&2
mkdir -p "$cache" || die "cannot create $cache"
tmp=$(mktemp -d "$cache/.kafka-$KAFKA_VERSION.XXXXXX") || die "cannot create a temp dir in $cache"
trap 'rm -rf "$tmp"' EXIT
# -B: no colours or progress; -q: only errors. The jars land in ~/.m2 too, so a re-fetch is offline.
if ! mvn -B -q -Dstyle.color=never -f "$here/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
       dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" > "$tmp/mvn.log" 2>&1; then
  tail -30 "$tmp/mvn.log" >&2
  die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central (no network to the registry?)"
fi
rm -f "$tmp/mvn.log"
[ -s "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "mvn finished but kafka_2.13-$KAFKA_VERSION.jar is missing from its output"
[ -s "$tmp/kafka-tools-$KAFKA_VERSION.jar" ] || die "mvn finished but kafka-tools-$KAFKA_VERSION.jar is missing from its output"
(cd "$tmp" && ls -1 -- *.jar) > "$tmp/.complete"
# Swap in whole, so a concurrent or interrupted run never sees half a directory.
rm -rf "$dest"
mv "$tmp" "$dest" || die "cannot move the jars to $dest"
trap - EXIT
echo "kafka setup: $(wc -l < "$stamp") jars in $dest" >&2
echo "$dest"
