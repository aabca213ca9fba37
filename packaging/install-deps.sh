#!/usr/bin/env bash
# Install every build and test dependency of heald on Debian 12 (idempotent).
# --if-missing: do nothing, quickly, when everything is already there (make check/demo call it so).
set -euo pipefail

DEBS=(gcc make pkg-config git ca-certificates
      libcurl4-openssl-dev libssl-dev libcjson-dev libinih-dev libsystemd-dev
      libcmocka-dev clang libclang-rt-14-dev valgrind cppcheck clang-tidy
      systemd-container debootstrap iproute2 python3
      dpkg-dev lintian rpm rpmlint)  # make deb / make rpm and their checks

missing=()
for p in "${DEBS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
        echo "install-deps: installing ${missing[*]}"
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif [ "${1:-}" != "--if-missing" ]; then
        echo "install-deps: Debian packages present"
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
