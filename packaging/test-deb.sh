#!/usr/bin/env bash
# Installs, runs, upgrades, removes and purges the Debian package on this machine, checking each
# step: what CI does with the package. Needs root and no clipfeed package installed (it changes
# /usr/bin, /etc/clipfeed, /srv/clippings, /var/lib/clipfeed and adds the user clipfeed).
# systemd need not be running: the service is never started through it; the installed binary is
# run as the service's user instead, and the units are checked with systemd-analyze.
#
#   packaging/test-deb.sh PACKAGE.deb NEWER.deb    # NEWER: the same build with a higher version
set -euo pipefail

# Whether TEXT holds a line matching PATTERN. (Not `cmd | grep -q`: grep stops reading at the first
# match, the writer then dies of SIGPIPE, and pipefail turns a match into a failure.)
contains() { grep -q -- "$1" <<<"$2"; }
deb=$(realpath "$1")
newer=$(realpath "$2")

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*"; }
owner() { stat -c '%U:%G %a' "$1"; }
expect_owner() { [ "$(owner "$1")" = "$2" ] || fail "$1 is $(owner "$1"), expected $2"; }
installed_version() { dpkg-query -W -f '${Version}' clipfeed; }

[ "$(id -u)" -eq 0 ] || fail "run as root"
if contains installed "$(dpkg-query -W -f '${Status}' clipfeed 2>/dev/null)"; then
    fail "a clipfeed package is installed here already; purge it first (dpkg --purge clipfeed)"
fi
had_user=no
getent passwd clipfeed >/dev/null && had_user=yes
had_clippings=no
[ -e /srv/clippings ] && had_clippings=yes
work=$(mktemp -d)
daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== install $(basename "$deb")"
dpkg -i "$deb"
for f in /usr/bin/clipfeed /etc/clipfeed/clipfeed.yaml /lib/systemd/system/clipfeed.service \
    /lib/systemd/system/clipfeed.socket /usr/lib/sysusers.d/clipfeed.conf \
    /usr/share/bash-completion/completions/clipfeed /usr/share/zsh/vendor-completions/_clipfeed \
    /usr/share/fish/vendor_completions.d/clipfeed.fish; do
    [ -f "$f" ] || fail "$f is not installed"
done
# Manual pages, in the package (a host may exclude /usr/share/man from installs).
contains ' \./usr/share/man/man1/clipfeed\.1\.gz$' "$(dpkg-deb -c "$deb")" || fail "no clipfeed.1.gz in the package"
contains ' \./usr/share/man/man1/clipfeed-check\.1\.gz$' "$(dpkg-deb -c "$deb")" || fail "no clipfeed-check.1.gz in the package"
contains '^ /etc/clipfeed/clipfeed.yaml ' "$(dpkg-query -W -f '${Conffiles}\n' clipfeed)" ||
    fail "/etc/clipfeed/clipfeed.yaml is not a conffile"
ok "files in place, the configuration is a conffile"

contains ':/var/lib/clipfeed:/usr/sbin/nologin$' "$(getent passwd clipfeed)" || fail "user clipfeed: $(getent passwd clipfeed)"
getent group clipfeed >/dev/null || fail "no group clipfeed"
expect_owner /etc/clipfeed/clipfeed.yaml "root:clipfeed 640"
expect_owner /var/lib/clipfeed "clipfeed:clipfeed 750"
[ "$had_clippings" = yes ] || expect_owner /srv/clippings "root:clipfeed 2775"
ok "system user and group clipfeed; configuration root:clipfeed 0640; state and clippings folders"

unit=/lib/systemd/system/clipfeed.service
grep -qx 'ExecStart=/usr/bin/clipfeed serve --config /etc/clipfeed/clipfeed.yaml' "$unit" || fail "ExecStart= of $unit"
grep -qx 'User=clipfeed' "$unit" && grep -qx 'RestartPreventExitStatus=78' "$unit" || fail "User=/RestartPreventExitStatus= in $unit"
verify=$(SYSTEMD_PAGER=cat systemd-analyze verify --man=no --generators=no "$unit" /lib/systemd/system/clipfeed.socket 2>&1) ||
    fail "systemd-analyze verify: $verify"
if grep -q clipfeed <<<"$verify"; then fail "systemd-analyze verify complains: $verify"; fi
ok "systemd-analyze verify accepts the installed units"
[ -L /etc/systemd/system/multi-user.target.wants/clipfeed.service ] || fail "clipfeed.service is not enabled"
[ ! -e /etc/systemd/system/sockets.target.wants/clipfeed.socket ] || fail "clipfeed.socket is enabled"
ok "the service is enabled, the socket unit is not"

version=$(clipfeed --version)
[ "$version" = "clipfeed ${version#clipfeed }" ] && [[ "$(installed_version)" == "${version#clipfeed }"* ]] ||
    fail "clipfeed --version says '$version', the package is $(installed_version)"
ok "$version"
clipfeed check --config /etc/clipfeed/clipfeed.yaml || fail "clipfeed check --config /etc/clipfeed/clipfeed.yaml"
ok "clipfeed check --config /etc/clipfeed/clipfeed.yaml"
bash -c 'source /usr/share/bash-completion/completions/clipfeed && complete -p clipfeed' >/dev/null ||
    fail "the bash completion does not load"
ok "bash completion loads"

echo "== run the installed daemon as the service's user, with the installed configuration"
story=/srv/clippings/package-test.md
printf -- '---\ntitle: Served from the package\nwebUrl: https://package.example/1\n---\n' >"$story"
chgrp clipfeed "$story"
# The packaged configuration, only on a free port (8080 may be taken on a build machine).
sed 's/^listen: .*/listen: 127.0.0.1:0/' /etc/clipfeed/clipfeed.yaml >"$work/clipfeed.yaml"
chmod 755 "$work" && chmod 644 "$work/clipfeed.yaml"
# As the unit would: user and group clipfeed, UMask=0027 (setpriv execs, so $! is the daemon).
(umask 0027 && exec env -u JOURNAL_STREAM setpriv --reuid=clipfeed --regid=clipfeed --init-groups \
    /usr/bin/clipfeed serve --config "$work/clipfeed.yaml" 2>"$work/log") &
daemon_pid=$!
base=
for _ in $(seq 300); do
    base=$(grep -o 'listening on http://[0-9.:]*/' "$work/log" | sed 's/listening on //') || true
    [ -n "$base" ] && break
    kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon exited: $(cat "$work/log")"
    sleep 0.1
done
[ -n "$base" ] || fail "the daemon did not listen: $(cat "$work/log")"
for _ in $(seq 300); do
    curl -fsS "${base}readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
contains '<title>Served from the package</title>' "$(curl -fsS "${base}feed.rss")" || fail "the feed lacks the clipping"
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon did not stop cleanly: $(cat "$work/log")"
daemon_pid=
expect_owner /var/lib/clipfeed/clipfeed.db "clipfeed:clipfeed 640"
ok "served /srv/clippings as user clipfeed; store /var/lib/clipfeed/clipfeed.db"
contains '^store .*ok (schema version' "$(clipfeed check --config /etc/clipfeed/clipfeed.yaml)" || fail "check does not read the store"

echo "== an operator's change to the configuration, then upgrades"
sed -i 's/^title: .*/title: Operator Clippings/' /etc/clipfeed/clipfeed.yaml
store_sum=$(sha256sum /var/lib/clipfeed/clipfeed.db)
dpkg -i "$deb"
grep -qx 'title: Operator Clippings' /etc/clipfeed/clipfeed.yaml || fail "reinstall lost the changed configuration"
ok "reinstalled over itself: configuration and store kept"
dpkg -i "$newer"
[ "$(installed_version)" = "$(dpkg-deb -f "$newer" Version)" ] || fail "upgrade: version is $(installed_version)"
grep -qx 'title: Operator Clippings' /etc/clipfeed/clipfeed.yaml || fail "upgrade lost the changed configuration"
[ "$(sha256sum /var/lib/clipfeed/clipfeed.db)" = "$store_sum" ] || fail "upgrade changed the store"
expect_owner /etc/clipfeed/clipfeed.yaml "root:clipfeed 640"
ls /etc/clipfeed/*.dpkg-* 2>/dev/null && fail "dpkg left a copy of the configuration beside it"
ok "upgraded to $(installed_version): changed configuration and store kept"

echo "== remove, then purge"
dpkg --remove clipfeed
[ ! -e /usr/bin/clipfeed ] || fail "remove left /usr/bin/clipfeed"
[ -f /etc/clipfeed/clipfeed.yaml ] && [ -f /var/lib/clipfeed/clipfeed.db ] || fail "remove deleted the configuration or the store"
ok "removed: configuration and store kept"
dpkg -i "$newer"
dpkg --purge clipfeed
for gone in /usr/bin/clipfeed /etc/clipfeed /var/lib/clipfeed /lib/systemd/system/clipfeed.service; do
    [ ! -e "$gone" ] || fail "purge left $gone"
done
! dpkg-statoverride --list /etc/clipfeed/clipfeed.yaml >/dev/null || fail "purge left the stat override"
links=$(find /etc/systemd/system -name 'clipfeed.*')
[ -z "$links" ] || fail "purge left unit links: $links"
[ -f "$story" ] || fail "purge deleted a clipping"
getent passwd clipfeed >/dev/null || fail "purge removed the user (files elsewhere may still be theirs)"
ok "purged: store and configuration gone; clippings and the user kept"

# Leave the machine as it was.
rm -f "$story"
[ "$had_clippings" = yes ] || rmdir /srv/clippings
if [ "$had_user" = no ]; then userdel clipfeed 2>/dev/null || true; groupdel clipfeed 2>/dev/null || true; fi
echo "package test passed"
