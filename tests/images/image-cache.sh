#!/bin/sh
# Prints the directory holding a cached build of the default image
# (rootfs.ext4, vmlinux, initrd.img), building it first when needed.
#
# The cache key is the guest kernel's version plus a hash of every source
# the image is made from (core/images, agent/), so the plain, sanitizer and
# distcheck builds of one tree share one image: set BANGER_TEST_CACHE to a
# directory outside the build tree (.ci/run does) and the image is built
# once per run. Status: 0 ready, 3 debootstrap failed (no mirror), 77 no
# kernel, 1 anything else. Progress goes to stderr.
set -u

builder=${BUILD_DEFAULT_IMAGE:?run through make check}
srcdir=${TOP_SRCDIR:?run through make check}
cache_root=${BANGER_TEST_CACHE:-${BOOT_CACHE_DIR:?run through make check}}

say() { echo "image-cache: $*" >&2; }

ver=$("$builder" kernel-version) || exit 77
key=$( (echo "$ver"; cat "$srcdir"/core/images/*.[ch] "$srcdir"/agent/*.[ch] \
        "$srcdir"/agent/banger-vsock-agent.service "$srcdir"/agent/banger-vsock-agent.init) |
       sha256sum | cut -c1-16)
cache=$cache_root/default-$key
if [ -s "$cache/rootfs.ext4" ] && [ -s "$cache/vmlinux" ] && [ -s "$cache/initrd.img" ] &&
   [ -s "$cache/manifest.json" ]; then
    say "using the cached default image in $cache"
    echo "$cache"
    exit 0
fi

mkdir -p "$cache_root" || exit 1
building=$cache.new.$$
rm -rf "$building"
trap 'rm -rf "$building"' EXIT
trap 'exit 1' INT TERM HUP
say "building the default image for kernel $ver ..."
start=$(date +%s)
"$builder" build "$building" ${BOOT_MIRROR:+"$BOOT_MIRROR"} >&2
rc=$?
[ "$rc" = 0 ] || exit "$rc"
rm -rf "$cache"
mv "$building" "$cache" || exit 1
say "built in $(($(date +%s) - start)) s: $cache"
echo "$cache"
