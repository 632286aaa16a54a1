# The guest agent end to end: the real bangerd with the vsock capability,
# the double relaying hybrid vsock to the real agent on a Unix socket, and
# the real CLI. TESTS = $(check_PROGRAMS) picks the program up.
check_PROGRAMS += test_e2e_agent
test_e2e_agent_SOURCES = test_e2e_agent.c e2e.c e2e.h
test_e2e_agent_CPPFLAGS = $(AM_CPPFLAGS) \
	-DAGENT_BIN='"$(abs_top_builddir)/agent/banger-vsock-agent"'
