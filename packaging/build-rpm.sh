#!/usr/bin/env bash
# build-rpm.sh VERSION OUT_DIR [ARCH]: OUT_DIR/heald-VERSION.ARCH.rpm with rpmbuild from
# packaging/rpm/heald.spec, compiled from a tarball of this tree for ARCH (default this
# machine's; aarch64 cross-builds with make ARCH=aarch64, stripped with $STRIP). make rpm calls it.
set -euo pipefail
version=$1 build=$2
arch=${3:-$(uname -m)}
cd "$(dirname "$0")/.."
cross=()
[ "$arch" = "$(uname -m)" ] || cross=(--define "heald_make_flags ARCH=$arch")
static=$PWD/build/static/$arch-linux-gnu
packaging/static-libs.sh "$arch-linux-gnu" "$static"
# Outside build/, like build-deb.sh's tree: the Makefile reads every *.d under build/.
top=$(mktemp -d "${TMPDIR:-/tmp}/heald-rpm.XXXXXX")
trap 'rm -rf "$top"' EXIT
mkdir -p "$top/SOURCES" "$top/BUILD" "$top/RPMS" "$top/SPECS"

tar czf "$top/SOURCES/heald-$version.tar.gz" --transform "s,^,heald-$version/," \
        Makefile README.md agent config systemd packaging/man packaging/sysusers.d packaging/heald.catalog
# --nodeps: the BuildRequires name RPM packages, which a Debian host does not have in an rpm database.
rpmbuild -bb --nodeps --quiet --target "$arch-linux" "${cross[@]}" --define "heald_static_libdir $static" \
        --define "_topdir $top" --define "heald_version $version" \
        --define "_build_id_links none" --define "debug_package %{nil}" --define "heald_strip ${STRIP:-strip}" \
        packaging/rpm/heald.spec >"$build/rpmbuild.log" 2>&1 || { tail -30 "$build/rpmbuild.log" >&2; exit 1; }
rpm=$(find "$top/RPMS" -name "heald-$version-*.$arch.rpm" | head -1)
cp "$rpm" "$build/heald-$version.$arch.rpm"
echo "$build/heald-$version.$arch.rpm"
