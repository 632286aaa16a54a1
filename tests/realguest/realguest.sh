#!/bin/bash
# The real-guest tier: the product's main job, for real. The real bangerd and
# banger, with the tap, reflink, nat and dns modules, boot the image that
# `image build-default` makes under banger-vmm-qemu (Firecracker's API over
# QEMU's microvm machine; software emulation on machines without usable
# KVM) inside private network namespaces (rg-lib.sh draws them), and check
# from inside the guest what a user relies on.
# Without root, qemu, a kernel or a mirror: SKIP (77), or FAIL when CI=true.
set -u
. "$(dirname "$0")/rg-lib.sh"
rg_check_host
say "NOTE: guests run under banger-vmm-qemu (QEMU microvm), not Firecracker."
rg_setup

# ---- create, ssh ---------------------------------------------------------------
t0=$(date +%s.%N)
bg vm create --name alpha --nat || die "vm create alpha"
t1=$(date +%s.%N)
out=$(ssh_in alpha -- uname -a) || die "vm ssh alpha -- uname -a"
t2=$(date +%s.%N)
echo "$out" | sed 's/^/    | /'
kver=$("$BUILD_DEFAULT_IMAGE" kernel-version)
case $out in
*Linux\ alpha\ *"$kver"*) pass "vm ssh alpha -- uname -a: the guest kernel ($kver) and hostname" ;;
*) fail "uname -a in the guest said: $out" ;;
esac
say "vm create: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s;" \
    "then to a working vm ssh: $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }') s"
part_done "vm create alpha + first vm ssh"

# ---- inside the guest: work disk, DNS, NAT -----------------------------------
out=$(ssh_in alpha -- findmnt -n -o SOURCE,FSTYPE,LABEL /root 2>&1)
case $out in
*/dev/vd*ext4*banger-work*) pass "/root is the labelled work disk ($out)" ;;
*) fail "/root is not the work disk: $out" ;;
esac
bg vm exec alpha -- sh -c 'echo kept-across-restart > /root/persist && sync' ||
    fail "write /root/persist"

bg vm create --name beta || die "vm create beta"
beta_ip=$(bg --json vm show beta | jq -r '.ip')
out=$(ssh_in alpha -- getent hosts beta.vm)
case $out in
"$beta_ip "*beta.vm*) pass "getent hosts beta.vm in alpha answers $beta_ip through banger's DNS" ;;
*) fail "getent hosts beta.vm said '$out' (beta is $beta_ip)" ;;
esac
out=$(ssh_in alpha -- getent hosts upstream.banger-test)
case $out in
"10.251.$net.99 "*) pass "a name outside the zone is answered through the forwarder" ;;
*) fail "getent hosts upstream.banger-test said '$out'" ;;
esac
http_get="exec 3<>/dev/tcp/$server_ip/80 && printf 'GET /cgi-bin/whoami HTTP/1.0\r\n\r\n' >&3 && cat <&3"
out=$(bg vm exec alpha -- timeout 20 bash -c "$http_get" 2>&1)
case $out in
*"client=$uplink_ip"*) pass "NAT: the guest reaches the uplink's HTTP server as $uplink_ip" ;;
*) fail "NAT: HTTP through the uplink said: $out" ;;
esac
out=$(bg vm exec beta -- timeout 5 bash -c "$http_get" 2>&1) &&
    fail "beta (no --nat) reached the uplink" || pass "beta, created without --nat, cannot reach the uplink"
part_done "work disk, DNS, forwarder, NAT"

# ---- stop / start: a clean power-off, /root survives -------------------------
t0=$(date +%s)
bg vm stop alpha || fail "vm stop alpha"
took=$(($(date +%s) - t0))
if grep -q "graceful stop of pid .* failed" "$tmp/bangerd.log"; then
    fail "vm stop needed SIGKILL: $(grep "graceful stop" "$tmp/bangerd.log" | tail -n 1)"
else
    pass "vm stop: the guest powered off on Ctrl-Alt-Del in $took s (no SIGKILL)"
fi
bg vm start alpha || fail "vm start alpha"
out=$(bg vm exec alpha -- cat /root/persist)
[ "$out" = kept-across-restart ] && pass "/root survived vm stop / vm start" ||
    fail "/root/persist after restart: $out"
# A power-off from inside ends the VMM; the daemon notices without being asked.
bg vm exec alpha -- systemctl poweroff >/dev/null 2>&1
state=
for _ in $(seq 120); do
    state=$(bg --json vm show alpha | jq -r .state)
    [ "$state" = stopped ] && break
    sleep 0.5
done
[ "$state" = stopped ] && pass "poweroff in the guest ended its VMM; the VM is stopped" ||
    fail "after poweroff in the guest, alpha is $state"
part_done "vm stop, vm start, poweroff inside"

# ---- vm run --rm with a git repository ------------------------------------------
repo=$tmp/repo
mkdir -p "$repo"
git -C "$repo" init -q
printf 'test:\n\t@test -f tracked.txt && ! test -e untracked.txt && echo repo-test-passed\n\nfail:\n\t@echo repo-test-failing; exit 3\n' \
    >"$repo/Makefile"
echo data >"$repo/tracked.txt"
git -C "$repo" add Makefile tracked.txt
git -C "$repo" -c user.name=t -c user.email=t@t commit -qm init
echo junk >"$repo/untracked.txt"
before=$(bg --json vm list | jq '.vms | length')
out=$(bg vm run --rm "$repo" -- make test 2>&1)
rc=$?
case "$rc:$out" in
0:*repo-test-passed*) pass "vm run --rm REPO -- make test: tracked files in /root/repo, status 0" ;;
*) fail "vm run --rm REPO -- make test exited $rc: $out" ;;
esac
out=$(bg vm run --rm "$repo" -- make fail 2>&1)
rc=$?
case "$rc:$out" in
2:*repo-test-failing*) pass "vm run --rm REPO -- make fail: make's failure (2) is banger's status" ;;
*) fail "vm run --rm REPO -- make fail exited $rc, not 2: $out" ;;
esac
after=$(bg --json vm list | jq '.vms | length')
[ "$before" = "$after" ] && pass "vm run --rm left no VM behind" ||
    fail "vm run --rm left VMs: $(bg vm list)"
part_done "vm run --rm (pass and fail)"

# ---- delete: nothing left -----------------------------------------------------
failures_before=$failures
ids=$(bg --json vm list | jq -r '.vms[].id')
bg vm delete alpha beta || fail "vm delete alpha beta"
left=$(bg --json vm list | jq '.vms | length')
[ "$left" = 0 ] || fail "VMs left after delete: $(bg vm list)"
for id in $ids; do
    [ ! -e "$tmp/state/vms/$id" ] || fail "state dir of $id left: $(ls "$tmp/state/vms/$id")"
    [ ! -e "$tmp/run/vms/$id" ] || fail "runtime dir of $id left"
    if hx nft list ruleset 2>/dev/null | grep -q "$id"; then fail "nft rules of $id left"; fi
done
for pid in $(ip netns pids "$host_ns"); do
    [ "$pid" = "$daemon" ] && continue
    comm=$(cat "/proc/$pid/comm" 2>/dev/null)
    case $comm in
    qemu* | banger-vmm*) fail "process left: $pid $comm" ;;
    esac
done
out=$(hx dig +short -p 5353 @127.0.0.1 alpha.vm 2>&1)
[ -z "$out" ] || fail "alpha.vm still resolves: $out"
# The TAPs went back to the warm pool (pool_size 2); the daemon's exit
# removes the pool.
taps=$(hx ip -o link show type tun | grep -c ': bgtap' || true)
[ "$taps" -le 2 ] || fail "more TAPs than the pool holds: $(hx ip -o link show type tun)"
kill -TERM "$daemon"
for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$daemon" 2>/dev/null; then
    fail "bangerd did not exit on SIGTERM"
else
    wait "$daemon"
    daemon=
fi
left=$(hx ip -o link show type tun | grep ': bgtap' || true)
[ -z "$left" ] || fail "TAPs left after the daemon exited: $left"
[ "$failures" = "$failures_before" ] &&
    pass "delete left no process, TAP, nft rule, file or DNS record; the daemon exit no pool TAP"
part_done "vm delete, leak checks"

# ---- the agent, where qemu has vsock --------------------------------------------
if [ "$RG_VSOCK" = yes ]; then
    bg vm create --name gamma >/dev/null || fail "vm create gamma (with the vsock module)"
    out=$(bg vm health gamma 2>&1) && pass "vm health gamma: the agent answers over vsock" ||
        fail "vm health gamma: $out"
    ssh_in gamma -- true || fail "vm ssh gamma"
    out=$(bg vm ports gamma 2>&1)
    case $out in
    *sshd* | *":22 "* | *" 22 "*) pass "vm ports gamma shows sshd" ;;
    *) fail "vm ports gamma does not show sshd: $out" ;;
    esac
    bg vm delete gamma >/dev/null || fail "vm delete gamma"
    part_done "the agent over vsock"
else
    say "NOTE: no /dev/vhost-vsock on this host: vm health / vm ports (the agent over vsock)"
    say "      are not exercised on a real guest here (tests/e2e covers them with the double)"
fi

say "timings:"
printf '%s' "$timings"
say "total $(awk -v a="$t_all" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
if [ "$failures" != 0 ]; then
    say "$failures check(s) failed"
    show_diagnostics
    exit 1
fi
say "PASS"
