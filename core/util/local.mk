libbangercore_la_SOURCES += util/error.c util/error.h util/log.c util/log.h \
	util/fs.c util/fs.h util/xalloc.c util/xalloc.h
