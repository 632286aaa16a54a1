/* The running daemon: everything a request handler needs. */
#ifndef BANGER_DAEMON_H
#define BANGER_DAEMON_H

#include <time.h>

#include "config/config.h"
#include "fc/fc.h"
#include "loader/loader.h"
#include "rpc/server.h"
#include "store/store.h"
#include "vmsvc/vmsvc.h"

struct bangerd {
    const struct bg_config *cfg;
    struct store *store;
    struct bg_plugins *plugins;
    struct fc_driver fc;
    struct vmsvc *vms;
    struct rpc_server *rpc;
    char *socket_path;
    char *images_dir;
    time_t started;
};

/* The RPC handler: dispatches call->method. */
int bangerd_handle(void *ctx, struct rpc_call *call);

/* The image object of every image.* result (docs/rpc-protocol.md). */
cJSON *bangerd_json_image(const struct image_record *r);

/* Method families in their own files; each returns BANGERD_NOT_MINE when
 * call->method is not one of its methods. */
#define BANGERD_NOT_MINE 1
int bangerd_handle_agent(struct bangerd *d, struct rpc_call *call);     /* methods_agent.c */
int bangerd_handle_guest(struct bangerd *d, struct rpc_call *call);     /* methods_guest.c */
int bangerd_handle_image_ext(struct bangerd *d, struct rpc_call *call); /* methods_image_ext.c */

/* `banger doctor` rows for the host, the daemon and every plugin. */
struct banger_doctor;
void bangerd_doctor(struct bangerd *d, struct banger_doctor *report);
/* The architecture row for a uname(2) machine string ("x86_64" passes). */
void bangerd_doctor_arch(struct banger_doctor *report, const char *machine);

#endif
