# shellcheck shell=bash
# What the package tests share (sourced): this tree as git knows it, and the
# Debian 12 roots they boot or build in, made once and kept.

# tree_export ROOT DEST: the tree at ROOT into DEST, only what git knows
# (tracked or not ignored), never build/ or .git, so the repository stays
# clean and a build there sees a fresh tree.
tree_export() {
	local root=$1 dest=$2
	mkdir -p "$dest"
	if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		(cd "$root" && git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do
				[ -e "$f" ] && [ "${f#*__pycache__/}" = "$f" ] && printf '%s\0' "$f"
			done |
			tar --null -T - -cf -) | tar -xf - -C "$dest"
	else
		tar -C "$root" --exclude=./build --exclude=./build-san --exclude=./.git -cf - . |
			tar -xf - -C "$dest"
	fi
}

# debian_root NAME PACKAGES LOG: the path of a bookworm minbase root with
# PACKAGES (comma-separated) in $MTUGATE_TEST_ROOTS/NAME, debootstrapped the
# first time (LOG keeps its output). Non-zero, with the reason, when that
# fails (no mirror): the caller skips.
debian_root() {
	local roots=${MTUGATE_TEST_ROOTS:-/var/cache/mtugate-tests}
	local t=$roots/$1 mirror=${MTUGATE_TEST_MIRROR:-http://deb.debian.org/debian}
	if [ ! -f "$t/.complete" ]; then
		mkdir -p "$roots"
		rm -rf "$t" "$t.new"
		echo "info building $t (debootstrap minbase, once)" >&2
		if ! debootstrap --variant=minbase --include="$2" bookworm "$t.new" "$mirror" >"$3" 2>&1; then
			tail -n 5 "$3" >&2
			echo "debootstrap failed (no mirror?)" >&2
			rm -rf "$t.new"
			return 1
		fi
		touch "$t.new/.complete"
		mv "$t.new" "$t"
	fi
	echo "$t"
}
