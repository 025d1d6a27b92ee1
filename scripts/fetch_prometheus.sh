#!/usr/bin/env bash
# Prometheus (with promtool) and Alertmanager (with amtool) from Debian, unpacked into .cache/prometheus/root.
#
# Why `apt-get download` + `dpkg -x` rather than `apt-get install`: it needs no root, touches nothing outside the
# repository, starts no system service (the packages' init scripts would start a Prometheus on :9090) and is
# idempotent. The web UI's JavaScript libraries are separate Debian packages that the UI's static directory links to
# by relative path (../../../javascript/...), so they are unpacked into the same root. When the download cannot work
# (no package lists yet on a fresh machine) and we are root, the lists are refreshed once; as a last resort the
# packages are installed system-wide, and libs.monitoring.tools then finds the binaries on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=.cache/prometheus
ROOT=$CACHE/root
DEBS=$CACHE/debs
PACKAGES=(prometheus prometheus-alertmanager)
# What the classic web UI of Debian's prometheus links to (its Depends: libjs-*, fonts-glyphicons-halflings).
UI_PACKAGES=(libjs-bootstrap4 libjs-eonasdan-bootstrap-datetimepicker libjs-jquery libjs-jquery-hotkeys libjs-moment
             libjs-moment-timezone libjs-mustache libjs-popper.js libjs-rickshaw libjs-d3 fonts-glyphicons-halflings)

have_tools() {
  [ -x "$ROOT/usr/bin/prometheus" ] && [ -x "$ROOT/usr/bin/promtool" ] \
    && [ -x "$ROOT/usr/bin/prometheus-alertmanager" ] && [ -x "$ROOT/usr/bin/amtool" ]
}

download() {
  mkdir -p "$DEBS"
  # apt writes as the _apt user when it can; a root-owned cache dir only earns a warning, so keep stderr quiet.
  (cd "$DEBS" && apt-get download -q "$@" 2>/dev/null)
}

# Debian's alertmanager reads its default notification template from this absolute path (no flag moves it); the
# package is unpacked elsewhere, so that one directory of templates is put in place when we may write there.
AM_TEMPLATES=/usr/share/prometheus/alertmanager
install_alertmanager_templates() {
  [ -f "$AM_TEMPLATES/default.tmpl" ] && return 0
  if [ -w "$(dirname "$(dirname "$AM_TEMPLATES")")" ] || [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$AM_TEMPLATES"
    cp "$ROOT$AM_TEMPLATES"/*.tmpl "$AM_TEMPLATES"/
    echo "prometheus: alertmanager templates copied to $AM_TEMPLATES"
  else
    echo "prometheus: the local Alertmanager needs $AM_TEMPLATES/default.tmpl; as root run:" \
         "mkdir -p $AM_TEMPLATES && cp $ROOT$AM_TEMPLATES/*.tmpl $AM_TEMPLATES/ (promtool and amtool work without)" >&2
  fi
}

if have_tools; then
  install_alertmanager_templates
  echo "prometheus: already unpacked in $ROOT"
  exit 0
fi

if ! download "${PACKAGES[@]}"; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "prometheus: apt-get download failed; refreshing the package lists once"
    apt-get update -q >/dev/null
  fi
  if ! download "${PACKAGES[@]}"; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "prometheus: download still failing; installing the packages system-wide (services not started)"
      # policy-rc.d 101 = "action forbidden": the packages' init scripts must not start daemons on shared ports.
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
      rm -f /usr/sbin/policy-rc.d
      exit 0
    fi
    echo "prometheus: expected 'apt-get download ${PACKAGES[*]}' to work, found it failing and no root to fix it" >&2
    exit 1
  fi
fi
# The UI libraries are a nicety (the API, promtool and amtool work without them): a failure only warns.
download "${UI_PACKAGES[@]}" || echo "prometheus: web UI libraries not downloaded; the UI will lack styling" >&2

rm -rf "$ROOT.tmp" && mkdir -p "$ROOT.tmp"
for deb in "$DEBS"/*.deb; do
  dpkg -x "$deb" "$ROOT.tmp"
done
rm -rf "$ROOT" && mv "$ROOT.tmp" "$ROOT"
have_tools || { echo "prometheus: expected the four binaries under $ROOT/usr/bin, found them missing" >&2; exit 1; }
install_alertmanager_templates
"$ROOT/usr/bin/prometheus" --version 2>&1 | head -1
"$ROOT/usr/bin/prometheus-alertmanager" --version 2>&1 | head -1
