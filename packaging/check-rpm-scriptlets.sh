#!/usr/bin/env bash
# check-rpm-scriptlets.sh RPM: what the rpm does on an Amazon Linux host, as far as a Debian
# machine can show it (make check). rpm installs the file list into a scratch root
# (--nodeps --noscripts: no AL2023 rpm database here); each scriptlet then runs in sh against a
# fake root: its /run/systemd/system and /etc/polkit-1 are the scratch root's, and groupadd,
# useradd, getent, systemctl and heald are stubs that record their calls. Not shown here: the
# real useradd on AL2023, systemd acting on the calls, dnf resolving the requirements.
# Prints one line per problem; exit 1 if there is any.
set -uo pipefail
rpm=$1
problems=0
problem() { echo "check-rpm-scriptlets: $*"; problems=$((problems + 1)); }
work=$(mktemp -d "${TMPDIR:-/tmp}/heald-rpm-root.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root stubs=$work/stubs calls=$work/calls
mkdir -p "$root" "$stubs"

# ---- the file list, installed ----
rpm -i --root "$root" --dbpath /var/lib/rpm --nodeps --noscripts --notriggers --ignorearch \
        "$rpm" 2>"$work/rpm-i.log" || { cat "$work/rpm-i.log"; problem "rpm -i --root failed"; }
for f in "755 /usr/sbin/heald" "640 /etc/heald/heald.ini" "750 /etc/heald" "700 /var/lib/heald" \
        "644 /usr/lib/systemd/system/heald.service" "644 /usr/lib/sysusers.d/heald.conf"; do
        [ "$(stat -c %a "$root${f#* }" 2>/dev/null)" = "${f%% *}" ] || problem "installed ${f#* }: not mode ${f%% *}"
done
cmp -s "$root/etc/heald/heald.ini" config/heald.ini || problem "installed heald.ini differs from config/heald.ini"

# ---- the scriptlets, against the fake root ----
# stub NAME [EXIT]: a command that appends "NAME ARGS" to $calls and exits EXIT (default 0).
stub() { printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit %s\n' "$1" "$calls" "${2:-0}" >"$stubs/$1"; chmod +x "$stubs/$1"; }
# run TAG ARG: the scriptlet TAG (PREIN, POSTIN, PREUN, POSTUN) with $1 = ARG; its output in $work/out.
run() {
        : >"$calls"
        rpm -qp --qf "%{$1}" "$rpm" |
                sed -e "s|/usr/sbin/heald|$stubs/heald|g" -e "s|/run/systemd/system|$root/run/systemd/system|g" \
                        -e "s|/etc/polkit-1|$root/etc/polkit-1|g" >"$work/$1.sh"
        PATH=$stubs:/usr/bin:/bin sh "$work/$1.sh" "$2" >"$work/out" 2>&1 || problem "$1 $2 exited $?"
}
called() { grep -qxF -- "$1" "$calls" || problem "$2: no '$1' (calls: $(tr '\n' ';' <"$calls"))"; }
not_called() { ! grep -qF -- "$1" "$calls" || problem "$2: '$1' called"; }
for c in groupadd useradd systemctl heald; do stub "$c"; done
mkdir -p "$root/run/systemd/system" "$root/etc/polkit-1/rules.d"

stub getent 2
run PREIN 1
called "groupadd -r heald" "%pre on a new machine"
called "useradd -r -g heald -d /var/lib/heald -s /sbin/nologin -c heald self-healing agent heald" "%pre on a new machine"
stub getent 0
run PREIN 2
not_called useradd "%pre with the user already there"

run POSTIN 1
called "heald check-config" "%post install"
called "systemctl enable heald.service" "%post install, valid configuration"
called "systemctl start heald.service" "%post install, valid configuration"
stub heald 78
run POSTIN 1
not_called "systemctl enable" "%post install, invalid configuration"
grep -q "heald.ini is not valid" "$work/out" || problem "%post install, invalid configuration: no explanation"
run POSTUN 1
not_called try-restart "%postun upgrade, invalid configuration"
stub heald 0
run POSTUN 1
called "systemctl try-restart heald.service" "%postun upgrade, valid configuration"
[ -e "$root/var/lib/heald" ] || problem "upgrade: /var/lib/heald gone"

run PREUN 0
called "systemctl --no-reload disable --now heald.service" "%preun erase"
run PREUN 1
not_called disable "%preun upgrade"
touch "$root/etc/polkit-1/rules.d/50-heald.rules"
run POSTUN 1
[ -e "$root/etc/polkit-1/rules.d/50-heald.rules" ] || problem "%postun upgrade deleted the polkit rule"
run POSTUN 0
[ ! -e "$root/etc/polkit-1/rules.d/50-heald.rules" ] || problem "%postun erase left the polkit rule"
not_called try-restart "%postun erase"

[ "$problems" = 0 ] || exit 1
echo "check-rpm-scriptlets: $rpm: files installed; %pre, %post, %preun, %postun as expected"
