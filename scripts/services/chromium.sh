#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the web chat's browser tests
# (bubble-js: `npm run test:browser`, driven by puppeteer-core; no browser
# is ever downloaded by npm). Not a service: nothing is started, the tests
# launch their own headless browser.
#
# Idempotent: exits 0 at once when `chromium` (CHROMIUM_BIN) runs. Otherwise
# installs the `chromium` package and checks that it starts headless.
set -euo pipefail

BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"

say() { echo "chromium.sh: $*" >&2; }
die() {
    say "FAILED: $*"
    say "install it by hand: apt-get update && apt-get install -y chromium (or set CHROMIUM_BIN to a Chromium or Chrome binary)"
    exit 1
}

# `--version` prints e.g. "Chromium 156.0.8078.114 built on Debian ..."; the
# wrapper script may print shell noise to stderr first, which is dropped.
runs() { "$BIN" --version 2>/dev/null | grep -q "Chromium\|Chrome"; }

if [ -x "$BIN" ] && runs; then
    exit 0
fi

if [ "$BIN" != /usr/bin/chromium ]; then
    die "CHROMIUM_BIN=$BIN does not run"
fi

say "installing chromium from Debian packages (about 300 MB)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || die "apt-get update failed (are you root, with the Debian mirror reachable?)"
apt-get install -y -qq chromium >/dev/null || die "apt-get install chromium failed"
runs || die "$BIN was installed but does not start"
say "$("$BIN" --version 2>/dev/null)"
