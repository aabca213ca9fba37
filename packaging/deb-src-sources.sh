#!/usr/bin/env bash
# deb-src-sources.sh APT_ETC SUITE OUT_DIR: OUT_DIR/sources.list and OUT_DIR/sources.list.d/,
# the deb-src twins of the Debian archives the machine installs from (APT_ETC is /etc/apt):
# debian.sources (deb822) and sources.list (one-line), with their mirrors, suites, components
# and keys. static-libs.sh fetches the source of an installed package from there, so the
# archive that served the binary (a mirror, a snapshot, the security archive) serves its
# source too. Without either file: deb.debian.org's SUITE and SUITE-security.
set -euo pipefail
etc=$1 suite=$2 out=$3
mkdir -p "$out/sources.list.d"
: >"$out/sources.list"
if [ -f "$etc/sources.list.d/debian.sources" ]; then
        sed 's/^Types:.*/Types: deb-src/' "$etc/sources.list.d/debian.sources" \
                >"$out/sources.list.d/debian.sources"
fi
if [ -f "$etc/sources.list" ]; then
        sed -n 's/^[[:space:]]*deb[[:space:]]\+/deb-src /p' "$etc/sources.list" >"$out/sources.list"
fi
if [ ! -s "$out/sources.list" ] && [ ! -s "$out/sources.list.d/debian.sources" ]; then
        printf 'deb-src http://deb.debian.org/debian %s main\n' "$suite" >"$out/sources.list"
        printf 'deb-src http://deb.debian.org/debian-security %s-security main\n' "$suite" >>"$out/sources.list"
fi
