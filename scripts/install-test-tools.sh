#!/bin/sh
# Debian packages the test suite drives for real: chromium for the browser tests of the
# service's page (Playwright cannot download its own browser on a closed network; the
# tests launch /usr/bin/chromium through executable_path) and exiftool, which must still
# read the GB 45438 XMP of a file that also carries a C2PA manifest (tests/test_c2pa.py).
# Installs what is missing when root and apt-get exists; otherwise says what to do, and
# the tests that need a tool skip or check less, saying so.
set -e
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v exiftool >/dev/null 2>&1 || missing="$missing libimage-exiftool-perl"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    echo "installed:$missing"
else
    echo "not installed:$missing (apt-get install$missing) - the browser and exiftool tests need them" >&2
fi
