#include "config.h"

#include "agent-dispatch.h"
#include "agent-info.h"
#include "agent-proto.h"
#include "agent-request.h"

#include <errno.h>

int agent_dispatch(const char *line, size_t len, struct agent_buf *out, const char *proc_root)
{
    struct agent_request req;
    char why[128];
    int r, close_after = 0;

    r = agent_request_parse(line, len, &req, why, sizeof(why));
    if (r == -EINVAL) {
        agent_error_reply(out, NULL, why);
        close_after = 1;
    } else if (r < 0) {
        agent_error_reply(out, req.op_name[0] ? req.op_name : NULL, why);
    } else {
        switch (req.op) {
        case AGENT_REQ_HEALTH:
            agent_health_reply(out, proc_root);
            break;
        case AGENT_REQ_PORTS:
            agent_ports_reply(out, proc_root);
            break;
        case AGENT_REQ_PING:
            agent_buf_printf(out, "{\"v\":%d,\"ok\":true,\"op\":\"ping\"}", AGENT_PROTO_VERSION);
            break;
        }
    }
    if (out->error == -E2BIG) {
        /* The reply outgrew AGENT_MAX_REPLY: say so instead. */
        agent_buf_reset(out);
        agent_error_reply(out, req.op_name[0] ? req.op_name : NULL, "reply too large");
    }
    r = agent_buf_append(out, "\n", 1);
    if (r < 0)
        return r;
    return close_after;
}
