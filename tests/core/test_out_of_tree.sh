#!/bin/sh
# A third party builds a module with only the installed header and
# pkg-config, exactly as the README says, and bangerd loads it.
set -eu
: "${top_builddir:?}" "${MAKE:=make}" "${CC:=cc}" "${PKG_CONFIG:=pkg-config}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
dest="$work/dest"

$MAKE -s -C "$top_builddir/include" install DESTDIR="$dest" >/dev/null
$MAKE -s -C "$top_builddir" install-pkgconfigDATA DESTDIR="$dest" >/dev/null
pc=$(find "$dest" -name banger-capability.pc)
[ -n "$pc" ] || { echo "banger-capability.pc was not installed"; exit 1; }

cat > "$work/hello.c" <<'MODULE'
#include <banger/capability.h>
#include <errno.h>

static const struct banger_host_api *host;

static int hello_init(const struct banger_host_api *h, const struct banger_cfg *cfg,
                      void **state, struct banger_error *err)
{
    static const char *const keys[] = { "greeting", NULL };
    host = h;
    *state = 0;
    return host->cfg_check_keys(cfg, keys, err);
}

static int hello_start(void *state, struct banger_vm *vm, enum banger_phase phase,
                       struct banger_error *err)
{
    (void)state; (void)phase;
    return host->add_kernel_arg(vm, "hello=1", err);
}

static const struct banger_capability hello = {
    .abi_version = BANGER_CAPABILITY_ABI_VERSION,
    .struct_size = sizeof(struct banger_capability),
    .name = "hello", .version = "9.9", .description = "third-party example",
    .phases = BANGER_PHASE_BEFORE_LAUNCH,
    .init = hello_init, .start = hello_start,
};
BANGER_CAPABILITY_DEFINE(hello)
MODULE

mkdir -m 0755 "$work/plugins"
# The README's command line, with pkg-config pointed at the staged install.
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$dest" \
         $PKG_CONFIG --cflags banger-capability)
# shellcheck disable=SC2086
$CC -shared -fPIC $cflags "$work/hello.c" -o "$work/plugins/hello.so"
chmod 0755 "$work/plugins/hello.so"

cat > "$work/banger.conf" <<CONF
plugin_dir = "$work/plugins";
plugins = ( "hello" );
hello = { greeting = "hi"; };
CONF
out=$("$top_builddir/core/bangerd" --check --config "$work/banger.conf")
echo "$out"
echo "$out" | grep -q 'hello .*9\.9 .*before-launch .*third-party example' ||
    { echo "FAIL: the out-of-tree module is not in the chain"; exit 1; }

# Its config group is validated by the module itself.
cat > "$work/bad.conf" <<CONF
plugin_dir = "$work/plugins";
plugins = ( "hello" );
hello = { greting = "hi"; };
CONF
if msg=$("$top_builddir/core/bangerd" --check --config "$work/bad.conf" 2>&1); then
    echo "FAIL: a misspelt key was accepted"; exit 1
fi
echo "$msg"
echo "$msg" | grep -q "plugin hello: $work/bad.conf:3: hello.greting: unknown key" ||
    { echo "FAIL: unexpected message"; exit 1; }
echo "PASS: out-of-tree module built with pkg-config loads"
