#!/usr/bin/env bash
# Supply-chain checks with cargo-deny against deny.toml (docs/security.md):
# licenses, bans (duplicate versions), sources, and RustSec advisories.
# Installs cargo-deny if missing.
#
# The advisory database is fetched from GitHub. When that fails, the other
# three checks still run and the skip is announced loudly, never silently;
# BUBBLE_DENY_ADVISORIES=require makes an unreachable database a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version > /dev/null 2>&1; then
    echo "==> installing cargo-deny"
    cargo install cargo-deny --locked
fi

if cargo deny fetch db > /tmp/cargo-deny-fetch.$$ 2>&1; then
    rm -f /tmp/cargo-deny-fetch.$$
    cargo deny --locked check --disable-fetch advisories bans licenses sources
else
    why=$(tail -3 /tmp/cargo-deny-fetch.$$)
    rm -f /tmp/cargo-deny-fetch.$$
    if [ "${BUBBLE_DENY_ADVISORIES:-}" = require ]; then
        echo "cargo deny: the advisory database could not be fetched:" >&2
        echo "$why" >&2
        exit 1
    fi
    cargo deny --locked check bans licenses sources
    {
        echo "################################################################"
        echo "# ADVISORIES CHECK SKIPPED: the RustSec database could not be"
        echo "# fetched from GitHub, so known vulnerabilities were NOT checked."
        echo "# Run scripts/deny.sh where GitHub is reachable."
        echo "# cargo deny fetch said:"
        echo "$why" | sed 's/^/#   /'
        echo "################################################################"
    } >&2
fi
