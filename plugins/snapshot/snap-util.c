#include "config.h"

#include "snap-util.h"
#include "util/ext4_check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int snap_dm_name(const char *vm_id, char *out, size_t out_len)
{
    size_t n = vm_id ? strlen(vm_id) : 0;

    if (n == 0 || n > 32 || strspn(vm_id, "0123456789abcdefghijklmnopqrstuvwxyz") != n)
        return -EINVAL;
    if ((size_t)snprintf(out, out_len, SNAP_DM_PREFIX "%s", vm_id) >= out_len)
        return -ENAMETOOLONG;
    return 0;
}

int snap_is_own_dm_name(const char *name)
{
    return name && strncmp(name, SNAP_DM_PREFIX, strlen(SNAP_DM_PREFIX)) == 0 &&
           name[strlen(SNAP_DM_PREFIX)] != '\0';
}

int snap_check_ext4(const char *path, uint64_t *size_out, char *why, size_t why_len)
{
    uint64_t size;
    int r = bg_check_ext4_image(path, &size, why, why_len);

    if (r < 0)
        return r;
    /* The snapshot target maps whole 512-byte sectors of the image. */
    if (size % 512 != 0) {
        snprintf(why, why_len, "image %s: size %llu is not a multiple of 512 bytes", path,
                 (unsigned long long)size);
        return -EINVAL;
    }
    if (size_out)
        *size_out = size;
    return 0;
}

unsigned snap_backoff_ms(unsigned attempt)
{
    unsigned ms = 10;

    while (attempt-- > 1 && ms < 500)
        ms *= 2;
    return ms > 500 ? 500 : ms;
}
