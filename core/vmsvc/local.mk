libbangercore_la_SOURCES += vmsvc/vmsvc.c vmsvc/vmsvc.h vmsvc/vmsvc_internal.h vmsvc/vmsvc_locks.c vmsvc/vmsvc_watch.c
