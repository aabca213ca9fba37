#!/usr/bin/env bash
# Install every build and test dependency of heald on Debian 12 (idempotent).
# --if-missing: do nothing, quickly, when everything is already there (make check/demo call it so).
set -euo pipefail

DEBS=(gcc make pkg-config git ca-certificates
      libcurl4-openssl-dev libssl-dev libcjson-dev libinih-dev libsystemd-dev
      libcmocka-dev clang libclang-rt-14-dev valgrind cppcheck clang-tidy
      systemd-container debootstrap iproute2 python3
      prometheus-node-exporter                        # the metrics test scrapes the real collector
      dpkg-dev lintian rpm rpmlint rpm2cpio cpio file)  # make deb / make rpm and their checks

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

# The packages of the list named by $1 that are not installed, into the array missing.
find_missing() {
        local -n list=$1
        missing=()
        for p in "${list[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
}

find_missing DEBS
if ((${#missing[@]})); then
        echo "install-deps: installing ${missing[*]}"
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif [ "${1:-}" != "--if-missing" ]; then
        echo "install-deps: Debian packages present"
fi

# Graviton (make check's arm64 section, make deb ARCH=arm64, make rpm ARCH=aarch64): Debian's
# cross toolchain, the arm64 -dev packages and sanitizer runtimes (dpkg multiarch) and
# qemu-user, which runs the arm64 binaries (make check calls it by name; make system-arm64
# registers it in binfmt_misc with binfmt-support, for an arm64 container's programs).
# Where they cannot be installed, make check names the arm64 tests as skipped.
ARM64_DEBS=(gcc-aarch64-linux-gnu qemu-user-static binfmt-support
            libcurl4-openssl-dev:arm64 libssl-dev:arm64 libcjson-dev:arm64 libinih-dev:arm64
            libsystemd-dev:arm64 libcmocka-dev:arm64 libasan8:arm64 libubsan1:arm64)
find_missing ARM64_DEBS
if ((${#missing[@]})); then
        echo "install-deps: installing ${missing[*]}"
        if ! dpkg --print-foreign-architectures | grep -qx arm64; then
                $SUDO dpkg --add-architecture arm64
        fi
        { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
                echo "install-deps: the arm64 toolchain could not be installed; make check skips the arm64 tests" >&2
fi

# AWS is played by moto (server mode) and the tests use boto3 and jsonschema from the
# python3 first on PATH. Machines of this project ship them; elsewhere pip brings them.
if ! python3 -c 'import moto, boto3, jsonschema, flask' 2>/dev/null; then
        echo "install-deps: installing moto[server] boto3 jsonschema with pip"
        python3 -m pip install --quiet 'moto[server]>=5.0' boto3 jsonschema ||
                python3 -m pip install --quiet --break-system-packages 'moto[server]>=5.0' boto3 jsonschema
fi

# make check validates the fleet's CloudFormation template with cfn-lint.
if ! python3 -c 'import cfnlint' 2>/dev/null; then
        echo "install-deps: installing cfn-lint with pip"
        python3 -m pip install --quiet cfn-lint || python3 -m pip install --quiet --break-system-packages cfn-lint
fi
