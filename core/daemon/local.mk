libbangercore_la_SOURCES += daemon/check.c daemon/check.h daemon/daemon.c daemon/daemon.h \
	daemon/methods.c daemon/methods.h daemon/doctor.c daemon/methods_agent.c daemon/methods_guest.c \
	daemon/methods_image_ext.c daemon/methods_params.c
libbangercore_la_SOURCES += daemon/agent_client.c daemon/agent_client.h \
	$(top_srcdir)/agent/hybrid-vsock.c $(top_srcdir)/agent/hybrid-vsock.h

sbin_PROGRAMS = bangerd
bangerd_SOURCES = daemon/bangerd.c
bangerd_CPPFLAGS = $(libbangercore_la_CPPFLAGS)
bangerd_CFLAGS = $(libbangercore_la_CFLAGS)
bangerd_LDFLAGS = $(BANGER_LDFLAGS)
bangerd_LDADD = libbangercore.la
