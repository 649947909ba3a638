#!/usr/bin/env bash
# Install geosensord as a systemd service on Raspberry Pi OS / Debian (bookworm or later:
# Python >= 3.11). Run once, as root:
#
#   sudo deploy/install.sh                  # embedded Redis (the default config)
#   sudo deploy/install.sh --remote-redis   # no local redis-server; set [redis] url yourself
#   sudo deploy/install.sh --uninstall      # remove the service, keep config and data
#   deploy/install.sh --dry-run             # print the plan, change nothing (no root needed)
#
# What it does, in order:
#   1. apt-get install python3-venv, librtlsdr0, gcc and python3-dev (pip builds the Mode S
#      receiver's small C extension with them; without them it runs its numpy code) and
#      (unless --remote-redis) redis-server.
#      The default config has [redis] url = "embedded": the daemon runs its own
#      redis-server child on a unix socket in /var/lib/geosensord and only needs the
#      binary. So when this script is what installs the redis-server package, it also
#      disables the package's own redis-server.service (nothing would use it). A
#      redis-server that was installed before is left exactly as it was.
#   2. the system user `geosensord` (home /var/lib/geosensord, no login) in plugdev, dialout
#   3. a copy of SOURCE in PREFIX/src (without .git, venvs and build output, compiled
#      extensions included: pip builds its own for this machine, in the tree it installs
#      from, and must not leave root-owned files in your checkout;
#      the copy also holds the bundled recordings and the README), and a venv in
#      PREFIX/venv with `pip install PREFIX/src[sdr]` (falls back to no SDR extra when
#      no SDR wheel exists for this machine)
#   4. /etc/geosensord/config.toml from SOURCE/config.toml, only if absent (an existing one
#      is kept). Relative recording paths are pointed at PREFIX/src/recordings; [state]
#      dir = "" makes the daemon use systemd's $STATE_DIRECTORY (/var/lib/geosensord).
#      /etc/geosensord/redis-password is created empty (root-only; LoadCredential= needs
#      the file to exist; fill it and set password_file = "credential:redis-password").
#   5. the udev rule for RTL-SDR dongles and the DVB-T driver blacklist
#   6. the unit (PREFIX substituted), systemctl daemon-reload, enable --now
#
# --uninstall stops and disables the unit and removes the unit, its drop-ins, the udev
# rule, the blacklist and PREFIX (venv, source copy, recordings). It keeps /etc/geosensord, the data in
# /var/lib/geosensord, the geosensord user and the redis-server package, and says so.
set -euo pipefail

PREFIX=/opt/geosensord
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REMOTE_REDIS=0
UNINSTALL=0
DRY_RUN=0

SERVICE_USER=geosensord
CONF_DIR=/etc/geosensord
STATE_DIR=/var/lib/geosensord
UNIT_PATH=/etc/systemd/system/geosensord.service
DROPIN_DIR=/etc/systemd/system/geosensord.service.d
UDEV_RULE=/etc/udev/rules.d/99-rtlsdr.rules
BLACKLIST=/etc/modprobe.d/blacklist-rtlsdr.conf
DVB_MODULES=(dvb_usb_rtl28xxu rtl2832_sdr rtl2832 e4000)

usage() {
    sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    echo "Options: --remote-redis --uninstall --prefix DIR (default /opt/geosensord)"
    echo "         --source DIR (default: the repository holding this script) --dry-run"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --remote-redis) REMOTE_REDIS=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --dry-run) DRY_RUN=1 ;;
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift ;;
        --prefix=*) PREFIX="${1#*=}" ;;
        --source) SOURCE="${2:?--source needs a directory}"; shift ;;
        --source=*) SOURCE="${1#*=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

if [[ "$PREFIX" != /* ]]; then
    echo "install.sh: --prefix must be an absolute path, got $PREFIX" >&2
    exit 2
fi
PREFIX="${PREFIX%/}"
VENV="$PREFIX/venv"
# The venv's interpreter must be runnable by the service user: Debian's /usr/bin/python3,
# not a pyenv/conda Python under /root that sudo's PATH might find. PYTHON=… overrides.
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }

# Every change to the machine goes through run (or write_config): with --dry-run it
# prints the command instead. Read-only probes (getent, dpkg-query, test) run either way.
run() {
    if [[ $DRY_RUN -eq 1 ]]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

# Like run, but a failure only warns (udev or systemd absent in a container, module not loaded).
try() {
    if ! run "$@"; then
        warn "'$*' failed; continuing"
    fi
}

systemd_running() { [[ -d /run/systemd/system ]]; }

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

do_uninstall() {
    step "stop and disable geosensord.service"
    if systemd_running; then
        try systemctl disable --now geosensord.service
    else
        try systemctl disable geosensord.service
    fi
    step "remove the unit, its drop-ins, the udev rule and the driver blacklist"
    run rm -f "$UNIT_PATH" "$UDEV_RULE" "$BLACKLIST"
    run rm -rf "$DROPIN_DIR"
    if systemd_running; then
        try systemctl daemon-reload
    fi
    try udevadm control --reload-rules
    step "remove $PREFIX (venv, source copy, recordings)"
    run rm -rf "$PREFIX"
    step "kept: $CONF_DIR (config, redis-password), $STATE_DIR (spool, embedded Redis data),"
    note "the $SERVICE_USER user and the redis-server package. Remove them by hand if wanted:"
    note "  rm -rf $CONF_DIR $STATE_DIR; userdel $SERVICE_USER; apt-get purge redis-server"
}

# Copy a source tree without VCS data, virtualenvs, caches and build output.
copy_tree() {
    local src="$1" dest="$2"
    local excludes=(--exclude=./.git --exclude=./.venv --exclude=./venv --exclude=./build
        --exclude=./state --exclude='*.egg-info' --exclude=__pycache__ --exclude=.mypy_cache
        --exclude=.pytest_cache --exclude=.ruff_cache --exclude='*.so')
    if [[ $DRY_RUN -eq 1 ]]; then
        printf '+ tar -C %q %s -cf - . | tar -C %q -xf -\n' "$src" "${excludes[*]}" "$dest"
    else
        tar -C "$src" "${excludes[@]}" -cf - . | tar -C "$dest" --no-same-owner -xf -
    fi
}

# Install config.toml with relative recording paths pointed at PREFIX/share/recordings.
write_config() {
    local src="$1" dest="$2"
    local sed_expr="s#= \"recordings/#= \"$PREFIX/src/recordings/#"
    if [[ $DRY_RUN -eq 1 ]]; then
        printf '+ sed -e %q %q > %q  (mode 0640, group %s)\n' "$sed_expr" "$src" "$dest" \
            "$SERVICE_USER"
        return
    fi
    local tmp
    tmp="$(mktemp "$dest.XXXXXX")"
    sed -e "$sed_expr" "$src" >"$tmp"
    chmod 0640 "$tmp"
    chgrp "$SERVICE_USER" "$tmp"
    mv -f "$tmp" "$dest"
}

do_install() {
    [[ -f "$SOURCE/pyproject.toml" && -f "$SOURCE/config.toml" ]] || {
        echo "install.sh: $SOURCE is not a geosensord checkout (no pyproject.toml/config.toml)" >&2
        exit 2
    }
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "install.sh: $PYTHON is not Python >= 3.11 (Debian 12 / Raspberry Pi OS bookworm)" >&2
        exit 2
    fi

    local packages=(python3-venv librtlsdr0 gcc python3-dev) fresh_redis=0
    if [[ $REMOTE_REDIS -eq 0 ]] && ! package_installed redis-server; then
        packages+=(redis-server)
        fresh_redis=1
    fi
    step "install packages: ${packages[*]}"
    run apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"
    if [[ $REMOTE_REDIS -eq 1 ]]; then
        note "--remote-redis: no local redis-server; set [redis] url in $CONF_DIR/config.toml"
    elif [[ $fresh_redis -eq 1 ]]; then
        # The embedded default only needs the binary; the package's own server would sit
        # unused on 127.0.0.1:6379. `systemctl enable --now redis-server` brings it back.
        step "disable the redis-server package's own service (the embedded default runs its own)"
        if systemd_running; then
            try systemctl disable --now redis-server.service
        else
            try systemctl disable redis-server.service
        fi
    else
        note "redis-server was already installed: its service is left as it is"
    fi

    step "create system user $SERVICE_USER in plugdev and dialout"
    if ! getent group plugdev >/dev/null; then
        run groupadd --system plugdev
    fi
    if getent passwd "$SERVICE_USER" >/dev/null; then
        note "user $SERVICE_USER exists"
    else
        run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "geosensord daemon" "$SERVICE_USER"
    fi
    run usermod --append --groups plugdev,dialout "$SERVICE_USER"

    step "copy $SOURCE to $PREFIX/src (with the recordings and README)"
    run install -d -m 0755 "$PREFIX"
    run rm -rf "$PREFIX/src"
    run install -d -m 0755 "$PREFIX/src"
    copy_tree "$SOURCE" "$PREFIX/src"

    step "create the venv in $VENV and pip install $PREFIX/src[sdr]"
    run "$PYTHON" -m venv "$VENV"
    run "$VENV/bin/pip" install --quiet --upgrade pip
    if ! run "$VENV/bin/pip" install --quiet "$PREFIX/src[sdr]"; then
        warn "the SDR extra did not install here; installing without it (no rtlsdr:// input)"
        run "$VENV/bin/pip" install --quiet "$PREFIX/src"
    fi

    step "config $CONF_DIR/config.toml"
    run install -d -m 0750 -o root -g "$SERVICE_USER" "$CONF_DIR"
    if [[ -e "$CONF_DIR/config.toml" ]]; then
        note "kept the existing $CONF_DIR/config.toml"
    else
        write_config "$SOURCE/config.toml" "$CONF_DIR/config.toml"
    fi
    if [[ ! -e "$CONF_DIR/redis-password" ]]; then
        # Empty = no password. systemd reads it as root for LoadCredential=.
        run install -m 0600 -o root -g root /dev/null "$CONF_DIR/redis-password"
    fi
    run runuser -u "$SERVICE_USER" -- "$VENV/bin/geosensord" check-config "$CONF_DIR/config.toml"

    step "install the RTL-SDR udev rule and the DVB-T driver blacklist"
    run install -D -m 0644 "$SOURCE/deploy/99-rtlsdr.rules" "$UDEV_RULE"
    run install -D -m 0644 "$SOURCE/deploy/blacklist-rtlsdr.conf" "$BLACKLIST"
    try udevadm control --reload-rules
    try udevadm trigger --subsystem-match=usb --action=change
    local module
    for module in "${DVB_MODULES[@]}"; do
        if [[ -d "/sys/module/$module" ]]; then
            try modprobe -r "$module"
        fi
    done

    step "install $UNIT_PATH"
    if [[ $DRY_RUN -eq 1 ]]; then
        printf '+ sed -e %q %q > %q\n' "s#/opt/geosensord#$PREFIX#g" \
            "$SOURCE/deploy/geosensord.service" "$UNIT_PATH"
    else
        sed -e "s#/opt/geosensord#$PREFIX#g" "$SOURCE/deploy/geosensord.service" >"$UNIT_PATH"
        chmod 0644 "$UNIT_PATH"
    fi
    # libffi < 3.4 (no libffi.so.8) needs writable+executable pages for ctypes callbacks.
    if ! ldconfig -p 2>/dev/null | grep -q 'libffi\.so\.8'; then
        note "libffi < 3.4: allowing W+X memory (MemoryDenyWriteExecute=no drop-in)"
        run install -d -m 0755 "$DROPIN_DIR"
        if [[ $DRY_RUN -eq 1 ]]; then
            printf '+ printf ... > %q\n' "$DROPIN_DIR/10-libffi.conf"
        else
            printf '[Service]\nMemoryDenyWriteExecute=no\n' >"$DROPIN_DIR/10-libffi.conf"
        fi
    fi

    step "systemctl daemon-reload and enable --now geosensord"
    if systemd_running; then
        run systemctl daemon-reload
        run systemctl enable --now geosensord.service
        note "status: systemctl status geosensord; logs: journalctl -u geosensord -f"
    else
        warn "systemd is not running here: enabling the unit for the next boot only"
        run systemctl enable geosensord.service
    fi
    note "config: $CONF_DIR/config.toml (systemctl reload geosensord after editing)"
    note "data:   $STATE_DIR"
}

if [[ $DRY_RUN -eq 1 ]]; then
    echo "install.sh: dry run, nothing is changed (prefix $PREFIX, source $SOURCE)"
elif [[ $EUID -ne 0 ]]; then
    echo "install.sh: run as root (sudo $0), or with --dry-run to see the plan" >&2
    exit 1
fi

if [[ $UNINSTALL -eq 1 ]]; then
    do_uninstall
else
    do_install
fi
