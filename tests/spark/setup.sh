#!/usr/bin/env bash
# Installs PySpark (Spark's jars + bin/spark-class) into tests/spark/.venv for the real-Spark check.
# Idempotent: returns in well under a second when the pinned version is already there.
# Usage: tests/spark/setup.sh        (prints SPARK_HOME on the last line of stdout)
set -euo pipefail

PYSPARK_VERSION=${PYSPARK_VERSION:-3.5.9}   # 3.5.x runs on Java 8/11/17
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv="$here/.venv"
py="$venv/bin/python"

die() { echo "spark setup: $*" >&2; exit 1; }

have_pyspark() {
  [ -x "$py" ] && "$py" - "$PYSPARK_VERSION" <<'PY' 2>/dev/null
import sys, os, pyspark
ok = pyspark.__version__ == sys.argv[1] and os.path.exists(os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-class"))
sys.exit(0 if ok else 1)
PY
}

if ! command -v java >/dev/null 2>&1; then
  echo "spark setup: java not found; running scripts/install-deps.sh test" >&2
  "$here/../../scripts/install-deps.sh" test || die "could not install a JRE (default-jre-headless)"
  command -v java >/dev/null 2>&1 || die "java still missing after install-deps.sh"
fi

if ! have_pyspark; then
  if [ ! -x "$py" ]; then
    python3 -m venv "$venv" 2>/dev/null || {
      "$here/../../scripts/install-deps.sh" test || true
      python3 -m venv "$venv" || die "cannot create a venv (python3-venv missing?)"
    }
  fi
  # pyspark 3.5 is an sdist of ~300 MB; pip caches the wheel it builds
  # (~/.cache/pip/wheels), so a second install on this machine is offline and quick.
  echo "spark setup: installing pyspark==$PYSPARK_VERSION into $venv (first time: ~300 MB download)" >&2
  "$py" -m pip install --disable-pip-version-check -q "pyspark==$PYSPARK_VERSION" >&2 \
    || die "pip install pyspark==$PYSPARK_VERSION failed (no access to PyPI?)"
  have_pyspark || die "pyspark==$PYSPARK_VERSION installed but not importable"
fi

"$py" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'
