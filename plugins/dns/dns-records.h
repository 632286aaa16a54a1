/* The dns module's record table: VM id -> (name, IPv4). Callbacks for
 * different VMs and the server thread use it concurrently; every function
 * takes the table's lock. */
#ifndef BANGER_DNS_RECORDS_H
#define BANGER_DNS_RECORDS_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct dns_record {
    char id[16];       /* VM id, [0-9a-f]{12} */
    char name[64];     /* one DNS label */
    struct in_addr addr;
};

struct dns_records {
    pthread_mutex_t lock;
    struct dns_record *v;
    size_t n, cap;
};

void dns_records_init(struct dns_records *t);
void dns_records_destroy(struct dns_records *t);
/* Add or replace the record of VM `id`. -EINVAL for a bad id, name or ip. */
int dns_records_set(struct dns_records *t, const char *id, const char *name, const char *ip);
/* Withdraw VM `id`'s record; true when there was one. */
bool dns_records_remove(struct dns_records *t, const char *id);
void dns_records_clear(struct dns_records *t);
size_t dns_records_count(struct dns_records *t);
/* dns_lookup_fn: ctx is the table. */
bool dns_records_lookup(void *ctx, const char *label, struct in_addr *addr);

#endif
