#!/bin/sh
# `bangerd --check` with the default plugin list prints the five-module chain
# (vsock runs twice: it adds the device before launch and waits after boot).
set -eu
: "${top_builddir:?}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -m 0755 "$work/plugins"
for p in tap snapshot nat dns vsock; do
    so="$top_builddir/plugins/$p/.libs/$p.so"
    [ -f "$so" ] || { echo "FAIL: $so was not built"; exit 1; }
    cp "$so" "$work/plugins/$p.so"
done
cat > "$work/banger.conf" <<CONF
plugin_dir = "$work/plugins";
state_dir = "$work/state";
runtime_dir = "$work/run";
CONF
out=$("$top_builddir/core/bangerd" --check --config "$work/banger.conf")
echo "$out"
chain=$(echo "$out" | awk '$1 ~ /^[0-9]+\.$/ { printf "%s ", $2 }')
[ "$chain" = "tap snapshot nat dns vsock firecracker vsock " ] ||
    { echo "FAIL: chain is '$chain'"; exit 1; }
echo "$out" | grep -q '^ok: 5 plugin(s) loaded$' || { echo "FAIL: not all five loaded"; exit 1; }
echo "PASS: five-module chain"
