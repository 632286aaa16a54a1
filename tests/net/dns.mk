# dns module tests, included from tests/net/Makefile.am (after its own
# `check_PROGRAMS =`, `TESTS =` and `EXTRA_DIST =`, `CLEANFILES =`).
#   test_dns_query:  the pure parts (query answering, records, upstream discovery)
#   test_dns_plugin: the loaded dns.so in private network namespaces, with dig
#   fuzz-dns:        libFuzzer target for the query parser (make fuzz-dns, needs clang)

DNS_PLUGIN_DIR = $(top_srcdir)/plugins/dns
DNS_TEST_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/core -I$(DNS_PLUGIN_DIR) \
	-DBUILDDIR='"$(abs_top_builddir)"' -DDNS_CORPUS_DIR='"$(abs_srcdir)/dns-corpus"'
DNS_TEST_CFLAGS = $(BANGER_CFLAGS) $(CHECK_CFLAGS) $(LDNS_CFLAGS) $(PTHREAD_CFLAGS)

check_PROGRAMS += test_dns_query test_dns_plugin
TESTS += test_dns_query test_dns_plugin

test_dns_query_SOURCES = test_dns_query.c dns-testutil.c dns-testutil.h dns-units.c
test_dns_query_CPPFLAGS = $(DNS_TEST_CPPFLAGS)
test_dns_query_CFLAGS = $(DNS_TEST_CFLAGS)
test_dns_query_LDFLAGS = $(BANGER_LDFLAGS)
test_dns_query_LDADD = $(CHECK_LIBS) $(LDNS_LIBS) $(PTHREAD_LIBS)

# Loads $(top_builddir)/plugins/dns/.libs/dns.so: build plugins/dns first
# (the top-level SUBDIRS order does).
test_dns_plugin_SOURCES = test_dns_plugin.c dns-testutil.c dns-testutil.h
test_dns_plugin_CPPFLAGS = $(DNS_TEST_CPPFLAGS)
test_dns_plugin_CFLAGS = $(DNS_TEST_CFLAGS) $(CJSON_CFLAGS) $(LIBCONFIG_CFLAGS)
test_dns_plugin_LDFLAGS = $(BANGER_LDFLAGS)
test_dns_plugin_LDADD = $(top_builddir)/core/libbangercore.la $(CHECK_LIBS) $(LDNS_LIBS) \
	$(PTHREAD_LIBS)

EXTRA_DIST += fuzz_dns_query.c dns-corpus

# libFuzzer target: `make fuzz-dns` (FUZZ_DNS_RUNS executions, default 1000000,
# or FUZZ_SECONDS, 0: no limit; the top-level `make fuzz` sets both). New
# inputs and any crash go to fuzz-work/fuzz_dns_query/; the seeds are
# dns-corpus/.
FUZZ_DNS_RUNS = 1000000
FUZZ_SECONDS = 0
fuzz-dns: fuzz_dns_query$(EXEEXT)
	$(SHELL) $(top_srcdir)/tests/fuzz/run-fuzz.sh $(FUZZ_DNS_RUNS) $(FUZZ_SECONDS) \
		fuzz_dns_query $(srcdir)/dns-corpus 4096

fuzz_dns_query$(EXEEXT): $(srcdir)/fuzz_dns_query.c $(DNS_PLUGIN_DIR)/dns-query.c \
		$(DNS_PLUGIN_DIR)/dns-query.h
	@if test -z "$(CLANG)"; then echo "fuzz-dns: clang not found by configure" >&2; exit 1; fi
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-I$(top_builddir) -I$(DNS_PLUGIN_DIR) $(LDNS_CFLAGS) \
		-o $@ $(srcdir)/fuzz_dns_query.c $(DNS_PLUGIN_DIR)/dns-query.c $(LDNS_LIBS)

CLEANFILES += fuzz_dns_query$(EXEEXT)
clean-local:
	rm -rf fuzz-work
.PHONY: fuzz-dns
