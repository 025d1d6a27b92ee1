#!/usr/bin/env bash
# Resolve the JVM jars the pipeline needs from Maven Central into .cache/jars/{kafka,spark}.
#
# Why: the local Kafka broker and the Spark Kafka/Delta connectors are plain Maven artifacts; resolving them with
# `mvn dependency:copy-dependencies` (cached in ~/.m2) works on every machine of this project and offline afterwards.
#
#   .cache/jars/kafka/  the broker's full runtime classpath (tools/maven/kafka/pom.xml)
#   .cache/jars/spark/  connector jars MINUS every artifact PySpark already ships in pyspark/jars, so that the Spark
#                       classpath never holds two versions of one library (tools/maven/spark/pom.xml)
#
# Idempotent: each directory records a fingerprint of its inputs (the POM and, for Spark, PySpark's jar list) and is
# only rebuilt when they change. A rebuild resolves into a staging directory and swaps it in, so an interrupted run
# never leaves a half-filled jar directory behind. Maven runs offline first and goes online only for what is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JARS="${CLAIMS_JARS_DIR:-$ROOT/.cache/jars}"
MVN=(mvn -B -q -Dstyle.color=never -s "$ROOT/tools/maven/settings.xml")

die() { echo "fetch_jars: $*" >&2; exit 1; }

command -v mvn >/dev/null 2>&1 || die "expected Maven ('mvn') on PATH, found none; install it (Debian: apt-get install maven)"
command -v java >/dev/null 2>&1 || die "expected Java 17+ ('java') on PATH, found none (Debian: apt-get install openjdk-17-jre-headless)"

# Where PySpark keeps its bundled jars: ask the project's interpreter, else look in the venv directly.
pyspark_jars_dir() {
  local py="$ROOT/.venv/bin/python" dir=""
  if [ -x "$py" ]; then
    dir="$("$py" -c 'import pathlib, pyspark; print(pathlib.Path(pyspark.__file__).parent / "jars")' 2>/dev/null || true)"
  fi
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    dir="$(ls -d "$ROOT"/.venv/lib/python3*/site-packages/pyspark/jars 2>/dev/null | head -n1 || true)"
  fi
  [ -n "$dir" ] && [ -d "$dir" ] || die "expected PySpark's jars under .venv (pyspark/jars), found none; run 'make bootstrap' first"
  echo "$dir"
}

# Artifact ids of the jars PySpark ships: 'jackson-databind-2.21.2.jar' -> 'jackson-databind',
# 'scala-parallel-collections_2.13-1.2.0.jar' -> 'scala-parallel-collections_2.13' (the version starts at the first
# '-<digit>'; PySpark's jar names have no digit-led component inside an artifact id).
pyspark_artifact_ids() {
  local f
  for f in "$1"/*.jar; do
    basename "$f" .jar | sed -E 's/-[0-9].*$//'
  done | sort -u | paste -sd, -
}

fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

# resolve NAME POM FINGERPRINT REQUIRED_GLOB... [-- extra mvn args]
resolve() {
  local name="$1" pom="$2" fp="$3"; shift 3
  local required=() extra=()
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
    required+=("$1"); shift
  done
  local dest="$JARS/$name"
  if [ -f "$dest/.fingerprint" ] && [ "$(cat "$dest/.fingerprint")" = "$fp" ]; then
    echo "fetch_jars: $name jars up to date ($(find "$dest" -name '*.jar' | wc -l) jars in ${dest#"$ROOT"/})"
    return 0
  fi
  local staging="$dest.staging.$$"
  rm -rf "$staging"; mkdir -p "$staging"
  trap 'rm -rf "$staging"' RETURN
  local goal=(-f "$pom" dependency:copy-dependencies -DoutputDirectory="$staging" -DincludeScope=runtime
              -DexcludeTypes=pom,test-jar "${extra[@]}")
  echo "fetch_jars: resolving $name jars from ${pom#"$ROOT"/}"
  if ! "${MVN[@]}" -o "${goal[@]}" >/dev/null 2>&1; then
    rm -rf "$staging"; mkdir -p "$staging"
    "${MVN[@]}" "${goal[@]}" || die "Maven could not resolve ${pom#"$ROOT"/} (see the Maven output above)"
  fi
  local pattern
  for pattern in "${required[@]}"; do
    compgen -G "$staging/$pattern" >/dev/null || die "expected a jar matching '$pattern' in the $name jars, found none"
  done
  echo "$fp" > "$staging/.fingerprint"
  rm -rf "$dest"
  mv "$staging" "$dest"
  echo "fetch_jars: $name: $(find "$dest" -name '*.jar' | wc -l) jars in ${dest#"$ROOT"/}"
}

mkdir -p "$JARS"

KAFKA_POM="$ROOT/tools/maven/kafka/pom.xml"
resolve kafka "$KAFKA_POM" "$(fingerprint "$KAFKA_POM")" \
  'kafka_2.13-*.jar' 'kafka-clients-*.jar' 'kafka-server-[0-9]*.jar' 'kafka-storage-[0-9]*.jar' \
  'log4j-core-*.jar' 'log4j-slf4j-impl-*.jar'

SPARK_POM="$ROOT/tools/maven/spark/pom.xml"
PYSPARK_JARS="$(pyspark_jars_dir)"
PYSPARK_IDS="$(pyspark_artifact_ids "$PYSPARK_JARS")"
resolve spark "$SPARK_POM" "$(printf '%s\n%s\n' "$(fingerprint "$SPARK_POM")" "$PYSPARK_IDS" | sha256sum | cut -d' ' -f1)" \
  'spark-sql-kafka-0-10_2.13-*.jar' 'spark-token-provider-kafka-0-10_2.13-*.jar' 'kafka-clients-*.jar' \
  'commons-pool2-*.jar' 'delta-spark_2.13-*.jar' 'delta-storage-[0-9]*.jar' \
  -- -DexcludeArtifactIds="$PYSPARK_IDS"

# Fail loudly if a jar PySpark already ships slipped through (two versions of one class on the Spark classpath).
dupes="$(comm -12 <(tr , '\n' <<<"$PYSPARK_IDS" | sort -u) \
                  <(for f in "$JARS"/spark/*.jar; do basename "$f" .jar | sed -E 's/-[0-9].*$//'; done | sort -u))"
[ -z "$dupes" ] || die "expected no overlap with pyspark/jars, found: $(paste -sd' ' <<<"$dupes")"
