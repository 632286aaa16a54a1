/* Loop devices through /dev/loop-control and LOOP_CONFIGURE (no losetup). */
#ifndef BANGER_SNAP_LOOP_H
#define BANGER_SNAP_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Called with "/dev/loopN" after a free device was picked and before it is
 * bound, so the caller can record it first. Non-zero aborts the attach. */
typedef int (*snap_loop_pick_fn)(void *ctx, const char *dev);

/* Bind `path` to a free loop device with autoclear (the kernel detaches it
 * when its last opener closes) and, when read_only, read-only. On success
 * *fd_out is an open O_CLOEXEC fd of the device: keep it open until a holder
 * (the dm table) has the device, or the autoclear releases it at once. */
int snap_loop_attach(const char *path, bool read_only, snap_loop_pick_fn pick, void *ctx,
                     int *fd_out, char *dev_out, size_t dev_len, char *why, size_t why_len);

/* Detach "/dev/loopN" when its backing file is `expect_backing` (NULL: any).
 * Not bound, missing or bound to another file count as done (0). A device
 * still held open is marked autoclear by the kernel and goes with its holder. */
int snap_loop_detach(const char *dev, const char *expect_backing, char *why, size_t why_len);

/* The backing file of loop device `name` ("loop3") from sysfs, or -ENXIO
 * when it is not bound. */
int snap_loop_backing(const char *name, char *out, size_t out_len);

#endif
