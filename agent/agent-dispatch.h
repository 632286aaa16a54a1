/* One request line in, one reply line out. */
#ifndef BANGER_AGENT_DISPATCH_H
#define BANGER_AGENT_DISPATCH_H

#include <stddef.h>

#include "agent-json.h"

/* Answer the request in `line` (len bytes, newline excluded) by appending a
 * reply line, newline included, to `out`. Returns 0 to keep the connection
 * open, 1 when the input was malformed and the connection should be closed
 * once the reply is written, or a negative errno when no reply could be
 * built (close at once). */
int agent_dispatch(const char *line, size_t len, struct agent_buf *out, const char *proc_root);

#endif /* BANGER_AGENT_DISPATCH_H */
