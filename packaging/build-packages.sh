#!/bin/bash
# Builds the Debian packages garonne-agent and garonne-collector with cargo-deb.
#
#   packaging/build-packages.sh [OUTPUT_DIR]
#
# Writes garonne-agent_<version>_<arch>.deb and garonne-collector_<version>_<arch>.deb
# to OUTPUT_DIR (default: $CARGO_TARGET_DIR/debian) and prints their paths, one a line,
# on standard output; progress goes to standard error.
#
# Environment:
#   CARGO_TARGET_DIR  cargo's build directory, kept outside the work tree
#                     (default: /var/tmp/garonne-target).
#   CARGO_DEB         a cargo-deb binary to use instead of the one this script installs
#                     into .tools/ at the top of the work tree when it is missing.
#
# Needs cargo and dpkg-shlibdeps (package dpkg-dev, installed here when run as root).
set -euo pipefail

CARGO_DEB_VERSION=3.8.0

repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/garonne-target}
output=${1:-$CARGO_TARGET_DIR/debian}

log() { echo "build-packages: $*" >&2; }
fail() { log "error: $*"; exit 1; }

# cargo-deb computes Depends from the binaries' shared libraries with dpkg-shlibdeps.
ensure_dpkg_shlibdeps() {
    command -v dpkg-shlibdeps >/dev/null && return 0
    [ "$(id -u)" = 0 ] || fail "dpkg-shlibdeps is missing: run 'apt-get install dpkg-dev' as root"
    log "installing dpkg-dev for dpkg-shlibdeps"
    local apt_get=(env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o DPkg::Lock::Timeout=300)
    timeout 600 "${apt_get[@]}" install dpkg-dev >&2 \
        || { timeout 600 "${apt_get[@]}" update >&2 \
            && timeout 600 "${apt_get[@]}" install dpkg-dev >&2; } \
        || fail "cannot install dpkg-dev"
}

# Prints the cargo-deb binary to use, installing the pinned version if needed.
find_cargo_deb() {
    if [ -n "${CARGO_DEB:-}" ]; then
        echo "$CARGO_DEB"
        return
    fi
    local tool=$repo/.tools/bin/cargo-deb
    if ! "$tool" --version 2>/dev/null | grep -q " $CARGO_DEB_VERSION\$"; then
        log "installing cargo-deb $CARGO_DEB_VERSION into $repo/.tools"
        # Without CARGO_TARGET_DIR, cargo install builds in a temporary directory.
        env -u CARGO_TARGET_DIR timeout 1800 cargo install cargo-deb \
            --version "$CARGO_DEB_VERSION" --locked --root "$repo/.tools" >&2 \
            || fail "cannot install cargo-deb"
    fi
    echo "$tool"
}

# Prints the version of the packages: the crates' version, with Debian revision 1.
package_version() {
    local pkgid
    pkgid=$(cd "$repo" && cargo pkgid --locked -p garonne-agent) \
        || fail "cannot read the version of garonne-agent"
    echo "${pkgid##*[@#]}-1"
}

main() {
    command -v cargo >/dev/null || fail "cargo is not on PATH"
    local version
    version=$(package_version)

    # The changelog's latest entry must be this version's, or lintian and apt's
    # changelog view tell another story than the package.
    head -n 1 "$repo/packaging/changelog" | grep -qF "($version)" \
        || fail "packaging/changelog has no entry for $version at the top: add one"

    ensure_dpkg_shlibdeps
    local cargo_deb
    cargo_deb=$(find_cargo_deb)
    mkdir -p "$output"

    # The collector is built with the release profile, the agent with agent-release
    # (smaller, see Cargo.toml); cargo-deb then packs each without rebuilding.
    # --locked keeps the build on the versions in Cargo.lock.
    log "building garonne-collector (release) and garonne-agent (agent-release) in $CARGO_TARGET_DIR"
    (cd "$repo" && cargo build --release --locked -p garonne-collector >&2) \
        || fail "cargo build of garonne-collector failed"
    (cd "$repo" && cargo build --profile agent-release --locked -p garonne-agent >&2) \
        || fail "cargo build of garonne-agent failed"

    local package profile arch deb
    arch=$(dpkg --print-architecture)
    for package in garonne-agent garonne-collector; do
        profile=release
        [ "$package" = garonne-agent ] && profile=agent-release
        log "packing $package ($profile)"
        deb=$output/${package}_${version}_${arch}.deb
        rm -f "$deb"
        (cd "$repo" && "$cargo_deb" --no-build --strip -p "$package" --profile "$profile" \
            --output "$deb" >&2) \
            || fail "cargo-deb failed for $package"
        [ -f "$deb" ] || fail "expected $deb, which cargo-deb did not write"
        echo "$deb"
    done
}

main "$@"
