#!/bin/bash
# Builds the garonne-agent and garonne-collector packages and checks them end to end:
#
#   1. lintian: no tag left, except those overridden (each override with a reason);
#   2. install both into a Debian 12 root made with debootstrap (or, when debootstrap
#      cannot make one, on this machine itself), then check the user, directories,
#      conffiles and enabled units that postinst must leave;
#   3. garonne-agent and garonne-collector check-config against the installed default
#      configuration, run as the garonne user once certificates are in place; then a
#      reinstall and an upgrade, which must keep an edited configuration and the state;
#   4. systemd-analyze verify on both units, where systemd-analyze can run;
#   5. remove (state and user kept), then purge (state and user gone), one package at
#      a time so that the shared garonne user outlives the first purge.
#
# Run as root, on Debian 12:  packaging/test-packages.sh
#
# Environment:
#   GARONNE_DEB_DIR   take the two .deb files from this directory instead of building
#                     them with packaging/build-packages.sh.
#   GARONNE_TEST_MODE "chroot" (default: debootstrap, falling back to "host" if that
#                     fails) or "host" (install on this machine, then purge).
#   DEBIAN_MIRROR     mirror for debootstrap (default: http://deb.debian.org/debian).
#
# The machine is left as found: the Debian root is deleted, and in host mode the
# packages, the garonne user and the test certificates are purged. Tools the test
# needs (lintian, debootstrap) are installed with apt-get and kept. Exits non-zero if
# any check fails; the last line reads "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/garonne-packages-test.XXXXXX)
root=""           # the Debian root in chroot mode; empty in host mode
mode=""
host_installed=no
passed=0
failed=0

log() { echo "test-packages: $*" >&2; }

# Aborts the whole test: a step that later checks depend on has failed.
fatal() {
    log "FATAL: $*"
    failed=$((failed + 1))
    exit 1
}

# check DESCRIPTION COMMAND...: runs COMMAND and counts it as passed or failed.
check() {
    local description=$1
    shift
    if "$@" >"$work/check.out" 2>&1; then
        passed=$((passed + 1))
        echo "ok      $description"
    else
        failed=$((failed + 1))
        echo "FAILED  $description"
        sed 's/^/        | /' "$work/check.out" | tail -n 30
    fi
}

# Runs a command inside the package root (chroot mode) or on this machine (host mode).
in_root() {
    if [ -n "$root" ]; then
        timeout 600 chroot "$root" "$@"
    else
        timeout 600 "$@"
    fi
}

# Runs a command in the package root as the garonne user, with its groups.
as_garonne() {
    in_root setpriv --reuid=garonne --regid=garonne --init-groups "$@"
}

# Unmounts whatever is mounted below the Debian root (its /proc, and what an interrupted
# debootstrap may have left), deepest first.
unmount_below_root() {
    local target
    [ -n "$root" ] || return 0
    findmnt -rn -o TARGET | grep -F "$root/" | sort -r | while read -r target; do
        umount "$target" || umount -l "$target" || true
    done
}

cleanup() {
    local status=$?
    if [ "$host_installed" = yes ]; then
        log "purging the packages from this machine"
        timeout 600 "${APT_GET[@]}" purge garonne-agent garonne-collector \
            >/dev/null 2>&1 || true
        rm -rf /etc/garonne/tls
        rmdir /etc/garonne 2>/dev/null || true
        if getent passwd garonne >/dev/null; then
            userdel garonne || true
        fi
        if getent group garonne >/dev/null; then
            groupdel garonne || true
        fi
    fi
    unmount_below_root
    if [ -n "$root" ] && [ -d "$root" ]; then
        if findmnt -rn -o TARGET | grep -qF "$root/"; then
            log "error: something is still mounted below $root; leaving it in place"
            status=1
        else
            rm -rf --one-file-system "$root"
        fi
    fi
    rm -rf --one-file-system "$work"
    echo "$passed passed, $failed failed"
    if [ "$failed" -gt 0 ] && [ "$status" = 0 ]; then
        status=1
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# Tools

# apt-get waiting up to 5 minutes for the dpkg lock that another apt run may hold, and
# keeping the administrator's version of a changed conffile without asking.
APT_GET=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

apt_updated=no
apt_install() {
    if [ "$apt_updated" = no ]; then
        timeout 600 "${APT_GET[@]}" update >&2 || return 1
        apt_updated=yes
    fi
    timeout 900 "${APT_GET[@]}" install --no-install-recommends "$@" >&2
}

install_tools() {
    local missing=()
    command -v lintian >/dev/null || missing+=(lintian)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        apt_install "${missing[@]}" || fatal "cannot install ${missing[*]} with apt-get"
    fi
    if ! command -v systemd-analyze >/dev/null; then
        log "installing systemd for systemd-analyze"
        apt_install systemd || log "systemd-analyze unavailable: units will not be verified"
    fi
}

# ---------------------------------------------------------------------------------------
# Build and static checks

agent_deb=""
collector_deb=""

build_packages() {
    local debs
    if [ -n "${GARONNE_DEB_DIR:-}" ]; then
        debs=$(ls "$GARONNE_DEB_DIR"/garonne-agent_*.deb "$GARONNE_DEB_DIR"/garonne-collector_*.deb)
    else
        log "building the packages"
        debs=$(timeout 3600 "$repo/packaging/build-packages.sh" "$work/debs") \
            || fatal "packaging/build-packages.sh failed"
    fi
    agent_deb=$(grep '/garonne-agent_[^/]*\.deb$' <<<"$debs" | tail -n 1)
    collector_deb=$(grep '/garonne-collector_[^/]*\.deb$' <<<"$debs" | tail -n 1)
    if [ ! -f "$agent_deb" ] || [ ! -f "$collector_deb" ]; then
        fatal "no .deb files found in: $debs"
    fi
    log "packages: $agent_deb $collector_deb"
}

# package_has DEB PATH...: each PATH is in the package's file list.
package_has() {
    local deb=$1 path listing
    shift
    listing=$(dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's|^\./|/|')
    for path in "$@"; do
        grep -qx "$path" <<<"$listing" || { echo "missing $path"; return 1; }
    done
}

# control_field_matches DEB FIELD REGEX
control_field_matches() {
    local value
    value=$(dpkg-deb --field "$1" "$2")
    echo "$2: $value"
    grep -Eq "$3" <<<"$value"
}

conffiles_are() {
    local actual
    actual=$(dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles)
    echo "conffiles: $actual"
    [ "$actual" = "$2" ]
}

# binary_needs_exactly DEB BINARY LIBRARY...: the binary's shared libraries (its
# dynamic section's NEEDED entries) are these, in any order. Each library loaded costs
# resident memory; the agent keeps out of libm (see agent/src/main.rs).
binary_needs_exactly() {
    local deb=$1 binary=$2 unpacked actual expected
    shift 2
    unpacked=$(mktemp -d "$work/needed.XXXXXX")
    dpkg-deb -x "$deb" "$unpacked" || return 1
    actual=$(readelf -d "$unpacked$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
    expected=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    rm -rf "$unpacked"
    echo "needed: $actual"
    [ "$actual" = "$expected" ]
}

# Every override line in the lintian overrides must follow a comment giving its reason.
overrides_have_reasons() {
    awk '
        /^#/ { reason = 1; next }
        /^[[:space:]]*$/ { reason = 0; next }
        !reason { print FILENAME ": override without a reason comment: " $0; bad = 1 }
        END { exit bad }
    ' "$@"
}

# Fails on any error or warning tag not overridden; info tags are printed, not counted.
# (The verdict is read from the output: lintian 2.116's --fail-on also counts overridden
# tags once --show-overrides displays them.)
run_lintian() {
    local output
    output=$(timeout 600 lintian --fail-on none --display-info --show-overrides "$@" 2>&1) \
        || { echo "$output"; return 1; }
    echo "$output"
    ! grep -Eq '^[EW]: ' <<<"$output"
}

# Prints the info and overridden tags lintian reported in the last check.
show_overrides() {
    grep -E '^[IO]: ' "$work/check.out" | sed 's/^/        /'
}

static_checks() {
    local deb
    check "agent package holds binary, config, unit, man page, copyright" \
        package_has "$agent_deb" /usr/bin/garonne-agent /etc/garonne/agent.toml \
        /usr/lib/systemd/system/garonne-agent.service \
        /usr/share/man/man1/garonne-agent.1.gz /usr/share/doc/garonne-agent/copyright
    check "collector package holds binary, config, unit, man page, copyright" \
        package_has "$collector_deb" /usr/bin/garonne-collector /etc/garonne/collector.toml \
        /usr/lib/systemd/system/garonne-collector.service \
        /usr/share/man/man1/garonne-collector.1.gz \
        /usr/share/doc/garonne-collector/copyright
    check "agent binary needs only libc and libgcc_s (not libm)" \
        binary_needs_exactly "$agent_deb" /usr/bin/garonne-agent libc.so.6 libgcc_s.so.1
    check "agent configuration is its only conffile" \
        conffiles_are "$agent_deb" /etc/garonne/agent.toml
    check "collector configuration is its only conffile" \
        conffiles_are "$collector_deb" /etc/garonne/collector.toml
    for deb in "$agent_deb" "$collector_deb"; do
        check "$(basename "$deb"): Depends computed (libc6) plus adduser" \
            control_field_matches "$deb" Depends 'libc6 .*adduser|adduser.*libc6 '
    done
    check "lintian overrides each carry a reason" \
        overrides_have_reasons "$repo/packaging/agent/lintian-overrides" \
        "$repo/packaging/collector/lintian-overrides"
    check "lintian: garonne-agent" run_lintian "$agent_deb"
    show_overrides
    check "lintian: garonne-collector" run_lintian "$collector_deb"
    show_overrides
}

# ---------------------------------------------------------------------------------------
# The Debian root

make_debian_root() {
    if [ "${GARONNE_TEST_MODE:-chroot}" = host ]; then
        log "GARONNE_TEST_MODE=host: installing on this machine"
        mode=host
        return
    fi
    root=$work/root
    log "making a Debian 12 root with debootstrap in $root (at most 10 minutes)"
    local started=$SECONDS
    if timeout 600 debootstrap --variant=minbase bookworm "$root" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
        log "debootstrap took $((SECONDS - started))s"
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        mount -t proc proc "$root/proc" || fatal "cannot mount /proc in the Debian root"
        mode=chroot
        in_root "${APT_GET[@]}" update >&2 || fatal "apt-get update failed in the Debian root"
    else
        log "debootstrap failed or took over 10 minutes; last lines of its log:"
        tail -n 5 "$work/debootstrap.log" >&2
        unmount_below_root
        rm -rf --one-file-system "$root"
        root=""
        if [ "${GARONNE_TEST_MODE:-}" = chroot ]; then
            fatal "GARONNE_TEST_MODE=chroot and no Debian root could be made"
        fi
        log "falling back to installing on this machine"
        mode=host
    fi
}

refuse_existing_install() {
    local package
    for package in garonne-agent garonne-collector; do
        if dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -qv not-installed
        then
            fatal "$package is installed on this machine; host mode would purge it"
        fi
    done
    getent passwd garonne >/dev/null && fatal "a garonne user exists; host mode would delete it"
    [ -e /etc/garonne/tls ] && fatal "/etc/garonne/tls exists; host mode would delete it"
    return 0
}

install_packages() {
    local dir=/tmp
    if [ "$mode" = host ]; then
        refuse_existing_install
        host_installed=yes
        dir=$work
    fi
    cp "$agent_deb" "$collector_deb" "$root$dir/"
    log "installing both packages ($mode mode)"
    in_root "${APT_GET[@]}" install \
        "$dir/$(basename "$agent_deb")" "$dir/$(basename "$collector_deb")" \
        >"$work/install.log" 2>&1 \
        || { tail -n 30 "$work/install.log" >&2; fatal "apt-get install of the packages failed"; }
    installed_debs_dir=$dir
}

# ---------------------------------------------------------------------------------------
# Checks on the installed packages

user_is_system_user_in_adm() {
    local entry uid
    entry=$(in_root getent passwd garonne) || { echo "no user garonne"; return 1; }
    echo "$entry"
    uid=$(cut -d: -f3 <<<"$entry")
    [ "$uid" -lt 1000 ] || { echo "uid $uid is not a system uid"; return 1; }
    in_root id -Gn garonne | tr ' ' '\n' | grep -qx adm || { echo "not in group adm"; return 1; }
}

user_not_in_adm() {
    ! in_root id -Gn garonne | tr ' ' '\n' | grep -qx adm
}

state_dir_is_owned() {
    local stat
    stat=$(in_root stat -c '%U:%G %a' "$1") || return 1
    echo "$1: $stat"
    [ "$stat" = "garonne:garonne 750" ]
}

unit_enabled() {
    [ -L "$root/etc/systemd/system/multi-user.target.wants/$1" ]
}

unit_not_enabled() {
    [ ! -e "$root/etc/systemd/system/multi-user.target.wants/$1" ] \
        && [ ! -L "$root/etc/systemd/system/multi-user.target.wants/$1" ]
}

path_exists() { [ -e "$root$1" ]; }
path_absent() { [ ! -e "$root$1" ]; }
user_absent() { ! in_root getent passwd garonne && ! in_root getent group garonne; }
user_present() { in_root getent passwd garonne; }

package_status_is() {
    local status
    status=$(in_root dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || echo not-installed)
    echo "$1: $status"
    [ "$status" = "$2" ]
}

service_not_running() {
    # In a chroot nothing can start it; on a host with systemd, it must be inactive.
    if [ "$mode" = host ] && [ -d /run/systemd/system ]; then
        ! systemctl is-active --quiet "$1"
    fi
}

# expect_failure_naming TEXT COMMAND...: COMMAND fails, and its message names TEXT.
expect_failure_naming() {
    local text=$1 output
    shift
    if output=$("$@" 2>&1); then
        echo "$output"
        echo "succeeded although it should have failed"
        return 1
    fi
    echo "$output"
    grep -qF "$text" <<<"$output" || { echo "the message does not name $text"; return 1; }
}

# Makes a CA, a collector and an agent certificate in /etc/garonne/tls, with the
# collector's own command if it has one, else with openssl.
make_certificates() {
    local tls=$root/etc/garonne/tls
    if in_root garonne-collector certs init --help >/dev/null 2>&1; then
        log "making certificates with garonne-collector certs init"
        in_root garonne-collector certs init --dir /etc/garonne/tls \
            --name collector.example.org >&2 || return 1
    else
        log "garonne-collector has no 'certs init': making certificates with openssl"
        mkdir -p "$tls"
        openssl_certificates "$tls" >"$work/openssl.log" 2>&1 \
            || { cat "$work/openssl.log" >&2; return 1; }
    fi
    in_root chown root:garonne /etc/garonne/tls/collector.key /etc/garonne/tls/agent.key
    in_root chmod 0640 /etc/garonne/tls/collector.key /etc/garonne/tls/agent.key
}

openssl_certificates() {
    local tls=$1 name
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=Garonne test CA" -keyout "$work/ca.key" -out "$tls/ca.pem"
    for name in collector agent; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=$name.example.org" -keyout "$tls/$name.key" -out "$work/$name.csr"
        printf 'subjectAltName=DNS:%s.example.org\n' "$name" >"$work/$name.ext"
        openssl x509 -req -in "$work/$name.csr" -CA "$tls/ca.pem" -CAkey "$work/ca.key" \
            -CAcreateserial -CAserial "$work/ca.srl" -days 30 -extfile "$work/$name.ext" \
            -out "$tls/$name.pem"
    done
}

# Prints the path of a copy of DEB with a higher version, to test an upgrade.
make_upgrade_package() {
    local deb=$1 dir
    dir=$work/upgrade/$(basename "$deb" .deb)
    rm -rf "$dir"
    mkdir -p "$dir"
    dpkg-deb --raw-extract "$deb" "$dir/tree" || return 1
    sed -i 's/^Version: .*/&+upgrade/' "$dir/tree/DEBIAN/control"
    dpkg-deb --root-owner-group --build "$dir/tree" "$dir/" >/dev/null || return 1
    ls "$dir"/*.deb
}

upgrade_keeps_edits_and_state() {
    local agent_upgrade collector_upgrade
    agent_upgrade=$(make_upgrade_package "$agent_deb") || return 1
    collector_upgrade=$(make_upgrade_package "$collector_deb") || return 1
    echo "# edited by the administrator" >>"$root/etc/garonne/agent.toml"
    touch "$root/var/lib/garonne-agent/kept" "$root/var/lib/garonne-collector/kept"
    cp "$agent_upgrade" "$collector_upgrade" "$root$installed_debs_dir/"
    in_root "${APT_GET[@]}" install \
        "$installed_debs_dir/$(basename "$agent_upgrade")" \
        "$installed_debs_dir/$(basename "$collector_upgrade")" || return 1
    in_root dpkg-query -W garonne-agent garonne-collector
    in_root dpkg-query -W -f='${Version}\n' garonne-agent | grep -q '+upgrade$' \
        || { echo "garonne-agent was not upgraded"; return 1; }
    grep -q "edited by the administrator" "$root/etc/garonne/agent.toml" \
        || { echo "the upgrade overwrote the edited agent.toml"; return 1; }
    if [ ! -e "$root/var/lib/garonne-agent/kept" ] \
        || [ ! -e "$root/var/lib/garonne-collector/kept" ]; then
        echo "the upgrade lost files in the state directories"
        return 1
    fi
}

installed_checks() {
    check "user garonne is a system user in group adm" user_is_system_user_in_adm
    check "/var/lib/garonne-agent belongs to garonne, mode 750" \
        state_dir_is_owned /var/lib/garonne-agent
    check "/var/lib/garonne-collector belongs to garonne, mode 750" \
        state_dir_is_owned /var/lib/garonne-collector
    check "garonne-agent.service enabled" unit_enabled garonne-agent.service
    check "garonne-collector.service enabled" unit_enabled garonne-collector.service
    check "garonne-agent.service not started" service_not_running garonne-agent.service
    check "garonne-collector.service not started" service_not_running garonne-collector.service
    check "man pages installed" path_exists /usr/share/man/man1/garonne-agent.1.gz

    # The defaults name certificates that do not exist yet: check-config must say so.
    check "agent check-config refuses the defaults before certificates exist" \
        expect_failure_naming agent.key as_garonne garonne-agent check-config
    check "collector check-config refuses the defaults before certificates exist" \
        expect_failure_naming collector.key as_garonne garonne-collector check-config

    check "certificates made in /etc/garonne/tls" make_certificates
    check "garonne-agent check-config accepts the installed defaults" \
        as_garonne garonne-agent check-config --config /etc/garonne/agent.toml
    check "garonne-collector check-config accepts the installed defaults" \
        as_garonne garonne-collector check-config --config /etc/garonne/collector.toml

    check "reinstalling both packages runs the maintainer scripts again" \
        in_root "${APT_GET[@]}" install --reinstall \
        "$installed_debs_dir/$(basename "$agent_deb")" \
        "$installed_debs_dir/$(basename "$collector_deb")"
    check "user garonne still in group adm after reinstall" user_is_system_user_in_adm
    check "upgrade keeps the edited agent.toml and the state directories" \
        upgrade_keeps_edits_and_state
    check "garonne-agent.service still enabled after upgrade" unit_enabled garonne-agent.service
    check "garonne-agent check-config still accepts the configuration after upgrade" \
        as_garonne garonne-agent check-config
}

# ---------------------------------------------------------------------------------------
# systemd-analyze verify

verify_units() {
    if ! command -v systemd-analyze >/dev/null; then
        echo "skipped systemd-analyze verify: systemd-analyze is not available"
        return
    fi
    # A probe unit with nothing wrong tells whether verify works here at all (in some
    # containers it fails for reasons unrelated to the unit).
    local units=$work/units
    mkdir -p "$units"
    printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n' >"$units/probe.service"
    if ! timeout 120 systemd-analyze verify --man=no "$units/probe.service" >"$work/probe.log" 2>&1
    then
        echo "skipped systemd-analyze verify: it fails here even on a trivial unit:"
        sed 's/^/        | /' "$work/probe.log" | tail -n 5
        return
    fi

    # The units name /usr/bin/garonne-*, which verify requires to exist: in chroot mode
    # they exist only in the Debian root, so the copies verified here point into it.
    # The man pages named by Documentation= are checked by lintian, not here (--man=no).
    local unit
    for unit in garonne-agent.service garonne-collector.service; do
        sed "s|/usr/bin/garonne-|$root/usr/bin/garonne-|g" \
            "$root/usr/lib/systemd/system/$unit" >"$units/$unit"
        check "systemd-analyze verify $unit" verify_unit "$units/$unit"
        echo "        $unit: $(timeout 120 systemd-analyze security --offline=yes \
            "$units/$unit" 2>/dev/null | grep -o 'Overall exposure level.*')"
    done
}

verify_unit() {
    # verify prints problems as warnings and may still exit 0: treat any output on
    # the unit itself as a failure.
    timeout 120 systemd-analyze verify --man=no "$1" 2>&1 | tee "$work/verify.log"
    local status=${PIPESTATUS[0]}
    [ "$status" = 0 ] && ! grep -q "$(basename "$1")" "$work/verify.log"
}

# ---------------------------------------------------------------------------------------
# Remove and purge

remove_and_purge() {
    local apt=("${APT_GET[@]}")
    check "apt-get remove garonne-agent" in_root "${apt[@]}" remove garonne-agent
    check "remove keeps /etc/garonne/agent.toml" path_exists /etc/garonne/agent.toml
    check "remove keeps /var/lib/garonne-agent" path_exists /var/lib/garonne-agent
    check "remove deletes /usr/bin/garonne-agent" path_absent /usr/bin/garonne-agent
    check "remove keeps user garonne" user_present
    check "garonne-agent left in state config-files" package_status_is garonne-agent config-files

    check "apt-get purge garonne-agent" in_root "${apt[@]}" purge garonne-agent
    check "purge deletes /etc/garonne/agent.toml" path_absent /etc/garonne/agent.toml
    check "purge deletes /var/lib/garonne-agent" path_absent /var/lib/garonne-agent
    check "purge disables garonne-agent.service" unit_not_enabled garonne-agent.service
    check "user garonne kept while garonne-collector is installed" user_present
    check "user garonne taken out of group adm" user_not_in_adm
    check "garonne-collector still accepts its configuration" \
        as_garonne garonne-collector check-config

    check "apt-get remove garonne-collector" in_root "${apt[@]}" remove garonne-collector
    check "remove keeps /var/lib/garonne-collector" path_exists /var/lib/garonne-collector
    check "remove keeps /etc/garonne/collector.toml" path_exists /etc/garonne/collector.toml
    check "apt-get purge garonne-collector" in_root "${apt[@]}" purge garonne-collector
    check "purge deletes /var/lib/garonne-collector" path_absent /var/lib/garonne-collector
    check "purge deletes /etc/garonne/collector.toml" path_absent /etc/garonne/collector.toml
    check "purge disables garonne-collector.service" unit_not_enabled garonne-collector.service
    check "purge deletes user and group garonne" user_absent
    check "garonne-collector not installed" package_status_is garonne-collector not-installed

    # Only the certificates made above are left; dpkg removes /etc/garonne once empty.
    rm -rf "$root/etc/garonne/tls"
    rmdir "$root/etc/garonne" 2>/dev/null || true
    check "nothing of Garonne left in /etc, /usr/bin or /var/lib" no_garonne_files
    host_installed=no
}

no_garonne_files() {
    local left
    left=$(ls -d "$root"/etc/garonne "$root"/usr/bin/garonne-* "$root"/var/lib/garonne-* \
        "$root"/usr/lib/systemd/system/garonne-* 2>/dev/null)
    [ -z "$left" ] || { echo "left behind: $left"; return 1; }
}

# ---------------------------------------------------------------------------------------

main() {
    [ "$(id -u)" = 0 ] || fatal "run as root: the test installs packages"
    command -v apt-get >/dev/null || fatal "apt-get not found: the test needs Debian"
    install_tools
    build_packages
    static_checks
    make_debian_root
    log "installing into: $mode"
    echo "install target: $mode${root:+ ($root)}"
    install_packages
    installed_checks
    verify_units
    remove_and_purge
}

main "$@"
