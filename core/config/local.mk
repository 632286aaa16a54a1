libbangercore_la_SOURCES += config/config.c config/config.h config/config_images.c
