#!/usr/bin/env bash
# Build the kernel library: Debian's linux-source-6.12 + our arch/lkl port
# + kernel-config/ -> one relocatable object whose only global symbols are
# the lkl_ API.
#
# Everything heavy lives in a cache outside the repository, keyed by the
# kernel version and a hash of the port, the config and this script, so an
# unchanged rebuild is a copy:
#   $LKL_CACHE_DIR (default ~/.cache/lkl)/
#     src/linux-<version>/   extracted tarball (+ arch/lkl copied in)
#     obj/                   kbuild output (incremental across changes)
#     out/<key>/lkl.o        finished products, one folder per input hash
#
# Usage: build-kernel.sh OUTDIR   (writes OUTDIR/lkl.o and OUTDIR/uapi/)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
outdir=${1:?usage: build-kernel.sh OUTDIR}
tarball=${LKL_KERNEL_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
cache=${LKL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lkl}
jobs=${LKL_JOBS:-$(nproc)}

stage() { printf '[lkl build] %s\n' "$*"; }

# The only symbols the library exports.
api_symbols=(
	lkl_start_kernel lkl_sys_halt lkl_syscall lkl_is_running
	lkl_trigger_irq lkl_get_free_irq lkl_put_irq
	lkl_virtio_mmio_add lkl_syscall_mode
	lkl_recv_zerocopy lkl_zerocopy_release
	lkl_zerocopy_alloc lkl_zerocopy_free
)

if [ ! -f "$tarball" ]; then
	echo "error: $tarball is missing; run 'make setup' (apt-get install linux-source-6.12)" >&2
	exit 1
fi

version=$(basename "$tarball" .tar.xz)
key=$( {
	echo "$version $(stat -c %s "$tarball")"
	cd "$repo"
	find native/arch/lkl kernel-config native/scripts -type f -print0 | sort -z | xargs -0 sha256sum
	gcc --version | head -1
} | sha256sum | cut -c1-16)
product="$cache/out/$key"

# One build at a time per cache: kbuild's object folder is shared.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if [ -f "$product/lkl.o" ]; then
	stage "kernel $version: cached ($key)"
else
	src="$cache/src/$version"
	# The tree outside arch/lkl is the tarball plus kernel-config/patches
	# (each patch says why it is needed).  Re-extract when they change; tar
	# keeps file times, so kbuild rebuilds only what the patches touch.
	patches=$(ls "$repo"/kernel-config/patches/*.patch 2>/dev/null || true)
	patch_hash=$(cat /dev/null $patches | sha256sum | cut -c1-16)
	if [ "$(cat "$src/.extracted" 2>/dev/null)" != "$patch_hash" ]; then
		stage "extracting $tarball and applying $(echo $patches | wc -w) patch(es)"
		rm -rf "$src" && mkdir -p "$src"
		tar -xf "$tarball" -C "$src" --strip-components=1
		for p in $patches; do
			patch -s -p1 -d "$src" < "$p"
		done
		echo "$patch_hash" > "$src/.extracted"
	fi

	stage "installing arch/lkl into the source tree"
	mkdir -p "$src/arch/lkl"
	# Copy only what changed (by content), stamped now rather than with
	# the checkout's times (no -t): a copied file is always newer than the
	# object another checkout's version left in the shared object folder,
	# so kbuild rebuilds it.
	rsync -rl --delete --checksum "$repo/native/arch/lkl/" "$src/arch/lkl/"

	obj="$cache/obj"
	mkdir -p "$obj"
	cc=gcc
	if command -v ccache >/dev/null; then
		cc="ccache gcc"
		export CCACHE_DIR=${CCACHE_DIR:-$cache/ccache}
		export CCACHE_BASEDIR="$cache"
	fi
	kmake=(make -C "$src" O="$obj" ARCH=lkl CC="$cc" HOSTCC="$cc" -j"$jobs")

	stage "configuring (allnoconfig + kernel-config/lkl.config)"
	"${kmake[@]}" -s KCONFIG_ALLCONFIG="$repo/kernel-config/lkl.config" allnoconfig
	# Every option of the fragment must have survived Kconfig's rules.
	missing=0
	while IFS= read -r line; do
		case "$line" in ''|'#'*) continue ;; esac
		opt=${line%%=*}; val=${line#*=}
		if [ "$val" = n ]; then
			grep -q "^$opt=" "$obj/.config" && { echo "config: $opt should be off" >&2; missing=1; }
		else
			grep -qx "$line" "$obj/.config" || { echo "config: $line did not take" >&2; missing=1; }
		fi
	done < "$repo/kernel-config/lkl.config"
	[ "$missing" = 0 ] || exit 1

	stage "compiling the kernel with -j$jobs (a clean build takes a few minutes)"
	# Show errors and warnings, and a progress count instead of every file.
	set +e
	"${kmake[@]}" vmlinux 2>&1 | awk '
		/^  (CC|AS|AR|LD)/ { n++; if (n % 250 == 0) printf "[lkl build]   %d files built\n", n; fflush(); next }
		{ print; fflush() }'
	rc=${PIPESTATUS[0]}
	set -e
	[ "$rc" = 0 ] || { echo "error: kernel build failed" >&2; exit 1; }

	stage "making every kernel symbol local except the lkl_ API"
	tmp="$product.tmp"
	rm -rf "$tmp" && mkdir -p "$tmp"
	keep=()
	for s in "${api_symbols[@]}"; do keep+=(-G "$s"); done
	# The kernel needs no executable stack: say so, or every linker warns.
	objcopy "${keep[@]}" --remove-section=.eh_frame --remove-section=.comment \
		--add-section .note.GNU-stack=/dev/null \
		"$obj/vmlinux" "$tmp/lkl.o"
	# The GOT is the final link's to provide.
	undefined=$(nm -u "$tmp/lkl.o" | grep -v " _GLOBAL_OFFSET_TABLE_$" || true)
	if [ -n "$undefined" ]; then
		echo "error: the kernel object has undefined symbols:" >&2
		echo "$undefined" >&2
		exit 1
	fi

	stage "exporting the kernel's uapi headers"
	"${kmake[@]}" -s headers_install INSTALL_HDR_PATH="$tmp/uapi"
	python3 "$here/export-headers.py" "$tmp/uapi/include" "$src" "$tmp/include"
	rm -rf "$product" && mv "$tmp" "$product"
fi

mkdir -p "$outdir"
cp "$product/lkl.o" "$outdir/lkl.o"
rm -rf "$outdir/include" && cp -r "$product/include" "$outdir/include"
stage "kernel object: $outdir/lkl.o"
