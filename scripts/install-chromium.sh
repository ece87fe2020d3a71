#!/bin/sh
# Debian's chromium for the browser tests of the service's page (tests/test_server_page.py).
# Playwright cannot download its own browser on a closed network; the tests launch this
# one through executable_path. Installs when root and apt-get exists; otherwise says what
# to do, and the browser tests skip with the same message.
set -e
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
    echo "installed $(chromium --version 2>/dev/null)"
else
    echo "chromium not found: install Debian's chromium (apt-get install chromium) for the browser tests" >&2
fi
