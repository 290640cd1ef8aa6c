#!/bin/sh
# Debian's chromium, for the HTML export's browser tests (tests/export/test_html_browser.py).
# `make test` runs this first.  It installs only what is missing, and only as root where apt-get
# exists; anywhere else it says so and does nothing, and those tests skip with the reason.
set -u
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_test_browser: not root or no apt-get: chromium not installed; the browser tests will skip" >&2
    exit 0
fi
echo "install_test_browser: apt-get install chromium (for the HTML export's browser tests)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; then
    echo "install_test_browser: apt-get could not install chromium; the browser tests will skip" >&2
fi
exit 0
