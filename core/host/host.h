/* The function table the daemon hands to capability modules. */
#ifndef BANGER_HOST_H
#define BANGER_HOST_H

#include <banger/capability.h>

#include "host/vm.h"

const struct banger_host_api *bg_host_api(void);

/* `banger doctor` rows. */
struct bg_doctor_row {
    enum banger_doctor_status status;
    char *check;
    char *detail;
};

struct banger_doctor {
    struct bg_doctor_row *rows;
    size_t n, cap;
    const char *source; /* name of the module adding rows, prefixed to check */
};

void bg_doctor_init(struct banger_doctor *d);
void bg_doctor_done(struct banger_doctor *d);
void bg_doctor_add(struct banger_doctor *d, enum banger_doctor_status status, const char *check,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Is `point` listed in BANGER_FAULTS (comma-separated)? */
bool bg_fault_enabled(const char *point);

#endif
