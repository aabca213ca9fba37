#!/usr/bin/env bash
# build-deb.sh VERSION BUILD_DIR OUT_DIR [ARCH]: OUT_DIR/heald_VERSION_ARCH.deb from BUILD_DIR/heald
# with dpkg-deb, in Debian policy layout; Depends computed by dpkg-shlibdeps for ARCH (default
# this machine's; arm64 for the cross build, stripped with $STRIP). make deb calls it.
set -euo pipefail
version=$1 build=$2 out_dir=$3
arch=${4:-$(dpkg --print-architecture)}
cd "$(dirname "$0")/.."
umask 022

maintainer="heald maintainers <maintainers@users.noreply.r-seed-e853ddd3.example>"
# Reproducible: the date of the last commit, not of the build.
date=$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")
# Staged outside build/: the Makefile reads every *.d under build/ as dependencies, and a
# package tree has sysusers.d.
work=$(mktemp -d "${TMPDIR:-/tmp}/heald-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
doc=$root/usr/share/doc/heald
mkdir -p "$root/DEBIAN" "$doc/schemas" "$doc/examples" "$root/usr/share/man/man8" "$root/usr/share/man/man5"

install -D -m 0755 "$build/heald" "$root/usr/sbin/heald"
"${STRIP:-strip}" --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/sbin/heald"
install -D -m 0644 config/heald.ini "$root/etc/heald/heald.ini"
install -D -m 0644 systemd/heald.service "$root/lib/systemd/system/heald.service"
install -D -m 0644 packaging/sysusers.d/heald.conf "$root/usr/lib/sysusers.d/heald.conf"
# systemd's dpkg trigger on /usr/lib/systemd/catalog runs journalctl --update-catalog.
install -D -m 0644 packaging/heald.catalog "$root/usr/lib/systemd/catalog/heald.catalog"
gzip -9n -c packaging/man/heald.8 >"$root/usr/share/man/man8/heald.8.gz"
gzip -9n -c packaging/man/heald.ini.5 >"$root/usr/share/man/man5/heald.ini.5.gz"
install -m 0644 README.md "$doc/README.md"
install -m 0644 agent/schemas/*.json "$doc/schemas/"
install -m 0644 config/examples/*.ini "$doc/examples/"
install -m 0644 packaging/deb/copyright "$doc/copyright"
sed -e "s/@VERSION@/$version/g" -e "s/@MAINTAINER@/$maintainer/" -e "s/@DATE@/$date/" \
        packaging/deb/changelog.in | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$root"/usr/share/man/man*/*.gz "$doc/changelog.gz"

install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
install -m 0644 packaging/deb/conffiles "$root/DEBIAN/"

# dpkg-shlibdeps wants a debian/control naming the package; the tree exists only for it.
mkdir -p "$work/debian"
printf 'Source: heald\n\nPackage: heald\nArchitecture: any\n' >"$work/debian/control"
# DEB_HOST_ARCH: the arm64 libraries' symbols files, and aarch64-linux-gnu-objdump, for a cross build.
shlibs=$(cd "$work" && DEB_HOST_ARCH=$arch dpkg-shlibdeps -O -eroot/usr/sbin/heald 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print | sed 's|^\./||' |
        LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@MAINTAINER@/$maintainer/" \
        -e "s/@INSTALLED_SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" packaging/deb/control.in >"$root/DEBIAN/control"

out=$out_dir/heald_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
