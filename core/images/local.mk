libbangercore_la_SOURCES += images/images.c images/images.h
