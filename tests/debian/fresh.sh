#!/bin/bash
# A fresh Debian 12 as the README's reader has one: a minbase root with make
# and git only, this tree in it; `make deps` must install everything the build
# needs, then the package builds (dpkg-buildpackage checks its Build-Depends:
# build-essential:native was once missing) and `make check`'s own build runs.
# Uses the root tests/debian/systemd.sh keeps ($MTUGATE_TEST_ROOTS), copied,
# with the host's network for apt. Once per CI run (tests/run.sh: the plain one).
set -u
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
case ${B:-build} in *-san) echo "the same in the unsanitized run: skipped"; exit 77 ;; esac
for t in debootstrap systemd-nspawn; do
	command -v $t >/dev/null || { echo "needs $t (make deps)"; exit 77; }
done
. tests/netns/common.sh
. tests/debian/lib.sh

tmp=$(mktemp -d /var/tmp/mg-fresh.XXXXXX)
trap '[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"' EXIT

template=$(debian_root bookworm-minbase make,git,ca-certificates "$tmp/debootstrap.log") ||
	{ echo "skipped"; exit 77; }
cp -a "$template" "$tmp/root"
tree_export "$PWD" "$tmp/root/src"
in_root() {
	# The host's package cache: what it downloaded need not come again.
	systemd-nspawn -q --keep-unit --register=no -D "$tmp/root" --chdir=/src \
		--bind=/var/cache/apt/archives \
		-E DEBIAN_FRONTEND=noninteractive "$@"
}
check_not "the root has no compiler" in_root sh -c 'command -v cc'
if in_root make deps >"$tmp/deps.log" 2>&1; then
	pass "make deps on a fresh root"
else
	tail -n 20 "$tmp/deps.log"; fail "make deps on a fresh root"; finish debian-fresh
fi
check "dpkg-checkbuilddeps: every Build-Depends installed" in_root dpkg-checkbuilddeps
if in_root dpkg-buildpackage -us -uc -b >"$tmp/build.log" 2>&1; then
	pass "dpkg-buildpackage on the fresh root"
else
	tail -n 20 "$tmp/build.log"; fail "dpkg-buildpackage on the fresh root"
fi
if in_root make -j2 tests headers fuzz-build >"$tmp/make.log" 2>&1; then
	pass "make check's build (tests, headers, fuzz targets) on the fresh root"
else
	tail -n 20 "$tmp/make.log"; fail "make check's build on the fresh root"
fi
finish debian-fresh
