#!/usr/bin/env bash
# static-libs.sh TRIPLET OUT_DIR: the libraries make rpm links into heald because Amazon Linux
# 2023 does not ship them under Debian's soname (packaging/README.md), as OUT_DIR/libNAME.a
# for TRIPLET's compiler, with their licenses in OUT_DIR/licenses/. inih: Debian's own
# libinih.a. cJSON: Debian ships no static library, so its source package (the version of the
# installed libcjson-dev, Debian's patches applied) is fetched with apt-get source and cJSON.c
# compiled with heald's hardening flags. Kept between runs: rebuilt only when the installed versions change.
set -euo pipefail
triplet=$1 out_dir=$2
cc=${CC:-$triplet-gcc}
arch=$(dpkg-architecture -qDEB_HOST_ARCH -t"$triplet" 2>/dev/null)
cjson_version=$(dpkg-query -W -f='${source:Version}' "libcjson-dev:$arch")
inih_version=$(dpkg-query -W -f='${Version}' "libinih-dev:$arch")
stamp="cjson $cjson_version, inih $inih_version"
if [ -f "$out_dir/versions" ] && [ "$(cat "$out_dir/versions")" = "$stamp" ]; then
        exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/heald-static.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir/licenses" "$work/lists/partial"

# A private source list and package index (the machine's apt configuration untouched): the
# deb-src twins of the archives the installed packages came from.
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
"$(dirname "$0")/deb-src-sources.sh" /etc/apt "$suite" "$work/apt"
apt_src=(apt-get -qq -o Dir::Etc::sourcelist="$work/apt/sources.list"
         -o Dir::Etc::sourceparts="$work/apt/sources.list.d"
         -o Dir::State::Lists="$work/lists" -o APT::Sandbox::User=root)
"${apt_src[@]}" update
(cd "$work" && "${apt_src[@]}" source --download-only "cjson=$cjson_version" >/dev/null &&
        dpkg-source --no-check -x cjson_*.dsc src >/dev/null)

"$cc" -std=c89 -O2 -g -fPIE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -c "$work/src/cJSON.c" \
        -o "$work/cJSON.o"
rm -f "$out_dir/libcjson.a"
"${AR:-$triplet-ar}" rcs "$out_dir/libcjson.a" "$work/cJSON.o"
cp "$work/src/LICENSE" "$out_dir/licenses/cJSON-LICENSE"
cp "/usr/lib/$triplet/libinih.a" "$out_dir/libinih.a"
cp /usr/share/doc/libinih-dev/copyright "$out_dir/licenses/inih-copyright"
echo "$stamp" >"$out_dir/versions"
