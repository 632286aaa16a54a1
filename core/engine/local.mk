libbangercore_la_SOURCES += engine/engine.c engine/engine.h
