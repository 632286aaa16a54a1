#!/bin/sh
# Slow tier: build the default image with the daemon's build-default code
# (debootstrap from the host's mirror, agent, ext4, Debian kernel unpacked to
# vmlinux, module initrd) and boot it under QEMU's microvm machine, whose
# virtio-mmio devices are like Firecracker's. Passes when the guest prints
# BANGER-BOOT-OK on its serial console: the initrd loaded the drivers and
# mounted the root, systemd ran, and the agent unit was started.
#
# The build takes minutes, so it is cached in $BOOT_CACHE_DIR/<kernel
# version>/ and rebuilt when the agent or the build code is newer.
# Without a mirror, qemu or a kernel: SKIP (77), or FAIL when CI=true.
# BOOT_MIRROR overrides the mirror (e.g. to try the skip path).
set -u

BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}
builder=${BUILD_DEFAULT_IMAGE:?run through make check}
cache_root=${BOOT_CACHE_DIR:?run through make check}
agent=$(dirname "$builder")/../../agent/banger-vsock-agent

say() { echo "boot-default: $*"; }
unavailable() {
    if [ "${CI:-}" = true ]; then
        say "FAIL: $* (CI=true, so this is an error, not a skip)"
        exit 1
    fi
    say "************************************************************"
    say "SKIP: $*"
    say "the default-image boot check did NOT run"
    say "************************************************************"
    exit 77
}

say "NOTE: this is a QEMU microvm boot (TCG emulation), not a Firecracker boot."

tmp=
qpid=
building=
cleanup() {
    if [ -n "$qpid" ]; then
        kill -9 "$qpid" 2>/dev/null
        wait "$qpid" 2>/dev/null
    fi
    [ -z "$building" ] || rm -rf "$building"
    [ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

[ "$(id -u)" = 0 ] || unavailable "needs root (debootstrap, mkfs.ext4)"
command -v qemu-system-x86_64 >/dev/null 2>&1 || unavailable "qemu-system-x86_64 is not installed"
command -v debootstrap >/dev/null 2>&1 || unavailable "debootstrap is not installed"
ver=$("$builder" kernel-version) || unavailable "no Debian kernel (/boot/vmlinuz-* with /lib/modules)"

tmp=$(mktemp -d /tmp/banger-boot-XXXXXX) || exit 1
cache=$cache_root/$ver
if [ -s "$cache/rootfs.ext4" ] && [ -s "$cache/vmlinux" ] && [ -s "$cache/initrd.img" ] &&
   ! [ "$agent" -nt "$cache/rootfs.ext4" ] && ! [ "$builder" -nt "$cache/rootfs.ext4" ]; then
    say "using the cached build in $cache"
else
    say "building the default image for kernel $ver (a few minutes) ..."
    mkdir -p "$cache_root" || exit 1
    rm -rf "$cache"
    building=$cache.new
    rm -rf "$building"
    start=$(date +%s)
    "$builder" build "$building" ${BOOT_MIRROR:+"$BOOT_MIRROR"}
    rc=$?
    if [ "$rc" = 3 ]; then
        unavailable "debootstrap could not build the root file system (is the mirror reachable?)"
    elif [ "$rc" != 0 ]; then
        say "FAIL: building the default image failed (status $rc)"
        exit 1
    fi
    mv "$building" "$cache" || exit 1
    building=
    say "built in $(($(date +%s) - start)) s"
fi

# Firecracker gives the guest a vsock device; so does this boot when the host can.
vsock=
if [ -c /dev/vhost-vsock ]; then
    vsock="-device vhost-vsock-device,guest-cid=$((1000 + $$ % 30000))"
fi

# Under TCG on a busy host the kernel's PIT calibration of the TSC can fail,
# and then it hangs calibrating the delay loop: give it the host's TSC rate
# and a loops-per-jiffy value so that neither calibration is needed. These
# are for this emulated boot only, not kernel arguments banger passes.
mhz=$(awk -F': *' '/^cpu MHz/ { printf "%d", $2; exit }' /proc/cpuinfo)
[ -n "$mhz" ] && [ "$mhz" -gt 0 ] 2>/dev/null || mhz=2000
timing="tsc_early_khz=$((mhz * 1000)) lpj=$((mhz * 4000))"

log=$tmp/serial.log
say "booting $cache under qemu-system-x86_64 -M microvm (timeout ${BOOT_TIMEOUT} s)"
start=$(date +%s)
# shellcheck disable=SC2086 # $vsock is empty or two words
# pit/pic/rtc on: with microvm's defaults under TCG the kernel finds no
# timer to calibrate the TSC against and hangs before init.
qemu-system-x86_64 -M microvm,accel=tcg,pit=on,pic=on,rtc=on -cpu max -m 512 -smp 1 \
    -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
    -kernel "$cache/vmlinux" -initrd "$cache/initrd.img" \
    -append "console=ttyS0 root=/dev/vda rw reboot=k panic=-1 pci=off $timing" \
    -device virtio-blk-device,drive=root \
    -drive id=root,file="$cache/rootfs.ext4",format=raw,if=none,snapshot=on \
    $vsock </dev/null >"$log" 2>&1 &
qpid=$!

result=timeout
while [ $(($(date +%s) - start)) -lt "$BOOT_TIMEOUT" ]; do
    if grep -q 'BANGER-BOOT-OK' "$log"; then
        result=ok
        break
    fi
    if grep -q 'banger-initrd:' "$log"; then
        sleep 2
        result=initrd
        break
    fi
    if ! kill -0 "$qpid" 2>/dev/null; then
        result=exited
        break
    fi
    sleep 1
done
took=$(($(date +%s) - start))

if [ "$result" = ok ]; then
    say "PASS: BANGER-BOOT-OK after ${took} s (QEMU microvm, not Firecracker)"
    exit 0
fi
say "FAIL: no BANGER-BOOT-OK ($result after ${took} s); the serial console said:"
tail -n 60 "$log" | sed 's/^/    | /'
exit 1
