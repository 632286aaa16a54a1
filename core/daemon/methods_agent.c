#include "config.h"

#include "daemon/daemon.h"

int bangerd_handle_agent(struct bangerd *d, struct rpc_call *call)
{
    (void)d;
    (void)call;
    return BANGERD_NOT_MINE;
}
