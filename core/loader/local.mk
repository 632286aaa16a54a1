libbangercore_la_SOURCES += loader/loader.c loader/loader.h
