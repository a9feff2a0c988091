#!/usr/bin/env bash
# Install the Debian packages the tests need (kcat, zookeeper, e2fsprogs, prometheus) when they are missing: with apt-get as
# root, else print the one command to run. Never fails the build by itself: the tests that need a missing
# package skip with the reason (and fail under CI, where .ci/run runs this as root).
set -uo pipefail
missing=()
for pkg in "$@"; do
    case "$pkg" in
        kcat) command -v kcat >/dev/null 2>&1 || missing+=(kcat) ;;
        zookeeper) [[ -e /usr/share/java/zookeeper.jar ]] || missing+=(zookeeper) ;;
        e2fsprogs) command -v mkfs.ext4 >/dev/null 2>&1 || missing+=(e2fsprogs) ;;
        prometheus) command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus) ;;
        *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
done
((${#missing[@]})) || exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing the test dependencies: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; then
        # The prometheus package enables a system-wide server (and a node exporter) where systemd runs:
        # the tests start their own on free ports, so stop those rather than leave them running.
        if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
            systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
        fi
        exit 0
    fi
    echo "apt-get could not install ${missing[*]}; their tests will be skipped"
else
    echo "missing test dependencies; install them with: sudo apt-get install ${missing[*]}"
    echo "(until then the tests that need them are skipped)"
fi
exit 0
