# mtugate: plain GNU make. `make`, `make check`, `make demo`, `make bench`, `make fuzz`.
PREFIX ?= /usr
SYSCONFDIR ?= /etc
RUNSTATEDIR ?= /run
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=
PKG_CONFIG ?= pkg-config
CLANG ?= clang
FUZZ_SECONDS ?= 30
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.1.0)

B := build
PKGS := libmnl libnetfilter_queue openssl
CFLAGS ?= -O2 -g
WERROR ?= -Werror
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -MMD -MP -pthread
CPPFLAGS += -I. -DMTUGATE_VERSION='"$(VERSION)"' -DSYSCONFDIR='"$(SYSCONFDIR)"' \
	-DRUNSTATEDIR='"$(RUNSTATEDIR)"'
# Debian 12's iniparser ships no .pc file: headers and library by hand.
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) -I/usr/include/iniparser
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -liniparser
LDLIBS += $(PKG_LIBS) -pthread

ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
B := build-san
endif

ifneq ($(V),1)
Q := @
E = printf '  %-6s %s\n' $(1) $(2);
else
E =
endif

PROGS := mtugated mtugatectl
LIB_SRC := $(wildcard clamp/*.c policy/*.c conf/*.c proxy/*.c) \
	$(filter-out daemon/main.c daemon/mtugatectl.c,$(wildcard daemon/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(B)/tools/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
# Fuzzers link only the pure code (libmnl for its netlink walk): no sockets opened.
FUZZ_LIB_SRC := $(wildcard clamp/*.c policy/*.c conf/*.c proxy/*.c) daemon/stats.c daemon/control.c daemon/nfqproc.c daemon/strbuf.c daemon/loop.c daemon/log.c
FUZZ_LIB_SRC := $(filter-out clamp/nfq.c clamp/rawsend.c proxy/tls.c proxy/conn.c proxy/listen.c proxy/proxy.c,$(FUZZ_LIB_SRC))

.PHONY: all check check-run deps demo bench bench-run fuzz fuzz-build install clean headers tests
all: $(B)/mtugated $(B)/mtugatectl

$(B)/%.o: %.c
	$(Q)$(call E,CC,$<) mkdir -p $(dir $@) && $(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libmtugate.a: $(LIB_OBJ)
	$(Q)$(call E,AR,$@) rm -f $@ && $(AR) rcs $@ $^

$(B)/mtugated: $(B)/daemon/main.o $(B)/libmtugate.a
	$(Q)$(call E,LD,$@) $(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/mtugatectl: $(B)/daemon/mtugatectl.o $(B)/libmtugate.a
	$(Q)$(call E,LD,$@) $(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(B)/libmtugate.a
	$(Q)$(call E,LD,$@) mkdir -p $(dir $@) && $(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bench/%: $(B)/tests/bench/%.o $(B)/libmtugate.a
	$(Q)$(call E,LD,$@) mkdir -p $(dir $@) && $(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tools/%: $(B)/tests/tools/%.o $(B)/libmtugate.a
	$(Q)$(call E,LD,$@) mkdir -p $(dir $@) && $(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tests: all $(UNIT_BIN) $(BENCH_BIN) $(TOOL_BIN)

# Every header compiles on its own (it includes or declares what it uses).
headers:
	$(Q)for h in $$(ls */*.h | grep -v '^tests/'); do \
		printf '#include "%s"\n' $$h | $(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(filter-out -MMD -MP,$(CFLAGS)) -fsyntax-only -x c - \
			|| { echo "header $$h does not compile alone"; exit 1; }; done

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC)
	$(Q)$(call E,FUZZ,$@) mkdir -p $(dir $@) && $(CLANG) -std=c11 -D_GNU_SOURCE -g -O1 -I. \
		-I/usr/include/iniparser -fsanitize=fuzzer,address,undefined -o $@ $^ -lmnl -liniparser -pthread

fuzz-build: $(FUZZ_BIN)

# `make check` and `make demo` install what they need first, then re-run make so
# pkg-config flags are read after the -dev packages exist.
DEPS := make build-essential gcc libc6-dev pkg-config libmnl-dev libnetfilter-queue-dev libssl-dev \
	libiniparser-dev clang libclang-rt-14-dev iproute2 iptables ipset nftables ocserv openconnect \
	openssl gnutls-bin socat iperf3 tcpdump iputils-ping procps curl python3 valgrind gdb \
	conntrack kmod ethtool dpkg-dev debhelper lintian fakeroot systemd \
	prometheus prometheus-node-exporter keepalived conntrackd debootstrap systemd-container
deps:
	$(Q)missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null || exit 1; \
	else echo "deps: all installed"; fi

check: deps
	$(Q)$(MAKE) --no-print-directory check-run

check-run: tests headers fuzz-build
	$(Q)B=$(B) tests/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)B=$(B) tests/netns/demo.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)B=$(B) tests/bench/run.sh

fuzz: fuzz-build
	$(Q)for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p tests/fuzz/corpus/$$n; \
		echo "== $$n ($(FUZZ_SECONDS)s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 tests/fuzz/corpus/$$n 2>&1 \
			| grep -E 'Done [0-9]+ runs|ERROR|SUMMARY' || exit 1; done

install: all
	install -D -m 0755 $(B)/mtugated $(DESTDIR)$(PREFIX)/sbin/mtugated
	install -D -m 0755 $(B)/mtugatectl $(DESTDIR)$(PREFIX)/sbin/mtugatectl
	install -D -m 0644 conf/mtugate.conf $(DESTDIR)$(SYSCONFDIR)/mtugate/mtugate.conf
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/mtugate/groups.d
	# groups.d stays empty (nothing in force until the administrator copies a
	# group in); the two cases of README.md are examples.
	for d in conf/examples/*/ conf/examples/*/groups.d/; do \
		install -d -m 0755 $(DESTDIR)$(PREFIX)/share/doc/mtugate/examples/$${d#conf/examples/}; \
		for f in $$d*.conf; do install -m 0644 $$f $(DESTDIR)$(PREFIX)/share/doc/mtugate/examples/$${d#conf/examples/}; done; \
	done
	for m in $$(ls man/*.[0-9] 2>/dev/null); do s=$${m##*.}; \
		install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/$$(basename $$m); done

clean:
	rm -rf build build-san

-include $(shell find $(B) -name '*.d' 2>/dev/null)
