/* Device-mapper through libdevmapper (no dmsetup). Every call is serialised
 * by a lock here: libdevmapper keeps process-global state (node operations,
 * the control fd). Works with udev (waits on its cookie) and without it
 * (libdevmapper then makes the /dev/mapper nodes itself). */
#ifndef BANGER_SNAP_DM_H
#define BANGER_SNAP_DM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Once per process: quiet libdevmapper's own logging (we report errors
 * ourselves) and turn off udev synchronisation when no udev runs. */
void snap_dm_setup(void);

/* 0 when the kernel has device-mapper and the `snapshot` target. */
int snap_dm_check_snapshot_target(char *why, size_t why_len);
/* 1 when a dm device `name` exists, 0 when not, or a negative errno. */
int snap_dm_exists(const char *name);
/* Create `name` as a persistent snapshot of origin on cow (chunk size in
 * sectors), `sectors` long. */
int snap_dm_create_snapshot(const char *name, dev_t origin, dev_t cow, uint64_t sectors,
                            unsigned chunk, char *why, size_t why_len);
/* Remove `name`: 0 removed, -ENXIO not there, -EBUSY in use, other errors. */
int snap_dm_remove(const char *name, char *why, size_t why_len);
/* The devices under `name` (its table's dependencies). */
int snap_dm_deps(const char *name, dev_t *out, size_t max, size_t *n_out);
/* Names of all dm devices starting with `prefix` (malloc'd array of
 * malloc'd strings, NULL-terminated). */
int snap_dm_list(const char *prefix, char ***out, char *why, size_t why_len);
void snap_dm_list_free(char **names);

#endif
