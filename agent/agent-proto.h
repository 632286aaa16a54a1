/* Wire constants of the banger guest agent protocol (docs/agent-protocol.md).
 * Shared by the agent (guest side) and the vsock capability (host side). */
#ifndef BANGER_AGENT_PROTO_H
#define BANGER_AGENT_PROTO_H

/* Protocol version carried as "v" in every request and reply. */
#define AGENT_PROTO_VERSION 1

/* vsock port the agent listens on unless told otherwise. */
#define AGENT_DEFAULT_PORT 10789u

/* Longest request line, newline excluded. Longer input closes the connection. */
#define AGENT_MAX_REQUEST 4096u

/* Longest reply line the host side accepts for a health reply, newline
 * excluded. Health replies are a few hundred bytes. */
#define AGENT_MAX_HEALTH_REPLY 8192u

/* Upper bound of any reply line the agent writes (ports can be long). */
#define AGENT_MAX_REPLY (1024u * 1024u)

/* Request operations. */
#define AGENT_OP_HEALTH "health"
#define AGENT_OP_PORTS "ports"
#define AGENT_OP_PING "ping"

/* Firecracker hybrid vsock handshake (host side): "CONNECT <port>\n" is
 * answered by "OK <host port>\n". */
#define AGENT_HYBRID_CONNECT "CONNECT"
#define AGENT_HYBRID_OK "OK"
/* Firecracker reads at most this many bytes of the CONNECT line. */
#define AGENT_HYBRID_MAX_LINE 32u

#endif /* BANGER_AGENT_PROTO_H */
