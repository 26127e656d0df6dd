#!/bin/sh
# Installs every build and test dependency of wsgate from Debian's packages.
# Non-interactive and idempotent: packages already present are left alone.
#   contrib/deps.sh          build + test dependencies
#   contrib/deps.sh --bench  also the benchmark's nginx
set -eu

PKGS="
    autoconf automake libtool pkg-config make gcc clang libclang-rt-14-dev
    libevent-dev libssl-dev libjansson-dev zlib1g-dev
    clang-format-16
    python3 python3-pytest python3-websockets
    curl procps openssl
"
if [ "${1:-}" = "--bench" ]; then
    PKGS="$PKGS nginx-light"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
echo "deps: installing$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
