#!/usr/bin/env bash
# Install Debian's chromium for the browser tests, if it is missing and we may.
# The tests drive /usr/bin/chromium through Playwright; they never download a browser.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || {
    apt-get update -q >/dev/null 2>&1
    apt-get install -y -q chromium >/dev/null
  }
  exit 0
fi
echo "note: /usr/bin/chromium is missing; the browser tests need it: sudo apt-get install -y chromium" >&2
