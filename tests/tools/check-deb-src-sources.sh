#!/usr/bin/env bash
# packaging/deb-src-sources.sh against fake /etc/apt trees: the deb-src twins keep each
# archive's own URI (a snapshot's debian and debian-security, a mirror's options), and a tree
# without Debian sources falls back to deb.debian.org. static-libs.sh used to derive the
# security archive as "<first URI>-security", which is wrong for a snapshot or a mirror.
set -u
cd "$(dirname "$0")/../.." || exit 2
work=$(mktemp -d "${TMPDIR:-/tmp}/heald-deb-src.XXXXXX")
trap 'rm -rf "$work"' EXIT
problems=0
expect() { # FILE LINE: FILE has exactly LINE as a line
        grep -qxF -- "$2" "$1" || { echo "missing in ${1#"$work"/}: $2"; problems=$((problems + 1)); }
}
absent() { # FILE PATTERN: no line of FILE matches PATTERN
        ! grep -qE -- "$2" "$1" || { echo "unexpected in ${1#"$work"/}: $(grep -E -- "$2" "$1")"; problems=$((problems + 1)); }
}

mkdir -p "$work/deb822/sources.list.d"
cat >"$work/deb822/sources.list.d/debian.sources" <<'SOURCES'
Types: deb
URIs: http://snapshot.debian.org/archive/debian/20250520T000000Z
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://snapshot.debian.org/archive/debian-security/20250520T000000Z
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
packaging/deb-src-sources.sh "$work/deb822" bookworm "$work/out822"
out=$work/out822/sources.list.d/debian.sources
expect "$out" "Types: deb-src"
absent "$out" '^Types: .*deb( |$)'
expect "$out" "URIs: http://snapshot.debian.org/archive/debian/20250520T000000Z"
expect "$out" "URIs: http://snapshot.debian.org/archive/debian-security/20250520T000000Z"
expect "$out" "Suites: bookworm-security"
expect "$out" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
[ "$(grep -c '^Types: deb-src$' "$out")" = 2 ] || { echo "not two deb-src stanzas in $out"; problems=$((problems + 1)); }
absent "$work/out822/sources.list" .

mkdir -p "$work/oneline"
cat >"$work/oneline/sources.list" <<'LIST'
# a comment
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main
deb http://mirror.example/debian-security bookworm-security main
deb-src http://mirror.example/debian bookworm main
LIST
packaging/deb-src-sources.sh "$work/oneline" bookworm "$work/outline"
out=$work/outline/sources.list
expect "$out" "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main"
expect "$out" "deb-src http://mirror.example/debian-security bookworm-security main"
[ "$(grep -c . "$out")" = 2 ] || { echo "not two entries in $out"; problems=$((problems + 1)); }
absent "$out" 'deb\.debian\.org|^#'

mkdir -p "$work/empty"
packaging/deb-src-sources.sh "$work/empty" bookworm "$work/outempty"
expect "$work/outempty/sources.list" "deb-src http://deb.debian.org/debian bookworm main"
expect "$work/outempty/sources.list" "deb-src http://deb.debian.org/debian-security bookworm-security main"

[ "$problems" = 0 ] || exit 1
echo "check-deb-src-sources: snapshot, mirror and fallback as expected"
