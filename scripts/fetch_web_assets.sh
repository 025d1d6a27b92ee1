#!/usr/bin/env bash
# The dashboard's chart libraries (Vega, Vega-Lite, vega-embed) from npm, at the versions pinned by
# tools/web/package-lock.json, copied into .cache/web/ where the API serves them at /static/vendor/.
# Why vendored at build time: the dashboard must work without reaching a CDN (private networks, no third party
# seeing which analyst opens which page), and the versions must be the tested ones. `make web-assets` runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

WEB_DIR=tools/web
BUILD=.cache/web/npm   # npm ci runs here, on copies of the pinned files: no node_modules in the source tree
DEST=.cache/web/vendor
BUNDLES=(
  "vega/build/vega.min.js"
  "vega-lite/build/vega-lite.min.js"
  "vega-embed/build/vega-embed.min.js"
)

command -v npm >/dev/null 2>&1 || { echo "fetch_web_assets: expected npm on PATH, found none (apt-get install npm)" >&2; exit 1; }

# npm ci installs exactly the lock file, refuses a lock that disagrees with package.json, and runs no install scripts.
mkdir -p "$BUILD"
cp "$WEB_DIR/package.json" "$WEB_DIR/package-lock.json" "$BUILD/"
(cd "$BUILD" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp"
for bundle in "${BUNDLES[@]}"; do
  source_file="$BUILD/node_modules/$bundle"
  [ -s "$source_file" ] || { echo "fetch_web_assets: expected $source_file after npm ci, found none" >&2; exit 1; }
  cp "$source_file" "$DEST.tmp/"
done
# The versions actually copied, for the page's footer and for anyone checking what runs.
(cd "$BUILD" && node -e '
  const lock = require("./package-lock.json");
  const out = {};
  for (const name of ["vega", "vega-lite", "vega-embed"]) out[name] = lock.packages["node_modules/" + name].version;
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");') > "$DEST.tmp/versions.json"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "web assets: $(ls "$DEST" | tr '\n' ' ')-> $DEST"
