libbangercore_la_SOURCES += rpc/server.c rpc/server.h rpc/request.c
