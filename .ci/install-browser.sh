#!/usr/bin/env bash
# Headless Chromium for tests/ops/test_browser.py, from Debian's packages.
# Playwright (a dev dependency) drives it at /usr/bin/chromium: never `playwright install`.
set -euo pipefail
if command -v chromium >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
chromium --version
