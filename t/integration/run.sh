#!/bin/sh
# The integration suite as one TAP test for "make check". pytest runs
# t/integration against $WSGATE_BIN from $WSGATE_SRCDIR; its own output is
# printed as TAP comments, then its JUnit report becomes one TAP line per
# test. Exits 1 with a single failed test when pytest could not run at all.
set -u

srcdir=${WSGATE_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
WSGATE_SRCDIR=$srcdir
WSGATE_BIN=${WSGATE_BIN:-$srcdir/src/wsgate}
PYTHONDONTWRITEBYTECODE=1
export WSGATE_SRCDIR WSGATE_BIN PYTHONDONTWRITEBYTECODE
python=/usr/bin/python3

not_run() {
    echo "1..1"
    echo "not ok 1 - pytest did not run"
    echo "# $1"
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/wsgate-integration.XXXXXX") ||
    not_run "mktemp failed"
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM

cd "$srcdir" || not_run "cannot enter $srcdir"

{
    "$python" -m pytest -p no:cacheprovider -o junit_family=xunit1 -ra \
        --rootdir "$srcdir" --junitxml="$work/junit.xml" t/integration 2>&1
    echo $? >"$work/status"
} | sed 's/^/# /'

status=$(cat "$work/status" 2>/dev/null) || status=unknown
case $status in
0 | 1)
    # every test ran; some may have failed, which the TAP lines say
    if "$python" "$srcdir/t/integration/junit2tap.py" "$work/junit.xml" \
        >"$work/tap"; then
        cat "$work/tap"
        exit 0
    fi
    not_run "no usable JUnit report from pytest"
    ;;
*)
    not_run "pytest exit status $status"
    ;;
esac
