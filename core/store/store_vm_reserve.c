/* VM reservation: one IMMEDIATE transaction that picks the name, IP, MAC,
 * CID and id and inserts the row. */
#include "store/store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Short, friendly words; every combination is a valid DNS label. */
static const char *const store_vm_adjectives[] = {
    "amber", "bold", "brisk", "calm", "clever", "crisp", "eager", "fancy",
    "gentle", "happy", "keen", "lively", "lucky", "mellow", "nimble", "proud",
    "quiet", "rapid", "shiny", "steady", "sunny", "swift", "tidy", "witty",
};
static const char *const store_vm_nouns[] = {
    "badger", "beaver", "condor", "falcon", "ferret", "gecko", "heron", "ibis",
    "koala", "lemur", "lynx", "marten", "otter", "panda", "puffin", "quokka",
    "raven", "robin", "salmon", "tapir", "toucan", "walrus", "wombat", "yak",
};

#define STORE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Generate an unused adjective-noun name; after a few collisions add a
 * four-digit suffix so a crowded host still finds one quickly. */
static int store_vm_generate_name(struct store *store, char *name, size_t len, char *errbuf,
                                  size_t errlen)
{
    for (int attempt = 0; attempt < 64; attempt++) {
        uint32_t rnd[3];
        int r;

        r = store_random_bytes(rnd, sizeof(rnd), errbuf, errlen);
        if (r < 0)
            return r;
        if (attempt < 8)
            snprintf(name, len, "%s-%s",
                     store_vm_adjectives[rnd[0] % STORE_ARRAY_LEN(store_vm_adjectives)],
                     store_vm_nouns[rnd[1] % STORE_ARRAY_LEN(store_vm_nouns)]);
        else
            snprintf(name, len, "%s-%s-%04u",
                     store_vm_adjectives[rnd[0] % STORE_ARRAY_LEN(store_vm_adjectives)],
                     store_vm_nouns[rnd[1] % STORE_ARRAY_LEN(store_vm_nouns)],
                     (unsigned)(rnd[2] % 10000));
        r = store_vm_exists(store, "SELECT 1 FROM vms WHERE name = ?1", name, errbuf, errlen);
        if (r < 0)
            return r;
        if (r == 0)
            return 0;
    }
    return store_fail(errbuf, errlen, -EEXIST, "could not generate a free VM name; pass --name");
}

static int store_u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* Collect the column-0 values of sql as uint32, sorted. IP columns are
 * parsed (rows outside net/mask are dropped); integer columns are taken
 * as they are. */
static int store_vm_collect(struct store *store, const char *sql, bool as_ip, uint32_t net,
                            uint32_t mask, uint32_t **out, size_t *count, char *errbuf,
                            size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    uint32_t *values = NULL;
    size_t n = 0, cap = 0;
    int rc, r;

    r = store_prepare(store, sql, &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        uint32_t value;

        if (as_ip) {
            const char *text = (const char *)sqlite3_column_text(stmt, 0);

            /* An address outside the current network (e.g. the CIDR was
             * changed in the config) cannot collide with a new one. */
            if (ip4_parse(text, &value) < 0 || (value & mask) != net)
                continue;
        } else {
            value = (uint32_t)sqlite3_column_int64(stmt, 0);
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            uint32_t *grown = realloc(values, ncap * sizeof(*values));

            if (!grown) {
                r = store_fail(errbuf, errlen, -ENOMEM, "out of memory");
                goto cleanup;
            }
            values = grown;
            cap = ncap;
        }
        values[n++] = value;
    }
    if (rc != SQLITE_DONE) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot read allocated addresses");
        goto cleanup;
    }
    if (n > 0)
        qsort(values, n, sizeof(*values), store_u32_cmp);
    *out = values;
    *count = n;
    values = NULL;
    r = 0;
cleanup:
    free(values);
    sqlite3_finalize(stmt);
    return r;
}

/* Lowest value in [first, last] not present in the sorted array used.
 * Returns false when every value is taken. */
static bool store_lowest_free(const uint32_t *used, size_t n, uint64_t first, uint64_t last,
                              uint64_t *out)
{
    uint64_t candidate = first;

    for (size_t i = 0; i < n && candidate <= last; i++) {
        if (used[i] < candidate)
            continue;
        if (used[i] > candidate)
            break;
        candidate++;
    }
    if (candidate > last)
        return false;
    *out = candidate;
    return true;
}

static int store_vm_pick_ip(struct store *store, uint32_t net, unsigned prefix, uint32_t *ip,
                            char *errbuf, size_t errlen)
{
    uint32_t mask = cidr_mask(prefix);
    uint32_t *used = NULL;
    uint64_t first, last, found;
    size_t n = 0;
    int r;

    r = store_vm_collect(store, "SELECT ip FROM vms", true, net, mask, &used, &n, errbuf, errlen);
    if (r < 0)
        return r;
    /* Skip the network address and the gateway; stop before broadcast. */
    first = (uint64_t)cidr_gateway(net) + 1;
    last = (uint64_t)(net | ~mask) - 1;
    if (!store_lowest_free(used, n, first, last, &found)) {
        char text[IP4_STR_MAX];

        ip4_format(net, text, sizeof(text));
        r = store_fail(errbuf, errlen, -ENOSPC, "no free IP in %s/%u", text, prefix);
    } else {
        *ip = (uint32_t)found;
    }
    free(used);
    return r;
}

static int store_vm_pick_cid(struct store *store, uint32_t *cid, char *errbuf, size_t errlen)
{
    uint32_t *used = NULL;
    uint64_t found;
    size_t n = 0;
    int r;

    r = store_vm_collect(store, "SELECT cid FROM vms", false, 0, 0, &used, &n, errbuf, errlen);
    if (r < 0)
        return r;
    if (!store_lowest_free(used, n, STORE_CID_MIN, UINT32_MAX - 1, &found))
        r = store_fail(errbuf, errlen, -ENOSPC, "no free vsock CID");
    else
        *cid = (uint32_t)found;
    free(used);
    return r;
}

/* The image a request names: exact id, else exact name. */
static int store_vm_resolve_image(struct store *store, const char *ref, char id[STORE_ID_LEN + 1],
                                  char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int rc, r;

    r = store_prepare(store,
                      "SELECT id FROM images WHERE id = ?1 UNION ALL "
                      "SELECT id FROM images WHERE name = ?1 LIMIT 1",
                      &stmt, errbuf, errlen);
    if (r < 0)
        return r;
    sqlite3_bind_text(stmt, 1, ref, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        snprintf(id, STORE_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(stmt, 0));
        r = 0;
    } else if (rc == SQLITE_DONE) {
        r = store_fail(errbuf, errlen, -ENOENT, "image '%s' not found", ref);
    } else {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot look up image");
    }
    sqlite3_finalize(stmt);
    return r;
}

static int store_vm_validate_request(const struct vm_request *req, uint32_t net, unsigned prefix,
                                     char *errbuf, size_t errlen)
{
    if (!req)
        return store_fail(errbuf, errlen, -EINVAL, "no VM request");
    if (req->name && req->name[0] != '\0') {
        int r = vm_name_check(req->name, errbuf, errlen);

        if (r < 0)
            return r;
    }
    if (!req->image || req->image[0] == '\0')
        return store_fail(errbuf, errlen, -EINVAL, "no image given for the VM");
    if (req->vcpu < 1)
        return store_fail(errbuf, errlen, -EINVAL, "a VM needs at least 1 vCPU");
    if (req->memory_mib < 1)
        return store_fail(errbuf, errlen, -EINVAL, "a VM needs some memory");
    if (req->owner_uid == UINT32_MAX)
        return store_fail(errbuf, errlen, -EINVAL, "uid %u cannot own a VM", req->owner_uid);
    if (req->memory_mib > INT64_MAX || req->disk_size > INT64_MAX || req->overlay_size > INT64_MAX)
        return store_fail(errbuf, errlen, -EINVAL, "VM size out of range");
    return cidr_validate(net, prefix, errbuf, errlen);
}

static int store_vm_reserve_locked(struct store *store, const struct vm_request *req,
                                   uint32_t net, unsigned prefix, struct vm_record **out,
                                   char *errbuf, size_t errlen)
{
    char name[VM_NAME_MAX + 1];
    char image_id[STORE_ID_LEN + 1];
    char id[STORE_ID_LEN + 1];
    char ip_text[IP4_STR_MAX];
    char mac_text[MAC_STR_MAX];
    sqlite3_stmt *stmt = NULL;
    struct vm_record *rec = NULL;
    bool in_tx = false;
    uint32_t ip = 0, cid = 0;
    int64_t now;
    int rc, r;

    r = store_begin(store, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    in_tx = true;

    r = store_vm_resolve_image(store, req->image, image_id, errbuf, errlen);
    if (r < 0)
        goto cleanup;

    if (req->name && req->name[0] != '\0') {
        snprintf(name, sizeof(name), "%s", req->name);
        r = store_vm_exists(store, "SELECT 1 FROM vms WHERE name = ?1", name, errbuf, errlen);
        if (r < 0)
            goto cleanup;
        if (r > 0) {
            r = store_fail(errbuf, errlen, -EEXIST, "VM name '%s' already exists", name);
            goto cleanup;
        }
    } else {
        r = store_vm_generate_name(store, name, sizeof(name), errbuf, errlen);
        if (r < 0)
            goto cleanup;
    }

    r = store_vm_pick_ip(store, net, prefix, &ip, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    ip4_format(ip, ip_text, sizeof(ip_text));
    mac_from_ip4(ip, mac_text, sizeof(mac_text));
    r = store_vm_pick_cid(store, &cid, errbuf, errlen);
    if (r < 0)
        goto cleanup;

    /* 48 random bits make a clash unlikely, but check rather than hope. */
    for (int attempt = 0;; attempt++) {
        r = store_random_id(id, errbuf, errlen);
        if (r < 0)
            goto cleanup;
        r = store_vm_exists(store, "SELECT 1 FROM vms WHERE id = ?1", id, errbuf, errlen);
        if (r < 0)
            goto cleanup;
        if (r == 0)
            break;
        if (attempt >= 8) {
            r = store_fail(errbuf, errlen, -EEXIST, "could not generate a unique VM id");
            goto cleanup;
        }
    }

    r = store_prepare(store,
                      "INSERT INTO vms (id, name, image_id, vcpu, memory_mib, disk_size,"
                      " overlay_size, nat, state, ip, mac, cid, created_at, updated_at, owner_uid)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'created', ?9, ?10, ?11, ?12, ?12,"
                      " ?13)",
                      &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    now = store_now();
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, image_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, req->vcpu);
    sqlite3_bind_int64(stmt, 5, (sqlite3_int64)req->memory_mib);
    sqlite3_bind_int64(stmt, 6, (sqlite3_int64)req->disk_size);
    sqlite3_bind_int64(stmt, 7, (sqlite3_int64)req->overlay_size);
    sqlite3_bind_int(stmt, 8, req->nat ? 1 : 0);
    sqlite3_bind_text(stmt, 9, ip_text, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 10, mac_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 11, cid);
    sqlite3_bind_int64(stmt, 12, now);
    sqlite3_bind_int64(stmt, 13, req->owner_uid);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot insert VM");
        goto cleanup;
    }

    r = store_lookup_inserted(store, &store_vm_table, id, &rec, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    r = store_commit(store, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    in_tx = false;
    *out = rec;
    rec = NULL;
cleanup:
    sqlite3_finalize(stmt);
    if (in_tx)
        store_rollback(store);
    vm_record_free(rec);
    return r;
}

int store_vm_reserve(struct store *store, const struct vm_request *req, uint32_t net,
                     unsigned prefix_len, struct vm_record **out, char *errbuf, size_t errlen)
{
    int r;

    r = store_vm_validate_request(req, net, prefix_len, errbuf, errlen);
    if (r < 0)
        return r;
    pthread_mutex_lock(&store->lock);
    r = store_check_writable(store, errbuf, errlen);
    if (r == 0)
        r = store_vm_reserve_locked(store, req, net, prefix_len, out, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    return r;
}
