/* Broken modules for the loader's refusals, selected by BADMOD_KIND. */
#include <banger/capability.h>

__attribute__((unused)) static int badmod_start(void *state, struct banger_vm *vm, enum banger_phase phase,
                        struct banger_error *err)
{
    (void)state; (void)vm; (void)phase; (void)err;
    return 0;
}

#if BADMOD_KIND == 1 /* built for a future ABI */
static const struct banger_capability desc = {
    .abi_version = 99, .struct_size = sizeof(struct banger_capability),
    .name = "badabi", .phases = BANGER_PHASE_BEFORE_LAUNCH, .start = badmod_start,
};
BANGER_CAPABILITY_DEFINE(desc)
#elif BADMOD_KIND == 2 /* descriptor shorter than ABI 1 */
static const struct banger_capability desc = {
    .abi_version = BANGER_CAPABILITY_ABI_VERSION, .struct_size = 16,
    .name = "shortsize", .phases = BANGER_PHASE_BEFORE_LAUNCH, .start = badmod_start,
};
BANGER_CAPABILITY_DEFINE(desc)
#elif BADMOD_KIND == 3 /* no entry point */
int noentry_something(void);
int noentry_something(void) { return 0; }
#endif
