#!/bin/sh
# Builds wsgate from scratch in a build folder and runs the whole test
# suite (C unit tests and the integration tests against the real binary),
# then prints one summary line: "N passed, M failed, K skipped".
#   contrib/check.sh               gcc, warnings as errors, in build/
#   contrib/check.sh --sanitizers  ASan + UBSan, in build-asan/
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build"
flags="--enable-werror"
cc="${CC:-gcc}"
if [ "${1:-}" = "--sanitizers" ]; then
    dir="$top/build-asan"
    flags="--enable-werror --enable-sanitizers --enable-debug"
    # clang: its warnings differ from gcc's, so CI sees both
    cc="${CC:-clang}"
fi

sh "$top/contrib/deps.sh" || exit 1
cd "$top" || exit 1
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
    autoreconf -fi || exit 1
fi
mkdir -p "$dir" && cd "$dir" || exit 1
# shellcheck disable=SC2086
if [ ! -f Makefile ]; then
    CC="$cc" "$top/configure" -q $flags || exit 1
fi
make -s -j2 || exit 1

# stale results would be counted again
find . -name '*.trs' -delete
make -s -j2 check >check.out 2>&1
rc=$?
if [ $rc -ne 0 ]; then
    cat check.out
    for log in $(grep -l ':test-result: \(FAIL\|ERROR\|XPASS\)' $(find . -name '*.trs') 2>/dev/null); do
        echo "==== ${log%.trs}.log"
        tail -n 200 "${log%.trs}.log"
    done
fi

passed=0 failed=0 skipped=0
for trs in $(find . -name '*.trs'); do
    p=$(grep -c '^:test-result: \(PASS\|XFAIL\)' "$trs")
    f=$(grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)' "$trs")
    s=$(grep -c '^:test-result: SKIP' "$trs")
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done
if [ $rc -ne 0 ] && [ $failed -eq 0 ]; then
    # make itself failed (a build or driver error): never report all green
    failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] && [ $rc -eq 0 ]
