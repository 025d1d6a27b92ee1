#!/usr/bin/env bash
# Resolve the JVM jars the pipeline needs from Maven Central into .cache/jars/{kafka,spark}.
#
# Why: the local Kafka broker and the Spark Kafka/Delta connectors are plain Maven artifacts; resolving them with
# `mvn dependency:copy-dependencies` (cached in ~/.m2) works on every machine of this project and offline afterwards.
#
#   .cache/jars/kafka/  the broker's full runtime classpath (tools/maven/kafka/pom.xml)
#   .cache/jars/spark/  connector jars MINUS every artifact PySpark already ships in pyspark/jars, so that the Spark
#                       classpath never holds two versions of one library (tools/maven/spark/pom.xml); the local
#                       Spark session passes them as spark.jars, `make deploy-apps` ships them to EMR as --jars
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
command -v unzip >/dev/null 2>&1 || die "expected 'unzip' on PATH, found none; install it (Debian: apt-get install unzip)"
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

# Artifact id of a jar file: 'jackson-databind-2.21.2.jar' -> 'jackson-databind',
# 'scala-parallel-collections_2.13-1.2.0.jar' -> 'scala-parallel-collections_2.13' (the version starts at the first
# '-<digit>'; no jar of these resolutions has a digit-led component inside an artifact id).
artifact_id() { basename "$1" .jar | sed -E 's/-[0-9].*$//'; }

# The classes a jar (or every jar of a directory) defines, one path a line, sorted. Versioned copies under
# META-INF/versions and module descriptors are left out; so is Spark's placeholder UnusedStubClass, which every Spark
# module jar (spark-sql-kafka included) carries as an empty stub. (awk, not grep: an empty result is no error here.)
jar_classes() {
  local f
  for f in "$@"; do unzip -Z1 "$f" || die "expected a readable jar, cannot list $f"; done \
    | awk '/\.class$/ && !/^META-INF\// && !/(^|\/)module-info\.class$/ \
           && $0 != "org/apache/spark/unused/UnusedStubClass.class"' \
    | sort -u
}

fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

# The first class of jar $2 that the sorted class list $1 also holds, or nothing.
first_shared_class() { jar_classes "$2" | comm -12 "$1" - | sed -n 1p; }

# Drop from a staged Spark jar directory every artifact PySpark already ships (its copy wins), then check, class by
# class, that nothing else the connectors bring duplicates a PySpark class.
#
# Why classes and not names: a jar name says little about what it holds. The AWS SDK's 'annotations' jar shares its
# artifact id with PySpark's org.jetbrains 'annotations' but not one class (a name filter would silently drop a jar
# the SDK needs), while commons-logging has no namesake in pyspark/jars although PySpark's jcl-over-slf4j defines the
# same org.apache.commons.logging classes (a name check would let two copies through).
drop_pyspark_duplicates() {
  local staging="$1" jar shared kept=() clashes=()
  local pyspark_classes="$staging/.pyspark-classes"
  jar_classes "$PYSPARK_JARS"/*.jar > "$pyspark_classes"
  for jar in "$staging"/*.jar; do
    compgen -G "$PYSPARK_JARS/$(artifact_id "$jar")-[0-9]*.jar" >/dev/null || continue
    shared="$(first_shared_class "$pyspark_classes" "$jar")"
    if [ -n "$shared" ]; then
      rm -f "$jar"  # the same library in another version: PySpark's copy stays the only one
    else
      kept+=("$(basename "$jar")")
    fi
  done
  [ ${#kept[@]} -eq 0 ] || echo "fetch_jars: kept, sharing an artifact id but no class with a PySpark jar: ${kept[*]}"
  for jar in "$staging"/*.jar; do
    shared="$(first_shared_class "$pyspark_classes" "$jar")"
    [ -z "$shared" ] || clashes+=("$(basename "$jar") (e.g. $shared)")
  done
  rm -f "$pyspark_classes"
  [ ${#clashes[@]} -eq 0 ] || die "expected no class of the Spark connector jars to be in pyspark/jars as well, \
found: ${clashes[*]}; exclude those artifacts in tools/maven/spark/pom.xml"
}

# resolve NAME POM FINGERPRINT REQUIRED_GLOB... [-- STAGING_FILTER_FUNCTION]
resolve() {
  local name="$1" pom="$2" fp="$3"; shift 3
  local required=() filter=""
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then filter="${2:-}"; break; fi
    required+=("$1"); shift
  done
  local dest="$JARS/$name"
  if [ -f "$dest/.fingerprint" ] && [ "$(cat "$dest/.fingerprint")" = "$fp" ]; then
    echo "fetch_jars: $name jars up to date ($(find "$dest" -name '*.jar' | wc -l) jars in ${dest#"$ROOT"/})"
    return 0
  fi
  local staging="$dest.staging.$$"
  rm -rf "$staging"; mkdir -p "$staging"
  # Also on EXIT: a failed check (die) must not leave a half-checked staging directory behind.
  trap 'rm -rf "${staging:-}"' RETURN EXIT
  local goal=(-f "$pom" dependency:copy-dependencies -DoutputDirectory="$staging" -DincludeScope=runtime
              -DexcludeTypes=pom,test-jar)
  echo "fetch_jars: resolving $name jars from ${pom#"$ROOT"/}"
  if ! "${MVN[@]}" -o "${goal[@]}" >/dev/null 2>&1; then
    rm -rf "$staging"; mkdir -p "$staging"
    "${MVN[@]}" "${goal[@]}" || die "Maven could not resolve ${pom#"$ROOT"/} (see the Maven output above)"
  fi
  if [ -n "$filter" ]; then "$filter" "$staging"; fi
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
# The fingerprint covers PySpark's jar names with their versions: another PySpark build means another filter result.
PYSPARK_JAR_NAMES="$(for f in "$PYSPARK_JARS"/*.jar; do basename "$f"; done | sort)"
# Required: the Kafka source/sink and its client, Delta, and the MSK IAM login module with the AWS SDK pieces it signs
# and assumes roles with. 'annotations-*' is the SDK's own (software.amazon.awssdk): it shares its artifact id with
# PySpark's org.jetbrains annotations, so this check proves the duplicate filter told the two apart.
resolve spark "$SPARK_POM" "$(printf '%s\n%s\n' "$(fingerprint "$SPARK_POM")" "$PYSPARK_JAR_NAMES" | sha256sum | cut -d' ' -f1)" \
  'spark-sql-kafka-0-10_2.13-*.jar' 'spark-token-provider-kafka-0-10_2.13-*.jar' 'kafka-clients-*.jar' \
  'commons-pool2-*.jar' 'delta-spark_2.13-*.jar' 'delta-storage-[0-9]*.jar' \
  'aws-msk-iam-auth-[0-9]*.jar' 'auth-[0-9]*.jar' 'sts-[0-9]*.jar' 'sdk-core-[0-9]*.jar' 'annotations-[0-9]*.jar' \
  -- drop_pyspark_duplicates
