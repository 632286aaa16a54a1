libbangercore_la_SOURCES += runner/runner.c runner/runner.h
