# Firecracker driver (core/fc): spawn, API configuration, stop/kill, rediscovery.
libbangercore_la_SOURCES += fc/fc.h fc/fc_api.c fc/fc_console.c fc/fc_driver.c fc/fc_jail.c \
	fc/fc_proc.c fc/fc_spawn.c fc/fc_console_ring.c fc/fc_console_log.c
