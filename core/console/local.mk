# The console log writer (one per running VM): the VMM's stdout into a
# bounded ring of two files. Started by core/fc (fc_console_log.c).
pkglibexec_PROGRAMS = console/banger-console-log
console_banger_console_log_SOURCES = console/banger-console-log.c
console_banger_console_log_CFLAGS = $(BANGER_CFLAGS)
console_banger_console_log_LDFLAGS = $(BANGER_LDFLAGS)
