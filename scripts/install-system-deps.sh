#!/usr/bin/env bash
# Install the Debian packages the test suite needs that pip cannot provide: Chromium (browser
# tests), poppler-utils and zbar-tools (reading back generated PDFs and QR codes), the
# WeasyPrint runtime libraries and fonts, and gettext (compilemessages).
#
# Root with apt-get: installs whatever is missing (apt-get update only if something is).
# Otherwise: prints what is missing and exits 0; the tests that need it skip with a reason.
set -euo pipefail

PACKAGES=(
    chromium
    poppler-utils
    zbar-tools
    libpango-1.0-0
    libpangoft2-1.0-0
    libharfbuzz-subset0
    fonts-dejavu-core
    gettext
)

installed() {
    # dpkg -s also succeeds for removed-but-not-purged packages ("deinstall ... config-files"),
    # so look at the status itself.
    dpkg-query -W -f='${Status}' "$1" 2> /dev/null | grep -q '^install ok installed$'
}

if ! command -v dpkg-query > /dev/null; then
    echo "system deps: not a Debian system (no dpkg); install by hand if needed: ${PACKAGES[*]}"
    exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "system deps: all ${#PACKAGES[@]} Debian packages present"
    exit 0
fi

if [[ ${EUID:-$(id -u)} -ne 0 ]] || ! command -v apt-get > /dev/null; then
    reason="not root"
    [[ ${EUID:-$(id -u)} -eq 0 ]] && reason="no apt-get"
    echo "system deps: missing ${missing[*]} ($reason, not installing); tests that need them will skip"
    exit 0
fi

echo "system deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y --no-install-recommends "${missing[@]}"
echo "system deps: installed ${missing[*]}"
