/* Name rules shared by the daemon and the CLI. No dependencies beyond libc,
 * so the CLI can compile names.c on its own. */
#ifndef BANGER_STORE_NAMES_H
#define BANGER_STORE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define VM_NAME_MAX 63
#define IMAGE_NAME_MAX 128

/* A VM name is a DNS label: 1-63 chars of [a-z0-9-], no leading or trailing
 * '-'. It becomes <name>.vm in DNS. */
bool vm_name_valid(const char *name);

/* Like vm_name_valid, but says what is wrong: returns 0 or -EINVAL with the
 * reason in errbuf (may be NULL). */
int vm_name_check(const char *name, char *errbuf, size_t errlen);

/* An image name: 1-128 chars of [A-Za-z0-9._:-], starting with a letter or
 * digit (so it can never look like an option or a path). */
bool image_name_valid(const char *name);
int image_name_check(const char *name, char *errbuf, size_t errlen);

#endif
