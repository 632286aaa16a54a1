# the VM's work disk, a core step around the launch (core/workdisk)
libbangercore_la_SOURCES += workdisk/workdisk.h workdisk/workdisk.c
