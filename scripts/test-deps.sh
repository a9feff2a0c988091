#!/usr/bin/env bash
# Install the Debian packages the tests need (kcat, zookeeper, e2fsprogs) when they are missing: with apt-get as
# root, else print the one command to run. Never fails the build by itself: the tests that need a missing
# package skip with the reason (and fail under CI, where .ci/run runs this as root).
set -uo pipefail
missing=()
for pkg in "$@"; do
    case "$pkg" in
        kcat) command -v kcat >/dev/null 2>&1 || missing+=(kcat) ;;
        zookeeper) [[ -e /usr/share/java/zookeeper.jar ]] || missing+=(zookeeper) ;;
        e2fsprogs) command -v mkfs.ext4 >/dev/null 2>&1 || missing+=(e2fsprogs) ;;
        *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
done
((${#missing[@]})) || exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing the test dependencies: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null && exit 0
    echo "apt-get could not install ${missing[*]}; their tests will be skipped"
else
    echo "missing test dependencies; install them with: sudo apt-get install ${missing[*]}"
    echo "(until then the tests that need them are skipped)"
fi
exit 0
