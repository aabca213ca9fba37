#!/usr/bin/env bash
# check-packages.sh DEB RPM: what make check verifies in the built packages without installing
# them: the file lists, modes, conffiles, scriptlets and dependencies (dpkg-deb, rpm -qp).
# Prints one line per problem; exit 1 if there is any.
set -uo pipefail
deb=$1 rpm=$2
problems=0
problem() { echo "check-packages: $*"; problems=$((problems + 1)); }
has_line() { grep -qxF -- "$2" <<<"$1" || problem "$3: missing '$2'"; }
has_match() { grep -qE -- "$2" <<<"$1" || problem "$3: nothing matches /$2/"; }

# ---- .deb ----
files=$(dpkg-deb -c "$deb" | awk '{print $1, $6}')
for f in "-rwxr-xr-x ./usr/sbin/heald" "-rw-r--r-- ./etc/heald/heald.ini" \
        "-rw-r--r-- ./lib/systemd/system/heald.service" "-rw-r--r-- ./usr/lib/sysusers.d/heald.conf" \
        "-rw-r--r-- ./usr/lib/systemd/catalog/heald.catalog" \
        "-rw-r--r-- ./usr/share/man/man8/heald.8.gz" "-rw-r--r-- ./usr/share/man/man5/heald.ini.5.gz" \
        "-rw-r--r-- ./usr/share/doc/heald/README.md" "-rw-r--r-- ./usr/share/doc/heald/copyright" \
        "-rw-r--r-- ./usr/share/doc/heald/changelog.gz" \
        "-rw-r--r-- ./usr/share/doc/heald/examples/checks.ini" \
        "-rw-r--r-- ./usr/share/doc/heald/schemas/check-failed.json"; do
        has_line "$files" "$f" "deb contents"
done
has_line "$(dpkg-deb -I "$deb" conffiles)" "/etc/heald/heald.ini" "deb conffiles"
depends=$(dpkg-deb -f "$deb" Depends)
for d in 'libc6 \(>= ' 'libcurl4 \(>= ' 'libcjson1 \(>= ' 'libinih1 \(>= ' 'libsystemd0 \(>= ' 'libssl3 \(>= ' \
        'polkitd' 'systemd'; do
        has_match "$depends" "(^|, )$d" "deb Depends ($depends)"
done
postinst=$(dpkg-deb -I "$deb" postinst)
has_match "$postinst" 'heald check-config' "deb postinst validates the configuration"
has_match "$postinst" 'systemd-sysusers' "deb postinst creates the user"
has_match "$(dpkg-deb -I "$deb" postrm)" 'rm -rf /var/lib/heald /etc/heald' "deb postrm purges"

# The binary is built for the architecture each package names (make deb/rpm ARCH=arm64).
elf_machine() { file -b - | grep -oE 'x86-64|ARM aarch64' | head -1; }
declare -A machine=([amd64]=x86-64 [x86_64]=x86-64 [arm64]="ARM aarch64" [aarch64]="ARM aarch64")
deb_arch=$(dpkg-deb -f "$deb" Architecture)
[ "$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/sbin/heald | elf_machine)" = "${machine[$deb_arch]:-}" ] ||
        problem "deb: /usr/sbin/heald is not a ${machine[$deb_arch]:-?} binary (Architecture: $deb_arch)"
rpm_arch=$(rpm -qp --qf '%{ARCH}' "$rpm")
[ "$(rpm2cpio "$rpm" | cpio -i --quiet --to-stdout ./usr/sbin/heald | elf_machine)" = "${machine[$rpm_arch]:-}" ] ||
        problem "rpm: /usr/sbin/heald is not a ${machine[$rpm_arch]:-?} binary (ARCH: $rpm_arch)"

# ---- .rpm ----
rfiles=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm")
for f in "-rwxr-xr-x root:root  /usr/sbin/heald" "-rw-r----- root:heald cn /etc/heald/heald.ini" \
        "drwxr-x--- root:heald  /etc/heald" "drwx------ heald:heald  /var/lib/heald" \
        "-rw-r--r-- root:root  /usr/lib/systemd/system/heald.service" \
        "-rw-r--r-- root:root  /usr/lib/sysusers.d/heald.conf" \
        "-rw-r--r-- root:root  /usr/lib/systemd/catalog/heald.catalog" \
        "-rw-r--r-- root:root d /usr/share/man/man8/heald.8.gz" \
        "-rw-r--r-- root:root d /usr/share/man/man5/heald.ini.5.gz"; do
        has_line "$rfiles" "$f" "rpm file list"
done
has_match "$rfiles" " /usr/share/doc/heald[^/]*/examples/checks.ini$" "rpm examples"
has_match "$rfiles" " /usr/share/doc/heald[^/]*/schemas/check-failed.json$" "rpm schemas"
requires=$(rpm -qp --requires "$rpm")
for r in '(libcurl-minimal or libcurl-full or libcurl)' openssl-libs systemd-libs polkit systemd \
        'libcurl.so.4()(64bit)' 'libcrypto.so.3()(64bit)'; do
        has_line "$requires" "$r" "rpm Requires"
done
# cJSON (not in Amazon Linux 2023) and inih (there as libinih.so.0, Debian's is libinih.so.1)
# are linked in, their licenses shipped.
for r in libcjson libinih; do
        ! grep -q "^$r" <<<"$requires" || problem "rpm Requires $r: it is to be linked in statically"
done
has_match "$rfiles" " /usr/share/licenses/heald[^/]*/cJSON-LICENSE$" "rpm cJSON license"
has_match "$rfiles" " /usr/share/licenses/heald[^/]*/inih-copyright$" "rpm inih license"

# Every requirement must be satisfiable on a plain Amazon Linux 2023: packaging/rpm/al2023-requires.txt.
al2023=packaging/rpm/al2023-requires.txt
on_al2023() {
        local req=$1 alternative lib version max
        case $req in rpmlib\(* | config\(heald\)*) return 0 ;; esac
        grep -qxF -- "$req" "$al2023" && return 0
        if [[ $req == \(*\) ]]; then
                for alternative in $(sed -e 's/^(//' -e 's/)$//' -e 's/ or / /g' <<<"$req"); do
                        grep -qxF -- "$alternative" "$al2023" && return 0
                done
                return 1
        fi
        [[ $req =~ ^([^\(]+)\(([A-Z_]+)([0-9.]+)\)\(64bit\)$ ]] || return 1
        lib=${BASH_REMATCH[1]} version=${BASH_REMATCH[3]}
        max=$(awk -v lib="$lib" -v prefix="${BASH_REMATCH[2]}" \
                '$1 == "max" && $2 == lib && index($3, prefix) == 1 {print substr($3, length(prefix) + 1)}' "$al2023")
        [ -n "$max" ] && [ "$(printf '%s\n%s\n' "$version" "$max" | sort -V | tail -1)" = "$max" ]
}
while read -r r; do
        on_al2023 "$r" || problem "rpm Requires '$r': not in Amazon Linux 2023 ($al2023)"
done <<<"$requires"
scripts=$(rpm -qp --scripts "$rpm")
has_match "$scripts" 'useradd -r -g heald' "rpm %pre creates the user"
has_match "$scripts" 'check-config' "rpm %post validates the configuration"
has_match "$scripts" 'disable --now heald.service' "rpm %preun stops it"
has_match "$scripts" 'try-restart heald.service' "rpm %postun restarts it on upgrade"

[ "$problems" = 0 ] || exit 1
echo "check-packages: $deb and $rpm as expected"
