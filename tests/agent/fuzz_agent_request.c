/* libFuzzer target: the agent's request parser must never crash, read out
 * of bounds or return anything but 0, -EINVAL or -ENOTSUP. */
#include "agent-request.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_request req;
    char why[128];
    /* An exact-size heap copy lets ASan catch any read past the end. */
    char *buf = malloc(size ? size : 1);
    int r;

    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    r = agent_request_parse(buf, size, &req, why, sizeof(why));
    if (r != 0 && r != -EINVAL && r != -ENOTSUP)
        abort();
    if (memchr(req.op_name, '\0', sizeof(req.op_name)) == NULL ||
        memchr(why, '\0', sizeof(why)) == NULL)
        abort();
    if (r == 0 && req.op != AGENT_REQ_HEALTH && req.op != AGENT_REQ_PORTS &&
        req.op != AGENT_REQ_PING)
        abort();
    if (r == 0 && req.version != 1)
        abort();
    /* Without a reason buffer the result must be the same. */
    if (agent_request_parse(buf, size, &req, NULL, 0) != r)
        abort();
    free(buf);
    return 0;
}
