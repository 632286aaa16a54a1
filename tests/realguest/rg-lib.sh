#!/bin/bash
# Shared by the real-guest tier (realguest.sh) and its benchmark
# (bench/bench_realguest.sh): namespaces with an uplink, the default image,
# and a real bangerd with the tap, reflink, nat and dns modules whose
# firecracker_bin is banger-vmm-qemu. Source it, then call rg_setup.
#
#   uplink netns  bgrg-up-<pid>:   10.251.<n>.2  HTTP server (reports the client
#                                  address) and a DNS upstream (dnsmasq)
#        | veth
#   host netns    bgrg-host-<pid>: 10.251.<n>.1  bangerd, br-banger, TAPs, nft
#        | TAP
#   guests                          172.29.0.0/24, DNS on the bridge
#
# Packets go only between these namespaces. The daemon's state dir is an
# xfs file system on a loop device, so the reflink module really clones.

BANGERD=${BANGERD:?run through make check}
BANGER=${BANGER_CLI:?run through make check}
VMM=${BANGER_VMM_QEMU_BIN:?run through make check}
TOP_BUILDDIR=${TOP_BUILDDIR:?run through make check}
rg_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The agent's vsock needs /dev/vhost-vsock for qemu's vhost-vsock-device.
if [ -c /dev/vhost-vsock ]; then RG_VSOCK=yes; else RG_VSOCK=no; fi
if [ "$RG_VSOCK" = yes ]; then
    PLUGINS=${RG_PLUGINS:-"tap reflink nat dns vsock"}
else
    PLUGINS=${RG_PLUGINS:-"tap reflink nat dns"}
fi
RG_NAME=${RG_NAME:-realguest}

say() { echo "$RG_NAME: $*"; }
unavailable() {
    if [ "${CI:-}" = true ]; then
        say "FAIL: $* (CI=true, so this is an error, not a skip)"
        exit 1
    fi
    say "************************************************************"
    say "SKIP: $*"
    say "the $RG_NAME run did NOT happen"
    say "************************************************************"
    exit 77
}

failures=0
fail() { say "FAIL: $*"; failures=$((failures + 1)); }
pass() { say "ok: $*"; }
# What the daemon and the guests said, for a failing run.
show_diagnostics() {
    [ -n "${tmp:-}" ] || return 0
    if [ -f "$tmp/bangerd.log" ]; then
        say "the daemon log ends with:"
        tail -n 40 "$tmp/bangerd.log" | sed 's/^/    | /'
    fi
    for f in "$tmp"/state/vms/*/firecracker.log; do
        [ -f "$f" ] || continue
        say "console $f:"
        grep -v '^\s*$' "$f" | grep -v '^\[ *[0-9]*\.[0-9]*\] ' | tail -n ${RG_CONSOLE_LINES:-40} | sed 's/^/    | /'
    done
}
die() {
    say "FAIL: $*"
    failures=$((failures + 1))
    show_diagnostics
    exit 1
}
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'; }

rg_check_host() {
    [ "$(id -u)" = 0 ] || unavailable "needs root (network namespaces, loop devices, bangerd)"
    for tool in qemu-system-x86_64 debootstrap ssh ssh-keyscan git mkfs.xfs dnsmasq busybox nft \
                ip jq dig; do
        command -v "$tool" >/dev/null 2>&1 || unavailable "$tool is not installed"
    done
    for p in $PLUGINS; do
        [ -f "$TOP_BUILDDIR/plugins/$p/.libs/$p.so" ] || die "plugin $p is not built"
    done
    [ -x "$VMM" ] || die "$VMM is not built"
}

# ---- timing -----------------------------------------------------------------
t_all=$(date +%s.%N)
t_part=$t_all
timings=""
part_done() {
    local now
    now=$(date +%s.%N)
    local took
    took=$(awk -v a="$t_part" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
    timings="$timings$(printf '  %-34s %6s s' "$1" "$took")"$'\n'
    say "-- $1 took $took s"
    t_part=$now
}

# ---- clean-up of everything this script made --------------------------------
tag=$$
net=$((tag % 200 + 20))
host_ns=bgrg-host-$tag
up_ns=bgrg-up-$tag
veth_host=bgrgh$((tag % 100000))
veth_up=bgrgu$((tag % 100000))
tmp=
daemon=
loopdev=
cleanup() {
    set +e
    if [ -n "$daemon" ]; then
        kill -TERM "$daemon" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$daemon" 2>/dev/null
        wait "$daemon" 2>/dev/null
    fi
    # Anything the daemon started in our namespace (a VMM, qemu) dies with it.
    if ip netns pids "$host_ns" >/dev/null 2>&1; then
        for pid in $(ip netns pids "$host_ns"); do kill -KILL "$pid" 2>/dev/null; done
    fi
    for pid in $(ip netns pids "$up_ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    sleep 0.2
    ip netns del "$host_ns" 2>/dev/null
    ip netns del "$up_ns" 2>/dev/null
    if [ -n "$tmp" ]; then
        umount "$tmp/state" 2>/dev/null
        [ -z "$loopdev" ] || losetup -d "$loopdev" 2>/dev/null
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

tmp=$(mktemp -d /tmp/bgrg-XXXXXX) || exit 1
chmod 0755 "$tmp"

rg_setup() {
# ---- the image ----------------------------------------------------------------
image=$(sh "$rg_here/../images/image-cache.sh")
rc=$?
case $rc in
0) ;;
3) unavailable "debootstrap could not build the default image (is the mirror reachable?)" ;;
77) unavailable "no Debian kernel (/boot/vmlinuz-* with /lib/modules)" ;;
*) die "building the default image failed (status $rc)" ;;
esac
part_done "default image (build or cache)"

# ---- namespaces, uplink services ---------------------------------------------
ip netns add "$host_ns" || die "ip netns add"
ip netns add "$up_ns" || die "ip netns add"
hx() { ip netns exec "$host_ns" "$@"; }
ux() { ip netns exec "$up_ns" "$@"; }
ip link add "$veth_host" netns "$host_ns" type veth peer name "$veth_up" netns "$up_ns" ||
    die "veth"
hx ip link set lo up
ux ip link set lo up
hx ip addr add "10.251.$net.1/24" dev "$veth_host"
ux ip addr add "10.251.$net.2/24" dev "$veth_up"
hx ip link set "$veth_host" up
ux ip link set "$veth_up" up
hx ip route add default via "10.251.$net.2"
uplink_ip=10.251.$net.1
server_ip=10.251.$net.2

mkdir -p "$tmp/www/cgi-bin"
echo "banger-uplink-page" >"$tmp/www/index.html"
cat >"$tmp/www/cgi-bin/whoami" <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "client=$REMOTE_ADDR"
EOF
chmod 0755 "$tmp/www/cgi-bin/whoami"
ux busybox httpd -p "$server_ip:80" -h "$tmp/www" || die "busybox httpd"
ux dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address="$server_ip" --port=53 --pid-file="$tmp/dnsmasq.pid" \
    --address=/upstream.banger-test/10.251.$net.99 --log-facility=- >"$tmp/dnsmasq.log" 2>&1 &

# ---- the daemon -------------------------------------------------------------
truncate -s 4G "$tmp/state.xfs"
mkfs.xfs -q -m reflink=1 "$tmp/state.xfs" || die "mkfs.xfs"
loopdev=$(losetup --find --show "$tmp/state.xfs") || die "losetup"
mkdir -p "$tmp/state" "$tmp/run" "$tmp/plugins"
mount "$loopdev" "$tmp/state" || die "mount xfs"
chmod 0700 "$tmp/state"
plugin_list=
for p in $PLUGINS; do
    install -m 0755 "$TOP_BUILDDIR/plugins/$p/.libs/$p.so" "$tmp/plugins/$p.so"
    plugin_list="$plugin_list${plugin_list:+, }\"$p\""
done
cat >"$tmp/banger.conf" <<EOF
state_dir = "$tmp/state";
runtime_dir = "$tmp/run";
plugin_dir = "$tmp/plugins";
plugins = ( $plugin_list );
firecracker_bin = "$VMM";
log_level = "debug";
stop_grace_ms = 30000;
vm_defaults = { vcpu = 2; memory_mib = 768; disk_size = "1G"; overlay_size = "2G"; };
network = { bridge = "br-banger"; cidr = "172.29.0.0/24"; };
tap = { pool_size = 2; };
nat = { uplink = "$veth_host"; };
dns = { upstream = "$server_ip"; listen_host = "127.0.0.1:5353"; resolved = false; };
EOF
export BANGER_VMM_ACCEL=${BANGER_VMM_ACCEL:-tcg}
export BANGER_CONSOLE_LOG="$TOP_BUILDDIR/core/console/banger-console-log"
export BANGER_SOCKET="$tmp/run/bangerd.sock"
ip netns exec "$host_ns" "$BANGERD" --config "$tmp/banger.conf" >"$tmp/bangerd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
    [ -S "$tmp/run/bangerd.sock" ] && break
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.1
done
[ -S "$tmp/run/bangerd.sock" ] || { cat "$tmp/bangerd.log"; die "bangerd did not start"; }

bg() { hx "$BANGER" --socket "$tmp/run/bangerd.sock" "$@"; }
ssh_in() { bg vm ssh "$@"; }

bg image register --name default --rootfs "$image/rootfs.ext4" --kernel "$image/vmlinux" \
    --initrd "$image/initrd.img" >/dev/null || die "image register"
part_done "namespaces, daemon, image register"
}
