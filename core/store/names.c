#include "store/names.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int names_fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int names_fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errbuf && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* Locale-independent character classes: names are ASCII by rule. */
static bool names_is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool names_is_alnum(char c)
{
    return names_is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

int vm_name_check(const char *name, char *errbuf, size_t errlen)
{
    size_t len;

    if (!name || name[0] == '\0')
        return names_fail(errbuf, errlen, "VM name is empty");
    len = strlen(name);
    if (len > VM_NAME_MAX)
        return names_fail(errbuf, errlen, "VM name '%.*s...' is %zu characters long (at most %d)",
                          20, name, len, VM_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        if (!names_is_lower_alnum(name[i]) && name[i] != '-')
            return names_fail(errbuf, errlen,
                              "invalid VM name '%s': only lowercase letters, digits and '-' are allowed",
                              name);
    }
    if (name[0] == '-' || name[len - 1] == '-')
        return names_fail(errbuf, errlen, "invalid VM name '%s': it must not start or end with '-'",
                          name);
    return 0;
}

bool vm_name_valid(const char *name)
{
    return vm_name_check(name, NULL, 0) == 0;
}

int image_name_check(const char *name, char *errbuf, size_t errlen)
{
    size_t len;

    if (!name || name[0] == '\0')
        return names_fail(errbuf, errlen, "image name is empty");
    len = strlen(name);
    if (len > IMAGE_NAME_MAX)
        return names_fail(errbuf, errlen, "image name '%.*s...' is %zu characters long (at most %d)",
                          20, name, len, IMAGE_NAME_MAX);
    if (!names_is_alnum(name[0]))
        return names_fail(errbuf, errlen,
                          "invalid image name '%s': it must start with a letter or digit", name);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!names_is_alnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
            return names_fail(errbuf, errlen,
                              "invalid image name '%s': only letters, digits, '.', '_', ':' and '-' are allowed",
                              name);
    }
    return 0;
}

bool image_name_valid(const char *name)
{
    return image_name_check(name, NULL, 0) == 0;
}
