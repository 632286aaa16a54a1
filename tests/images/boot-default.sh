#!/bin/sh
# Slow tier: build the default image with the daemon's build-default code
# (debootstrap from the host's mirror, agent, ext4, Debian kernel unpacked to
# vmlinux, module initrd) and boot it under QEMU's microvm machine, whose
# virtio-mmio devices are like Firecracker's, the way banger boots a VM:
#   - a work disk made like banger makes it (mkfs.ext4 -L banger-work) with
#     a key put in by the daemon's own guest_inject_key;
#   - a TAP in a network namespace this script makes (every packet stays
#     in it) and banger's kernel arguments (reboot=k, ip=... with hostname
#     and DNS server).
# Then it proves, over a real ssh login as root with that key, that /root is
# the work disk (seeded, mode 700), that the hostname and resolv.conf come
# from ip=, and that sshd takes keys only and serves the key ssh-keyscan
# pinned; that `poweroff` in the guest ends the VMM (Firecracker, like QEMU
# -no-reboot here, exits only on a guest reset); and, booting the same disks
# again, that the host key and root's files were kept and that Ctrl-Alt-Del
# (QMP send-key, what Firecracker's SendCtrlAltDel does) shuts the guest
# down cleanly and ends the VMM. Durations are printed, never asserted.
# BOOT_LOG=path keeps the serial console logs.
#
# The build takes a minute, so tests/images/image-cache.sh caches it by a
# hash of its sources ($BANGER_TEST_CACHE, else $BOOT_CACHE_DIR).
# Without a mirror, qemu or a kernel: SKIP (77), or FAIL when CI=true.
# BOOT_MIRROR overrides the mirror (e.g. to try the skip path).
set -u

BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}
BOOT_LOG=${BOOT_LOG:-}   # a path to keep the serial console log at
STOP_TIMEOUT=${STOP_TIMEOUT:-120}
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
script_start=$(date +%s)

tmp=
qpid=
building=
netns=
cleanup() {
    if [ -n "$qpid" ]; then
        kill -9 "$qpid" 2>/dev/null
        wait "$qpid" 2>/dev/null
    fi
    if [ -n "$netns" ]; then
        # Whatever still runs in the test's namespace is the test's.
        for pid in $(ip netns pids "$netns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns delete "$netns" 2>/dev/null
    fi
    [ -z "$BOOT_LOG" ] || [ -z "$tmp" ] || cat "$tmp"/serial-*.log >"$BOOT_LOG" 2>/dev/null
    [ -z "$building" ] || rm -rf "$building"
    [ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

[ "$(id -u)" = 0 ] || unavailable "needs root (debootstrap, mkfs.ext4)"
command -v qemu-system-x86_64 >/dev/null 2>&1 || unavailable "qemu-system-x86_64 is not installed"
command -v debootstrap >/dev/null 2>&1 || unavailable "debootstrap is not installed"
for tool in ssh ssh-keygen ssh-keyscan mkfs.ext4 debugfs ip; do
    command -v "$tool" >/dev/null 2>&1 || unavailable "$tool is not installed"
done
ver=$("$builder" kernel-version) || unavailable "no Debian kernel (/boot/vmlinuz-* with /lib/modules)"

tmp=$(mktemp -d /tmp/banger-boot-XXXXXX) || exit 1
# Built once per set of sources and shared with the real-guest tier.
cache=$(sh "$(dirname "$0")/image-cache.sh")
case $? in
0) ;;
3) unavailable "debootstrap could not build the root file system (is the mirror reachable?)" ;;
77) unavailable "no Debian kernel (/boot/vmlinuz-* with /lib/modules)" ;;
*) say "FAIL: building the default image failed"; exit 1 ;;
esac

# The daemon refuses this kernel on a Firecracker without ACPI device discovery.
tr -d ' \t\n' <"$cache/manifest.json" |
    grep -q '"boot":{"device_discovery":"acpi","min_firecracker":"1.8.0"}' || {
    say "FAIL: manifest.json lacks boot.device_discovery acpi / boot.min_firecracker 1.8.0"
    exit 1
}

# The work disk as banger makes it, with banger's key put in by the daemon's code.
t0=$(date +%s)
ssh-keygen -q -t ed25519 -N '' -C boot-default -f "$tmp/id_ed25519" || exit 1
truncate -s 256M "$tmp/work.ext4" || exit 1
mkfs.ext4 -q -F -L banger-work "$tmp/work.ext4" || exit 1
"$builder" inject-key "$tmp/work.ext4" "$tmp/id_ed25519.pub" || exit 1

# A private network: the TAP's host end is the "bridge" address, which is
# also the DNS server banger's ip= names.
netns=bgboot$$
tap=bgtap0
host_ip=172.31.250.1
guest_ip=172.31.250.2
vm_name=boot-check
ip netns add "$netns" || exit 1
in_ns() { ip netns exec "$netns" "$@"; }
in_ns ip link set lo up &&
in_ns ip tuntap add dev "$tap" mode tap &&
in_ns ip addr add "$host_ip/24" dev "$tap" &&
in_ns ip link set "$tap" up || exit 1
say "work disk, key and network namespace ready in $(($(date +%s) - t0)) s"

# A sanitizer build's agent is linked dynamically against the sanitizer
# runtimes, which the guest does not have: it cannot start there, and with it
# goes BANGER-BOOT-OK. Then the boot counts as done once sshd answers.
ready=BANGER-BOOT-OK
if ldd "$agent" >/dev/null 2>&1; then
    ready=sshd
    say "NOTE: $agent is not static (a sanitizer build?): it cannot run in the guest;"
    say "      waiting for sshd instead of BANGER-BOOT-OK"
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
# What banger passes (core/fc FC_BASE_BOOT_ARGS, plugins/tap's ip=).
banger_args="console=ttyS0 reboot=k panic=1 pci=off"
banger_args="$banger_args ip=$guest_ip::$host_ip:255.255.255.0:$vm_name:eth0:off:$host_ip"

# The VM's own root disk, as banger gives each VM one: host keys made on
# its first boot must still be there on the next.
cp --sparse=always "$cache/rootfs.ext4" "$tmp/rootfs.ext4" || exit 1

qmp=$tmp/qmp.sock
log=
fail() {
    say "FAIL: $*; the serial console said:"
    [ -z "$log" ] || tail -n 60 "$log" | sed 's/^/    | /'
    exit 1
}

# boot N: start the VM (console in $tmp/serial-N.log), wait for BANGER-BOOT-OK.
boot() {
    log=$tmp/serial-$1.log
    say "boot $1: qemu-system-x86_64 -M microvm (timeout ${BOOT_TIMEOUT} s)"
    start=$(date +%s)
    rm -f "$qmp"
    # shellcheck disable=SC2086 # $vsock is empty or two words
    # pit/pic/rtc on: with microvm's defaults under TCG the kernel finds no
    # timer to calibrate the TSC against and hangs before init. i8042: the
    # keyboard controller Firecracker has too, for Ctrl-Alt-Del.
    # Not through in_ns: run in the background, a shell function is a subshell
    # whose pid is not qemu's, and killing it would leave qemu running.
    ip netns exec "$netns" qemu-system-x86_64 -M microvm,accel=tcg,pit=on,pic=on,rtc=on \
        -cpu max -m 512 -smp 1 \
        -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
        -qmp "unix:$qmp,server=on,wait=off" -device i8042 \
        -kernel "$cache/vmlinux" -initrd "$cache/initrd.img" \
        -append "$banger_args root=/dev/vda rw $timing" \
        -drive id=root,file="$tmp/rootfs.ext4",format=raw,if=none,cache=writeback \
        -device virtio-blk-device,drive=root \
        -drive id=work,file="$tmp/work.ext4",format=raw,if=none,cache=writeback \
        -device virtio-blk-device,drive=work \
        -netdev tap,id=net0,ifname="$tap",script=no,downscript=no \
        -device virtio-net-device,netdev=net0,mac=06:00:ac:1f:fa:02 \
        $vsock </dev/null >"$log" 2>&1 &
    qpid=$!
    result=timeout
    while [ $(($(date +%s) - start)) -lt "$BOOT_TIMEOUT" ]; do
        if [ "$ready" = BANGER-BOOT-OK ] && grep -q 'BANGER-BOOT-OK' "$log"; then
            result=ok
            break
        fi
        if [ "$ready" = sshd ] && grep -q 'Started.*ssh.service' "$log" &&
           in_ns ssh-keyscan -T 1 -t ed25519 "$guest_ip" >/dev/null 2>&1; then
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
    [ "$result" = ok ] || fail "no $ready ($result after ${took} s)"
    say "boot $1: $ready after ${took} s"
}

# Pin the host key the way the daemon does (core/guest: ssh-keyscan -t
# ed25519) into $tmp/known_hosts-N.
pin_host_key() {
    i=0
    while ! in_ns ssh-keyscan -T 2 -t ed25519 "$guest_ip" >"$tmp/known_hosts-$1" 2>/dev/null ||
          ! [ -s "$tmp/known_hosts-$1" ]; do
        i=$((i + 1))
        [ $i -lt 30 ] || fail "ssh-keyscan $guest_ip found no ed25519 host key"
        sleep 1
    done
}

# guest_ssh N COMMAND: ssh as root with banger's key, strict host key
# checking against what boot N pinned: sshd must serve that key.
guest_ssh() {
    in_ns ssh -i "$tmp/id_ed25519" -o UserKnownHostsFile="$tmp/known_hosts-$1" \
        -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes \
        -o ConnectTimeout=10 -F /dev/null "root@$guest_ip" "$2"
}

# wait_vmm_exit WHAT: the VMM must exit, through a guest reset, after WHAT.
wait_vmm_exit() {
    sent=$(date +%s)
    while kill -0 "$qpid" 2>/dev/null && [ $(($(date +%s) - sent)) -lt "$STOP_TIMEOUT" ]; do
        sleep 1
    done
    kill -0 "$qpid" 2>/dev/null && fail "the VMM still runs ${STOP_TIMEOUT} s after $1"
    wait "$qpid" 2>/dev/null
    qpid=
    grep -q 'reboot: Restarting system' "$log" ||
        fail "qemu exited after $1, but not through a guest reset"
    say "$1: the guest shut down and the VMM exited after $(($(date +%s) - sent)) s"
}

expect() {
    grep -Eq "$1" "$tmp/probe.out" || fail "expected /$1/ in the guest's answers ($2)"
}

# ---- boot 1: first use of the root and work disks --------------------------
boot 1
pin_host_key 1
probe='findmnt -n -o SOURCE,FSTYPE,LABEL /root
stat -c "mode %a %U" /root /root/.ssh /root/.ssh/authorized_keys
ls -A /root; echo "hostname $(hostname)"; cat /etc/resolv.conf; ls /etc/ssh/ssh_host_*_key
sshd -T 2>/dev/null | grep -Ei "^(permitrootlogin|passwordauthentication) "
echo kept > /root/kept.txt'
guest_ssh 1 "$probe" >"$tmp/probe.out" 2>"$tmp/probe.err" ||
    { cat "$tmp/probe.err"; fail "ssh -i <key> root@$guest_ip failed"; }
in_ssh=$(($(date +%s) - start))
say "boot 1: logged in with ssh as root after ${in_ssh} s; the guest said:"
sed 's/^/    | /' "$tmp/probe.out"
expect '^/dev/vd[a-z]+ ext4 +banger-work$' "the work disk mounted at /root by its label"
expect '^mode 700 root$' "/root and .ssh 0700"
expect '^mode 600 root$' "authorized_keys 0600"
expect '^\.bashrc$' "the work disk seeded with root's skeleton files"
expect "^hostname $vm_name\$" "the hostname from ip="
expect "^nameserver $host_ip\$" "resolv.conf from ip="
expect '^permitrootlogin (without-password|prohibit-password)$' "root by key only"
expect '^passwordauthentication no$' "no passwords"
expect '^/etc/ssh/ssh_host_ed25519_key$' "host keys made on first boot"
# poweroff inside the guest must end the VMM too: it ends in a reset.
guest_ssh 1 'systemctl poweroff' >/dev/null 2>&1
wait_vmm_exit "poweroff in the guest"

# ---- boot 2: the same disks again ------------------------------------------
boot 2
pin_host_key 2
cmp -s "$tmp/known_hosts-1" "$tmp/known_hosts-2" ||
    fail "the host key changed across a reboot of the same root disk"
guest_ssh 2 'cat /root/kept.txt; ls -A /root' >"$tmp/probe.out" 2>"$tmp/probe.err" ||
    { cat "$tmp/probe.err"; fail "ssh after the reboot failed"; }
expect '^kept$' "the work disk's files survive a reboot"
say "boot 2: same host key, the work disk kept its files"
# Ctrl-Alt-Del, as Firecracker's SendCtrlAltDel: a clean shutdown that
# ends in a reset, which ends the VMM (-no-reboot, like Firecracker).
"$builder" qmp "$qmp" '{"execute": "send-key", "arguments": {"keys": [{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}]}}' >/dev/null ||
    fail "QMP send-key ctrl-alt-delete failed"
wait_vmm_exit "Ctrl-Alt-Del"
# Unmounted cleanly: the work disk's journal needs no recovery.
e2fsck -n "$tmp/work.ext4" >"$tmp/fsck.out" 2>&1 ||
    { cat "$tmp/fsck.out"; fail "the work disk is not clean after the shutdown"; }
say "PASS: boot to ssh login ${in_ssh} s; poweroff and Ctrl-Alt-Del end the VMM;" \
    "$(($(date +%s) - script_start)) s in all (QEMU microvm, not Firecracker)"
exit 0
