# guest access: ssh identity, known_hosts, key injection (core/guest)
libbangercore_la_SOURCES += guest/guest.h guest/guest_ssh.c guest/guest_hosts.c \
	guest/guest_inject.c
