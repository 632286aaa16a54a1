/* The far end of a hybrid-vsock connection, for the fuzz targets that read
 * what a guest (or Firecracker) sends: socket() and connect() are wrapped at
 * link time (-Wl,--wrap=socket -Wl,--wrap=connect), so the code under test
 * gets one end of a socketpair whose other end has already written the
 * fuzzer's bytes and shut down its writing side. The code reads them from a
 * real socket, with its real deadlines, and never waits. */
#ifndef BANGER_FUZZ_PEER_H
#define BANGER_FUZZ_PEER_H

#include <stddef.h>
#include <stdint.h>

/* Queue data[0..size) for the next socket(); 0, or -1 when the pair cannot
 * be made (the input is then skipped). Bytes beyond the socket buffer are
 * dropped (the targets run with -max_len well below it). */
int fuzz_peer_prepare(const uint8_t *data, size_t size);
/* Close the peer's end, and ours when the code under test never took it. */
void fuzz_peer_done(void);

#endif
