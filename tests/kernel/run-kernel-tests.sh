#!/bin/sh
# Real-kernel harness for the storage tests.
#
# The host kernel has no device-mapper, so the storage suite runs inside a
# throw-away qemu guest (microvm, software emulation) booted with Debian's
# kernel and a small initramfs: busybox, the virtio/9p/dm/loop modules, and an
# init that mounts the host root read-only over 9p, chroots into it and runs
# one test program from the build tree. Check's summary and the program's
# exit status come back on the serial console.
#
#   run-kernel-tests.sh            run test_snapshot_kernel (make check)
#   run-kernel-tests.sh --bench    run the snapshot benchmark instead
#   run-kernel-tests.sh --cmd 'sh command line'   run anything (debugging)
#
# Exit status: 0 pass, 1 fail, 77 skip (qemu/kernel missing outside CI; in
# CI, CI=true, a missing harness is a failure).
set -u

mode=test
guest_cmd=
case "${1:-}" in
--bench) mode=bench ;;
--cmd) mode=cmd; guest_cmd=${2:?--cmd needs a command} ;;
"") ;;
*) echo "usage: $0 [--bench | --cmd CMD]" >&2; exit 2 ;;
esac

here=$(pwd)
marker=BANGER-KTEST-EXIT

missing() {
    echo "################################################################" >&2
    echo "# kernel harness NOT RUN: $*" >&2
    echo "# the snapshot (dm + loop) tests need qemu-system-x86," >&2
    echo "# linux-image-amd64 and busybox-static (apt-get install them)." >&2
    echo "################################################################" >&2
    if [ "${CI:-}" = true ]; then
        echo "CI=true: a missing kernel harness is a failure" >&2
        exit 1
    fi
    exit 77
}

qemu=$(command -v qemu-system-x86_64 2>/dev/null) || missing "qemu-system-x86_64 not found"
busybox=$(command -v busybox 2>/dev/null) || missing "busybox not found"
[ -n "${BANGER_KTEST_KERNEL:-}" ] && kernel=$BANGER_KTEST_KERNEL ||
    kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] && [ -r "$kernel" ] || missing "no kernel (/boot/vmlinuz-* or BANGER_KTEST_KERNEL)"
kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver
[ -d "$moddir" ] || missing "no modules for $kver in $moddir"
# a dynamically linked busybox cannot run before the chroot (ldd fails on a
# static binary)
if ldd "$busybox" >/dev/null 2>&1; then
    missing "$busybox is not statically linked (install busybox-static)"
fi

case $mode in
test)
    prog=$here/test_snapshot_kernel
    [ -x "$prog" ] || { echo "missing $prog (make check builds it)" >&2; exit 1; }
    guest_cmd="CK_VERBOSITY=normal $prog"
    mem=768
    ;;
bench)
    prog=${BANGER_BENCH_SNAPSHOT:-$here/bench_snapshot}
    [ -x "$prog" ] || { echo "missing $prog (make -C tests/kernel bench-snapshot)" >&2; exit 1; }
    guest_cmd="$prog"
    # the copy baseline needs a 1 GiB image and its copy in the guest's tmpfs
    mem=3072
    ;;
cmd) mem=768 ;;
esac

case $here in
/run|/run/*|/proc/*|/sys/*|/dev/*)
    echo "the build directory $here is hidden inside the guest (its /run, /proc, /sys, /dev are its own)" >&2
    exit 1 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/banger-ktest.XXXXXX") || exit 1
if [ -n "${BANGER_KTEST_KEEP:-}" ]; then
    echo "keeping $work"
else
    trap 'rm -rf "$work"' EXIT INT TERM
fi

root=$work/initramfs
mkdir -p "$root/bin" "$root/lib/modules" "$root/proc" "$root/sys" "$root/dev" "$root/mnt"
cp "$busybox" "$root/bin/busybox"
for m in virtio_ring virtio virtio_mmio netfs fscache 9pnet 9pnet_virtio 9p \
         dm-mod dm-bufio dm-snapshot loop; do
    f=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" |
        head -n 1)
    if [ -z "$f" ]; then
        # built into this kernel? then nothing to insert
        grep -q "/$m.ko" "$moddir/modules.builtin" 2>/dev/null && continue
        missing "module $m not found under $moddir"
    fi
    # busybox insmod may not read compressed modules: decompress here
    case $f in
    *.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
    *.gz) gzip -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac || missing "cannot unpack $f"
    echo "$m" >>"$root/lib/modules/order"
done

# The command runs in the chroot (the host's root, read-only) with a private
# /dev, /proc, /sys and a tmpfs /run for scratch. /run also hides the host's
# /run/udev, so libdevmapper knows no udev runs and makes nodes itself.
printf '%s\n' "$guest_cmd" >"$root/cmd"
cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/order); do
    insmod /lib/modules/$m.ko || echo "insmod $m failed"
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /mnt || {
    echo "BANGER-KTEST-EXIT=99"; poweroff -f; }
mount -t proc proc /mnt/proc
mount -t sysfs sysfs /mnt/sys
mount -t devtmpfs devtmpfs /mnt/dev
mkdir -p /mnt/dev/shm /mnt/dev/pts
mount -t tmpfs tmpfs /mnt/dev/shm
mount -t tmpfs -o size=90% tmpfs /mnt/run
mkdir -p /mnt/run/ktest
echo "ktest: kernel $(uname -r), running: $(cat /cmd)"
chroot /mnt /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TMPDIR=/run/ktest TEMP=/run/ktest BANGER_KTEST_GUEST=1 /bin/sh -c "$(cat /cmd)"
echo "BANGER-KTEST-EXIT=$?"
sync
poweroff -f
EOF
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz" || {
    echo "cannot build the initramfs" >&2; exit 1; }

log=$work/serial.log
smp=$(nproc 2>/dev/null || echo 2)
[ "$smp" -gt 4 ] && smp=4
# tsc_early_khz: under emulation on a busy host the kernel may fail to
# calibrate the TSC against the PIT and then hang at boot; give it the rate.
echo "kernel harness: $kernel, $smp vCPU(s), ${mem} MiB, mode $mode"
timeout "${BANGER_KTEST_TIMEOUT:-900}" "$qemu" -M microvm,accel=tcg -cpu max -smp "$smp" -m "$mem" \
    -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
    -kernel "$kernel" -initrd "$work/initramfs.gz" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init tsc_early_khz=1000000 no_timer_check" \
    -fsdev local,id=r,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-device,fsdev=r,mount_tag=hostroot </dev/null >"$log" 2>&1
qrc=$?
tr -d '\r' <"$log" | sed -e "/^$marker=/d"
[ $qrc -eq 0 ] || { echo "qemu failed (exit $qrc; 124 = timed out)" >&2; exit 1; }

rc=$(tr -d '\r' <"$log" | sed -n "s/^$marker=\([0-9]*\)$/\1/p" | tail -n 1)
[ -n "$rc" ] || { echo "the guest did not report an exit status" >&2; exit 1; }
case $mode in
test)
    summary=$(tr -d '\r' <"$log" | grep -E '^[0-9]+%: Checks: [0-9]+' | tail -n 1)
    [ -n "$summary" ] || { echo "no Check summary on the serial console" >&2; exit 1; }
    echo "guest: $summary (exit $rc)"
    case $summary in
    *"Failures: 0, Errors: 0"*) [ "$rc" -eq 0 ] && exit 0 ;;
    esac
    exit 1 ;;
*)
    [ "$rc" -eq 0 ] && exit 0
    echo "guest command failed with status $rc" >&2
    exit 1 ;;
esac
