/* libFuzzer target for what a pull reads from an untrusted bundle: the
 * bytes as manifest.json (images_bundle_manifest_parse), and the bytes as a
 * tar through the whole member walk (images_bundle_extract) into a scratch
 * directory, with caps small enough that every input is cheap. */
#include "config.h"

#include "images/image_bundle.h"

#include <archive.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct images_limits fuzz_limits = {
    .max_bundle_bytes = 4u << 20,
    .max_rootfs_bytes = 2u << 20,
    .max_kernel_bytes = 1u << 20,
    .max_initrd_bytes = 1u << 20,
};

static int fuzz_dir = -1;
static char fuzz_path[] = "/tmp/banger-fuzz-bundle-XXXXXX";

/* Each input's files are unlinked after it; the directory goes at exit. */
static void fuzz_scratch_remove(void) { rmdir(fuzz_path); }

static void fuzz_scratch(void)
{
    if (!mkdtemp(fuzz_path))
        abort();
    fuzz_dir = open(fuzz_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fuzz_dir < 0)
        abort();
    atexit(fuzz_scratch_remove);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct banger_error err = { 0 };
    struct images_bundle_manifest m = { 0 };

    if (fuzz_dir < 0)
        fuzz_scratch();
    if (images_bundle_manifest_parse((const char *)data, size, &fuzz_limits, &m, &err) == 0)
        images_bundle_manifest_clear(&m);

    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_memory(a, data, size) == ARCHIVE_OK &&
        images_bundle_extract(a, fuzz_dir, &fuzz_limits, NULL, &m, &err) == 0)
        images_bundle_manifest_clear(&m);
    archive_read_free(a);
    for (int i = 0; i < IMAGES_BUNDLE_FILES; i++)
        unlinkat(fuzz_dir, images_bundle_files[i], 0);
    return 0;
}
