/* banger's persistent store: VMs and images in one SQLite database
 * (/var/lib/banger/banger.db by default).
 *
 * Schema (version STORE_SCHEMA_VERSION; timestamps are Unix seconds, UTC):
 *
 *   schema_migrations(version INTEGER PRIMARY KEY, applied_at INTEGER)
 *       one row per applied migration. Migrations are forward only; a
 *       database whose highest version is newer than this code is refused
 *       (-ENOTSUP) rather than touched.
 *   images(id TEXT PK (12 hex), name TEXT UNIQUE, rootfs_path, kernel_path,
 *          initrd_path NULL, manifest TEXT NULL (JSON, checked by json_valid),
 *          created_at)
 *   vms(id TEXT PK (12 hex), name TEXT UNIQUE, image_id REFERENCES images
 *       ON DELETE RESTRICT, vcpu, memory_mib, disk_size (bytes),
 *       overlay_size (bytes), nat (0/1),
 *       state CHECK IN ('created','running','stopped','error'),
 *       ip TEXT UNIQUE, mac TEXT UNIQUE, cid INTEGER UNIQUE (>= 3),
 *       last_error NULL, created_at, updated_at, started_at NULL,
 *       owner_uid INTEGER (the uid that created the VM; 0 for rows older
 *       than version 2))
 *
 *   Only durable facts live here. Transient handles (firecracker pid, tap,
 *   loop and dm devices) belong in each VM's handles.json.
 *
 * Connection settings, applied at open on the connection itself:
 * journal_mode=WAL, busy_timeout=5000 ms, foreign_keys=ON. A new database
 * file is created with mode 0600 (SQLite gives the -wal/-shm files the same
 * mode); symlinks are refused.
 *
 * Concurrency: a struct store is ONE SQLite connection guarded by a pthread
 * mutex that every store_* call holds for its whole duration, so the daemon
 * shares one handle between all its threads and each call (including the
 * multi-statement reservation) is atomic with respect to the others. The
 * connection is opened SQLITE_OPEN_NOMUTEX because the store mutex already
 * serialises it. Against other processes (a second handle, `banger doctor`
 * opening read-only) writes use BEGIN IMMEDIATE plus the busy timeout, so
 * reservations from separate handles are also safe.
 *
 * Errors: every function returns 0 or a negative errno and, on failure,
 * writes a human-readable reason into errbuf (may be NULL). Common codes:
 * -ENOENT not found, -EEXIST name taken, -ENOSPC no free IP, -ENOTUNIQ
 * ambiguous id prefix, -EBUSY in use / running / database locked, -EINVAL
 * bad input, -ENOTSUP schema newer than the code, -EROFS write on a
 * read-only handle, -EIO other SQLite failures.
 *
 * Ownership: records returned through `out` parameters belong to the caller
 * and are freed with the matching *_free function (which accepts NULL and
 * returns NULL). Outputs are set only on success.
 */
#ifndef BANGER_STORE_H
#define BANGER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/cidr.h"
#include "store/names.h"

#define STORE_SCHEMA_VERSION 2
#define STORE_BUSY_TIMEOUT_MS 5000
/* 12 lowercase hex chars plus NUL. */
#define STORE_ID_LEN 12
/* Shortest id prefix accepted by the *_find lookups. */
#define STORE_ID_PREFIX_MIN 4
/* First vsock context id a VM may use (0-2 are reserved). */
#define STORE_CID_MIN 3

struct store;

enum vm_state {
    VM_STATE_CREATED,
    VM_STATE_RUNNING,
    VM_STATE_STOPPED,
    VM_STATE_ERROR,
};

/* "created", "running", ... ; NULL for an out-of-range value. */
const char *vm_state_name(enum vm_state state);
/* Returns 0 or -EINVAL. */
int vm_state_parse(const char *text, enum vm_state *out);

struct image_record {
    char *id;
    char *name;
    char *rootfs_path;
    char *kernel_path;
    char *initrd_path;   /* NULL when the image has none */
    char *manifest;      /* JSON text or NULL */
    int64_t created_at;
    unsigned vm_count;   /* VMs referencing this image when it was read */
};

struct image_list {
    struct image_record **items;
    size_t count;
};

struct image_request {
    const char *name;          /* required, image_name_valid() */
    const char *rootfs_path;   /* required, absolute */
    const char *kernel_path;   /* required, absolute */
    const char *initrd_path;   /* NULL or absolute */
    const char *manifest;      /* NULL or a JSON document */
};

struct vm_record {
    char *id;
    char *name;
    char *image_id;
    char *image_name;    /* joined from images, for display */
    unsigned vcpu;
    uint64_t memory_mib;
    uint64_t disk_size;    /* bytes */
    uint64_t overlay_size; /* bytes */
    bool nat;
    enum vm_state state;
    char *ip;            /* dotted quad */
    char *mac;           /* 06:00:AC:1D:00:05 */
    uint32_t cid;
    char *last_error;    /* NULL when none */
    int64_t created_at;
    int64_t updated_at;
    int64_t started_at;  /* 0 when the VM is not running */
    uint32_t owner_uid;  /* the uid that created it */
};

struct vm_list {
    struct vm_record **items;
    size_t count;
};

struct vm_request {
    const char *name;    /* NULL or "" = generate one */
    const char *image;   /* image id or name (resolved inside the reservation) */
    unsigned vcpu;       /* >= 1 */
    uint64_t memory_mib; /* >= 1 */
    uint64_t disk_size;
    uint64_t overlay_size;
    bool nat;
    uint32_t owner_uid;  /* the creating client's uid (SO_PEERCRED) */
};

struct vm_record *vm_record_free(struct vm_record *rec);
struct vm_list *vm_list_free(struct vm_list *list);
struct image_record *image_record_free(struct image_record *rec);
struct image_list *image_list_free(struct image_list *list);

/* ---- opening ------------------------------------------------------------ */

/* Open (creating if needed, mode 0600) and migrate the database at path. */
int store_open(const char *path, struct store **out, char *errbuf, size_t errlen);

/* Open an existing database read-only for diagnostics. Never creates or
 * migrates; refuses a schema newer than the code. An older schema opens
 * (check store_schema_version) but queries may fail on it. */
int store_open_readonly(const char *path, struct store **out, char *errbuf, size_t errlen);

/* Close; accepts NULL, returns NULL. */
struct store *store_close(struct store *store);

/* Highest applied migration (0 for an empty database). */
int store_schema_version(struct store *store, int *version, char *errbuf, size_t errlen);

/* ---- VMs ---------------------------------------------------------------- */

/* Reserve a VM in one IMMEDIATE transaction: check (or generate) the name,
 * resolve the image, pick the lowest free IP in net/prefix (skipping the
 * network address, the gateway net+1 and broadcast), derive the MAC from
 * it, pick the lowest free CID >= 3, generate a random id and insert the
 * row in state 'created'. */
int store_vm_reserve(struct store *store, const struct vm_request *req, uint32_t net,
                     unsigned prefix_len, struct vm_record **out, char *errbuf, size_t errlen);

int store_vm_get_by_id(struct store *store, const char *id, struct vm_record **out,
                       char *errbuf, size_t errlen);
int store_vm_get_by_name(struct store *store, const char *name, struct vm_record **out,
                         char *errbuf, size_t errlen);

/* What the CLI's VM argument means: exact id, then exact name, then a unique
 * id prefix of at least STORE_ID_PREFIX_MIN chars. Ambiguous -> -ENOTUNIQ. */
int store_vm_find(struct store *store, const char *ref, struct vm_record **out,
                  char *errbuf, size_t errlen);

/* All VMs, oldest first. */
int store_vm_list(struct store *store, struct vm_list **out, char *errbuf, size_t errlen);

/* Set the state and last_error (NULL clears it). Entering 'running' sets
 * started_at to now (kept when already running); any other state clears
 * it. */
int store_vm_set_state(struct store *store, const char *id, enum vm_state state,
                       const char *last_error, char *errbuf, size_t errlen);

/* Change vcpu and/or memory (0 = keep). Refused with -EBUSY while the VM is
 * running, checked in the same transaction. */
int store_vm_set_resources(struct store *store, const char *id, unsigned vcpu,
                           uint64_t memory_mib, char *errbuf, size_t errlen);

/* Delete the row; its name, IP, MAC and CID become free. */
int store_vm_delete(struct store *store, const char *id, char *errbuf, size_t errlen);

/* ---- images ------------------------------------------------------------- */

int store_image_insert(struct store *store, const struct image_request *req,
                       struct image_record **out, char *errbuf, size_t errlen);
int store_image_get_by_id(struct store *store, const char *id, struct image_record **out,
                          char *errbuf, size_t errlen);
int store_image_get_by_name(struct store *store, const char *name, struct image_record **out,
                            char *errbuf, size_t errlen);
/* Exact id, then exact name, then a unique id prefix (like store_vm_find). */
int store_image_find(struct store *store, const char *ref, struct image_record **out,
                     char *errbuf, size_t errlen);
/* All images, oldest first. */
int store_image_list(struct store *store, struct image_list **out, char *errbuf,
                     size_t errlen);
/* Number of VMs that use the image. */
int store_image_vm_count(struct store *store, const char *id, unsigned *count, char *errbuf,
                         size_t errlen);
/* Delete by id; -EBUSY naming the VMs when any still use it. */
int store_image_delete(struct store *store, const char *id, char *errbuf, size_t errlen);

#endif
