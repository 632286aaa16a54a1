/* The dns module's socket-free sources, compiled into the tests. Going
 * through this file keeps their objects in the tests' build dir. */
#include "dns-query.c"
#include "dns-records.c"
#include "dns-upstream.c"
