/* What the agent reports: health and listening ports, written as one JSON
 * reply line (without the newline). proc_root is "/proc" except in tests. */
#ifndef BANGER_AGENT_INFO_H
#define BANGER_AGENT_INFO_H

#include "agent-json.h"

#define AGENT_NAME "banger-vsock-agent"

int agent_health_reply(struct agent_buf *out, const char *proc_root);
int agent_ports_reply(struct agent_buf *out, const char *proc_root);
/* {"v":1,"ok":false,"error":"<msg>"} plus "op" when op is not NULL. */
int agent_error_reply(struct agent_buf *out, const char *op, const char *msg);

#endif /* BANGER_AGENT_INFO_H */
