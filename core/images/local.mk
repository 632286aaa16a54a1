libbangercore_la_SOURCES += images/images.c images/images.h \
	images/image_stage.c images/image_stage.h \
	images/image_guest.c images/image_guest.h images/image_import.c images/image_import.h \
	images/image_pull.c images/image_pull.h \
	images/image_bundle.c images/image_bundle.h
libbangercore_la_CFLAGS += $(CRYPTO_CFLAGS) $(LIBARCHIVE_CFLAGS) $(ZSTD_CFLAGS)
libbangercore_la_LIBADD += $(CRYPTO_LIBS) $(LIBARCHIVE_LIBS) $(ZSTD_LIBS)
# Where the guest agent and its start-up files are installed (BANGER_AGENT_PATH
# and BANGER_GUEST_DIR override them, for tests and uninstalled trees).
libbangercore_la_CPPFLAGS += -DLIBEXECDIR='"$(libexecdir)"' -DPKGDATADIR='"$(pkgdatadir)"'
libbangercore_la_SOURCES += images/image_kernel.c images/image_kernel.h \
	images/image_initrd.c images/image_initrd.h images/image_build.c images/image_build.h
