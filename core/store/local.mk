# store module (core/store): SQLite persistence for VMs and images, plus the
# name and CIDR rules that go with the data.
libbangercore_la_SOURCES += \
	store/store.h store/store_internal.h store/store.c \
	store/store_vm.c store/store_vm_reserve.c store/store_image.c store/store_lookup.c \
	store/names.h store/names.c store/cidr.h store/cidr.c
