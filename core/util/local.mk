libbangercore_la_SOURCES += util/error.c util/error.h util/log.c util/log.h \
	util/fs.c util/fs.h util/xalloc.c util/xalloc.h \
	util/caller_open.c util/caller_open.h util/term_text.c util/term_text.h

# File helpers the plugins share with the core (the reflink module's copy,
# the root-drive modules' image check),
# in a library of their own so a module links them without the whole core.
noinst_LTLIBRARIES += libbgfile.la
libbgfile_la_SOURCES = util/file_copy.c util/file_copy.h \
	util/ext4_check.c util/ext4_check.h
libbgfile_la_CPPFLAGS = -I$(top_srcdir)/core
libbgfile_la_CFLAGS = $(BANGER_CFLAGS)
libbangercore_la_LIBADD += libbgfile.la
