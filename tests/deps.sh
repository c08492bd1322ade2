#!/usr/bin/env bash
# Installs what ferry needs to build and test (Debian/Ubuntu), when something is missing.
# Used by tests/run.sh, examples/quickstart.sh and .ci/run. Needs root (or sudo) only when installing.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git python3 libcurl4-openssl-dev libjansson-dev libuv1-dev libltdl-dev
      libpq-dev libsqlite3-dev libssl-dev libmicrohttpd-dev postgresql postgresql-contrib rsync curl
      mariadb-server mariadb-client libmariadb-dev chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
