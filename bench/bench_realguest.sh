#!/bin/bash
# From `vm create` to a guest that answers ssh, on the real-guest tier's set-up
# (tests/realguest/rg-lib.sh: real bangerd, tap/reflink/nat/dns, banger-vmm-qemu,
# the default image), against the baseline of booting the same image with a
# bare qemu command on a TAP of the same bridge, in the same run.
#
#   baseline  qemu started -> sshd answers (ssh-keyscan)
#   banger    vm create started -> create returned (banger's share: host set-up,
#             VMM spawn, API configuration, InstanceStart) -> sshd answers
#             (the guest's boot) -> `vm ssh -- true` works (key, known_hosts)
# Prints medians of RUNS runs (default 3) and ratios; asserts nothing.
set -u
RG_NAME=bench-realguest
. "$(dirname "$0")/../tests/realguest/rg-lib.sh"
RUNS=${RUNS:-3}

rg_check_host
rg_setup

now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wait_sshd() { # ip, deadline in s
    local end=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt "$end" ]; do
        hx ssh-keyscan -T 1 -t ed25519 "$1" 2>/dev/null | grep -q ssh-ed25519 && return 0
        sleep 0.2
    done
    return 1
}

# The qemu command banger-vmm-qemu runs, minus banger: same machine, same
# kernel, initrd and arguments, a reflinked copy of the root, a TAP on the
# same bridge.
mhz=$(awk -F': *' '/^cpu MHz/ { printf "%d", $2; exit }' /proc/cpuinfo)
[ -n "$mhz" ] && [ "$mhz" -gt 0 ] 2>/dev/null || mhz=2000
base_ip=172.29.0.250
base_runs=$tmp/base.txt
: >"$base_runs"
create_runs=$tmp/create.txt boot_runs=$tmp/boot.txt total_runs=$tmp/total.txt login_runs=$tmp/login.txt
: >"$create_runs"; : >"$boot_runs"; : >"$total_runs"; : >"$login_runs"
run_baseline() {
    local i=$1
    # A clone of the registered image, as the reflink module makes for banger.
    cp --reflink=always "$tmp"/state/images/*/rootfs.ext4 "$tmp/state/base-root.ext4" ||
        die "cannot clone the registered image"
    # The guest waits for its work disk (by label) before sshd; give it one,
    # made before the clock starts.
    rm -f "$tmp/state/base-work.ext4"
    truncate -s 1G "$tmp/state/base-work.ext4"
    mkfs.ext4 -q -L banger-work "$tmp/state/base-work.ext4" || die "mkfs.ext4"
    hx ip tuntap add dev bgrgbase mode tap vnet_hdr
    hx ip link set bgrgbase master br-banger up
    t0=$(now)
    # Not through hx: a backgrounded function's pid is a subshell's, not qemu's.
    ip netns exec "$host_ns" qemu-system-x86_64 -M microvm,accel=tcg,pit=on,pic=on,rtc=on \
        -cpu max -smp 2 -m 768 \
        -nodefaults -no-user-config -nographic -serial "file:$tmp/base-console.log" -no-reboot \
        -kernel "$image/vmlinux" -initrd "$image/initrd.img" \
        -append "console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw ip=$base_ip::172.29.0.1:255.255.255.0:base:eth0:off:172.29.0.1 tsc_early_khz=$((mhz * 1000)) lpj=$((mhz * 4000))" \
        -drive if=none,id=root,file="$tmp/state/base-root.ext4",format=raw,cache=unsafe \
        -device virtio-blk-device,drive=root \
        -drive if=none,id=work,file="$tmp/state/base-work.ext4",format=raw,cache=writeback \
        -device virtio-blk-device,drive=work \
        -netdev tap,id=n0,ifname=bgrgbase,script=no,downscript=no,vnet_hdr=on \
        -device virtio-net-device,netdev=n0,mac=06:00:ac:1d:00:fa </dev/null >/dev/null 2>&1 &
    qpid=$!
    if wait_sshd "$base_ip" 180; then
        secs_between "$t0" "$(now)" >>"$base_runs"
    else
        say "baseline run $i: sshd never answered"
    fi
    kill -KILL "$qpid" 2>/dev/null
    wait "$qpid" 2>/dev/null
    hx ip link del bgrgbase
    rm -f "$tmp/state/base-root.ext4" "$tmp/state/base-work.ext4"
}

run_banger() {
    local i=$1
    t0=$(now)
    bg vm create --name "bench$i" >/dev/null || die "vm create bench$i"
    t1=$(now)
    ip=$(bg --json vm show "bench$i" | jq -r .ip)
    wait_sshd "$ip" 180 || die "bench$i: sshd never answered"
    t2=$(now)
    bg vm ssh "bench$i" -- true || die "vm ssh bench$i"
    t3=$(now)
    secs_between "$t0" "$t1" >>"$create_runs"
    secs_between "$t1" "$t2" >>"$boot_runs"
    secs_between "$t0" "$t2" >>"$total_runs"
    secs_between "$t0" "$t3" >>"$login_runs"
    bg vm delete "bench$i" >/dev/null || die "vm delete bench$i"
}

# Interleaved, so that whatever else the host does weighs on both alike.
for i in $(seq "$RUNS"); do
    run_baseline "$i"
    run_banger "$i"
done

b=$(median <"$base_runs") c=$(median <"$create_runs") g=$(median <"$boot_runs")
t=$(median <"$total_runs") l=$(median <"$login_runs")
echo
echo "vm create -> ssh on the real-guest tier (QEMU microvm, accel=${BANGER_VMM_ACCEL}; medians of $RUNS)"
printf '  %-52s %7.2f s\n' "baseline: bare qemu started -> sshd answers" "$b"
printf '  %-52s %7.2f s\n' "banger: vm create returned (banger's share)" "$c"
printf '  %-52s %7.2f s\n' "banger: create returned -> sshd answers (guest boot)" "$g"
printf '  %-52s %7.2f s\n' "banger: vm create started -> sshd answers" "$t"
printf '  %-52s %7.2f s\n' "banger: vm create started -> vm ssh -- true done" "$l"
awk -v t="$t" -v b="$b" -v c="$c" 'BEGIN {
    printf "  %-52s %7.2fx\n", "ratio: banger to sshd / bare qemu to sshd", t / b
    printf "  %-52s %+7.2f s\n", "difference: banger - bare qemu", t - b
    printf "  %-52s %6.1f %%\n", "banger share of create -> sshd", 100 * c / t }'
