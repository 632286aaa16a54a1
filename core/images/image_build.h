/* `image build-default`: a Debian bookworm image made on this host.
 * debootstrap (minbase plus systemd, ssh and iproute2) from the host's apt
 * mirror, the guest agent and units added, rootfs.ext4 made like `image
 * import` does; the kernel is the host's Debian kernel (/boot/vmlinuz-<ver>)
 * unpacked to an ELF vmlinux, with an initrd that loads the virtio-mmio,
 * virtio-blk, virtio-net, vsock and ext4 modules the Debian kernel has as
 * modules. */
#ifndef BANGER_IMAGE_BUILD_H
#define BANGER_IMAGE_BUILD_H

#include "images/image_bundle.h"
#include "images/image_stage.h"
#include "store/store.h"
#include "util/error.h"

#define IMAGES_BUILD_SUITE "bookworm"
#define IMAGES_BUILD_DEFAULT_NAME "default"
#define IMAGES_BUILD_DEFAULT_MIRROR "http://deb.debian.org/debian"
#define IMAGES_BUILD_DEFAULT_KEYRING "/usr/share/keyrings/debian-archive-keyring.gpg"
/* manifest.json's boot.min_firecracker for the default image. */
#define IMAGES_BUILD_MIN_FIRECRACKER "1.8.0"
/* Packages on top of --variant=minbase. udev: without it systemd waits in
 * vain for dev-ttyS0.device and the serial console never gets a getty.
 * make: `banger vm run REPO -- make test` is what a sandbox is for. */
#define IMAGES_BUILD_PACKAGES \
    "systemd-sysv,udev,openssh-server,iproute2,dbus,procps,ca-certificates,make"

struct images_build_params {
    const char *name;             /* NULL: "default" */
    const char *mirror;           /* NULL: from the host's apt sources; else must be
                                     the host's or one of `mirrors` (see
                                     images_build_mirror_check) */
    const char *const *mirrors;   /* the daemon's images.mirrors */
    size_t n_mirrors;
    const char *keyring;          /* NULL: IMAGES_BUILD_DEFAULT_KEYRING; debootstrap
                                     always runs with --force-check-gpg */
    const struct images_cancel *cancel; /* checked between steps; NULL: never */
    const char *apt_dir;          /* NULL: /etc/apt */
    const char *boot_dir;         /* NULL: /boot */
    const char *modules_root;     /* NULL: /lib/modules */
    const char *busybox;          /* NULL: /bin/busybox (busybox-static) */
    images_progress_fn progress;  /* may be NULL */
    void *progress_ctx;
};

int images_build_default(struct store *store, const char *images_dir,
                         const struct images_build_params *p, struct image_record **out,
                         struct banger_error *err);

/* The Debian mirror in apt_dir's sources (sources.list and sources.list.d/
 * *.list one-line entries, *.sources deb822 stanzas): the first enabled
 * "deb" source for `suite` that is not a security archive, else the first
 * such source for any suite, else IMAGES_BUILD_DEFAULT_MIRROR. malloc'd. */
char *images_apt_mirror(const char *apt_dir, const char *suite);

/* May a client have debootstrap use `mirror`? Only an http(s) URL equal
 * (trailing slashes aside) to `host_mirror` or to one of `allowed`; file:
 * and anything else is refused (-EPERM) with the reason. */
int images_build_mirror_check(const char *mirror, const char *host_mirror,
                              const char *const *allowed, size_t n_allowed,
                              struct banger_error *err);

#endif
