#!/usr/bin/env bash
# Set up everything the whole test suite needs on a fresh Debian machine, then run it.
# Debian packages: a CJK font and poppler for the PDF report, libharfbuzz-subset0 for WeasyPrint font subsetting,
# chromium for the browser test. PostgreSQL variants of the storage and API tests use the server on 127.0.0.1:5432
# and skip with a message when it is not there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
fc-list 2>/dev/null | grep -q "Noto Sans CJK" || missing+=(fonts-noto-cjk)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
dpkg -s libharfbuzz-subset0 >/dev/null 2>&1 || missing+=(libharfbuzz-subset0)
dpkg -s libpango-1.0-0 >/dev/null 2>&1 || missing+=(libpango-1.0-0 libpangoft2-1.0-0)
# Headless browser for the workbench test (Playwright drives Debian's Chromium; no browser download).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/python -m pytest -q "$@"
