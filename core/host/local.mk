libbangercore_la_SOURCES += host/host.c host/host.h host/vm.c host/vm.h
