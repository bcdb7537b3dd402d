# SPDX-License-Identifier: MIT
# mmapd — one plain Makefile.
#
#   make            build mmapd, mmapctl, libmmapd (.so and .a)
#   make run        build, then run mmapd in the foreground on ./run/
#   make check      build and run every test suite (SAN=1: under ASan+UBSan)
#   make bench      build and run the benchmark (ratios against same-run baselines)
#   make install    PREFIX=/usr/local DESTDIR=  (make uninstall removes the same files)
#   make deb        build the Debian packages (debian/) into build-deb/
#
# Quiet unless V=1. Missing Debian packages: run, check and bench (and deb, soak, fuzz) install
# them with mk/deps.sh when run as root; plain make and make install never install anything,
# and print the apt-get line to run instead.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DOCDIR     ?= $(PREFIX)/share/doc/mmapd
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
# zsh's own default; Debian's zsh also reads $(PREFIX)/share/zsh/vendor-completions.
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions

VERSION    := 0.1.0
SOVERSION  := 0

CC      ?= cc
OBJCOPY ?= objcopy
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes
# Warnings are errors under CI (which sets CI=true in the environment) or with WERROR=1; a
# local make only warns, so a newer compiler's new warning does not stop anyone's build.
ifeq ($(CI),true)
WERROR  ?= 1
endif
ifeq ($(WERROR),1)
WARN    += -Werror
endif
# Include paths are per target: tests and tools see every folder (INCLUDES); an object of a
# layer sees its own folder's headers and those of the layers below it (shared/ the kit,
# proto/ the wire above it, daemon/ above both and apart from client/; mk/layercheck.sh holds
# the layers within daemon/ and within client/); the toolbox (client/toolbox/), mmapctl and
# the examples see only the public headers, staged in $(B)/include as make install lays them
# out (PUBLIC_INCLUDES), so that an include across layers the wrong way, or of an internal
# header, does not compile.
INCLUDES   = -Iclient -Iclient/toolbox/ring -Iclient/toolbox/persist -Iproto -Ishared -Idaemon
PUBLIC_INCLUDES = -I$(B)/include
CPPFLAGS_ALL = -std=c11 -D_GNU_SOURCE -DMMAPD_VERSION_STRING='"$(VERSION)"' $(INCLUDES) $(CPPFLAGS)

# SAN=1 builds everything (objects, tests, binaries) with AddressSanitizer + UBSan into build-san/.
# BUILD=dir puts objects and binaries elsewhere (so two builds can run side by side).
ifeq ($(SAN),1)
B        := $(or $(BUILD),build-san)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B        := $(or $(BUILD),build)
SANFLAGS :=
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Packages are checked before anything needs pkg-config (and only for targets that build), by
# set (mk/deps.sh): the test framework for tests, the packaging tools for make deb and for make
# check (mk/debcheck.sh). The developer's goals install what is missing when run as root; plain
# make and make install never do (packagers run them in chroots): they fail with the apt-get line.
NODEPS_GOALS := clean uninstall help
DEPS_INSTALL_GOALS := run check bench soak fuzz fuzz-replay deb
GOALS := $(or $(MAKECMDGOALS),all)
DEPS_SETS := build $(if $(filter check soak $(B)/tests/%,$(GOALS)),check) $(if $(filter check deb,$(GOALS)),deb)
ifeq ($(filter-out $(NODEPS_GOALS),$(GOALS)),)
else
DEPS_OK := $(shell sh mk/deps.sh $(if $(filter $(DEPS_INSTALL_GOALS),$(GOALS)),--install) $(DEPS_SETS) >&2 && echo yes)
ifneq ($(DEPS_OK),yes)
$(error missing build dependencies; see the message above)
endif
endif

UV_CFLAGS    := $(shell pkg-config --cflags libuv 2>/dev/null)
UV_LIBS      := $(shell pkg-config --libs libuv 2>/dev/null)
CJSON_CFLAGS := $(shell pkg-config --cflags libcjson 2>/dev/null)
CJSON_LIBS   := $(shell pkg-config --libs libcjson 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

ALL_CFLAGS = $(CPPFLAGS_ALL) $(WARN) $(CFLAGS) $(SANFLAGS) $(CJSON_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

PROTO_SRC  := $(wildcard proto/*.c) $(wildcard shared/*.c)
DAEMON_SRC := $(wildcard daemon/*.c)
# The toolbox (rings, persistent structures) is part of libmmapd but built only on its public
# API: client/toolbox/{ring,persist}/, with the kit both share in client/toolbox/.
TOOLBOX_SRC := $(wildcard client/toolbox/*.c client/toolbox/*/*.c)
LIB_SRC    := $(wildcard client/*.c) $(TOOLBOX_SRC)
CTL_SRC    := client/mmapctl/mmapctl.c
# The installed headers: the core API and the toolbox's two.
PUBLIC_HDRS := client/mmapd.h client/toolbox/ring/mmapd-ring.h client/toolbox/persist/mmapd-persist.h
PUBLIC_STAGED := $(addprefix $(B)/include/,$(notdir $(PUBLIC_HDRS)))
TEST_SRC   := $(wildcard tests/check_*.c)
TESTLIB_SRC := $(filter-out tests/check_%.c tests/mmapd-testclient.c,$(wildcard tests/*.c))
# Unit suites of daemon modules (tests/unit/check_<module>.c), linked against the daemon library;
# the other .c files there are their shared helpers.
UNIT_SRC   := $(wildcard tests/unit/check_*.c)
UNITLIB_SRC := $(filter-out tests/unit/check_%.c,$(wildcard tests/unit/*.c))
BENCH_SRC  := $(wildcard bench/*.c)
EXAMPLE_SRC := $(wildcard examples/*.c)

PROTO_OBJ  := $(PROTO_SRC:%.c=$(B)/%.o)
PROTO_PIC  := $(PROTO_SRC:%.c=$(B)/pic/%.o)
# What libmmapd takes of proto/ and shared/: not fdcount.c, which only the daemon and the tests
# (through the internal archive) use.
LIBWIRE_PIC := $(filter-out $(B)/pic/shared/fdcount.o,$(PROTO_PIC))
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(B)/%.o)
# The daemon as a library: every object but main.o, in an internal archive (never installed)
# that mmapd, the fuzz targets' replays and the unit suites link.
DAEMON_LIB_OBJ := $(filter-out $(B)/daemon/main.o,$(DAEMON_OBJ))
LIB_OBJ    := $(LIB_SRC:%.c=$(B)/%.o)
LIB_PIC    := $(LIB_SRC:%.c=$(B)/pic/%.o)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(B)/%.o)
TESTS      := $(TEST_SRC:tests/%.c=$(B)/tests/%)
UNITLIB_OBJ := $(UNITLIB_SRC:%.c=$(B)/%.o)
UNITS      := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/unit/%)

MMAPD      := $(B)/mmapd
DAEMON_LIB := $(B)/libmmapd-daemon.a
MMAPCTL    := $(B)/mmapctl
MMAPCTL_INSTALLED := $(B)/installed/mmapctl
LIBA       := $(B)/libmmapd.a
LIBA_INTERNAL := $(B)/libmmapd-internal.a
LIBSO      := $(B)/libmmapd.so.$(VERSION)
LIBSYM     := client/libmmapd.sym
TESTCLIENT := $(B)/tests/mmapd-testclient
BENCH      := $(B)/mmapd-bench
FUZZ_REPLAY := $(B)/tests/fuzz/replay
FUZZ_REPLAY_OPS := $(B)/tests/fuzz/replay_ops
EXAMPLES   := $(EXAMPLE_SRC:examples/%.c=$(B)/examples/%)
# The Python package (python/, docs/python.md): Debian's python3, its tests' C peer, where
# make install puts it (a directory Debian's python3 searches for PREFIX).
PYTHON     ?= /usr/bin/python3
PYPEER     := $(B)/python/mmapd-pypeer
PYTHONDIR  ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(PREFIX)/lib/python$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')/dist-packages)

.PHONY: all run check bench install uninstall clean help
# Keep objects that make would otherwise treat as intermediate and delete.
.SECONDARY:
all: $(MMAPD) $(MMAPCTL) $(MMAPCTL_INSTALLED) $(LIBA) $(LIBSO)

help:
	@sed -n '1,/^$$/p' Makefile | grep -v SPDX-License-Identifier

$(B)/daemon/%.o: INCLUDES = -Idaemon -Iproto -Ishared
$(B)/client/%.o $(B)/pic/client/%.o: INCLUDES = -Iclient -Iproto -Ishared
$(B)/proto/%.o $(B)/pic/proto/%.o: INCLUDES = -Iproto -Ishared
$(B)/shared/%.o $(B)/pic/shared/%.o: INCLUDES = -Ishared

$(B)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(if $(filter daemon/%,$<),$(UV_CFLAGS)) -c -o $@ $<

$(B)/pic/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC(pic) $<")
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

$(B)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

# The public headers as they are installed, side by side, for the targets that may see
# nothing else.
$(B)/include/%.h: client/%.h
	@mkdir -p $(@D)
	$(Q)cp $< $@
$(B)/include/%.h: client/toolbox/ring/%.h
	@mkdir -p $(@D)
	$(Q)cp $< $@
$(B)/include/%.h: client/toolbox/persist/%.h
	@mkdir -p $(@D)
	$(Q)cp $< $@

TOOLBOX_OBJ := $(TOOLBOX_SRC:%.c=$(B)/%.o) $(TOOLBOX_SRC:%.c=$(B)/pic/%.o)
$(TOOLBOX_OBJ) $(B)/$(CTL_SRC:.c=.o): | $(PUBLIC_STAGED)
$(TOOLBOX_OBJ): INCLUDES = $(PUBLIC_INCLUDES) -Iclient/toolbox
$(B)/$(CTL_SRC:.c=.o): INCLUDES = $(PUBLIC_INCLUDES)

$(DAEMON_LIB): $(DAEMON_LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(MMAPD): $(B)/daemon/main.o $(DAEMON_LIB) $(PROTO_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(UV_LIBS) $(CJSON_LIBS)

# libmmapd.a is what an application links, so, like libmmapd.so, it defines no global name but
# the public mmapd_* ones: its objects (those of libmmapd.so: PIC, built with
# -fvisibility=hidden) are linked into one relocatable object, whose hidden symbols objcopy
# then makes local. The tree's own programs and tests that call internals too (proto/,
# shared/, the client's plumbing) link libmmapd-internal.a, which is never installed.
# mk/symcheck.sh (make check) runs nm over both libraries, which make install installs.
$(LIBA): $(LIB_PIC) $(LIBWIRE_PIC)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ $(B)/libmmapd.o
	$(Q)$(LD) -r -o $(B)/libmmapd.o $^
	$(Q)$(OBJCOPY) --localize-hidden $(B)/libmmapd.o
	$(Q)ar rcs $@ $(B)/libmmapd.o && rm -f $(B)/libmmapd.o

$(LIBA_INTERNAL): $(LIB_OBJ) $(PROTO_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBSO): $(LIB_PIC) $(LIBWIRE_PIC) $(LIBSYM)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -shared -Wl,-soname,libmmapd.so.$(SOVERSION) \
	  -Wl,--version-script=$(LIBSYM) -o $@ $(filter %.o,$^) $(CJSON_LIBS) -lpthread
	$(Q)ln -sf libmmapd.so.$(VERSION) $(B)/libmmapd.so.$(SOVERSION)
	$(Q)ln -sf libmmapd.so.$(VERSION) $(B)/libmmapd.so

# mmapctl calls libmmapd only through its public headers and links the public archive and
# cJSON (its --json output, and the stats JSON it reads), as any other program would;
# mk/installcheck.sh builds it against the installed library too. The tree's own mmapctl
# (make run, the tests, the README's tour) links the archive, so that it runs from build/ with
# no library path; the one make install installs links libmmapd.so, like any program of the
# system, so that a new libmmapd0 fixes it too.
$(MMAPCTL): $(B)/$(CTL_SRC:.c=.o) $(LIBA)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CJSON_LIBS) -lpthread

$(MMAPCTL_INSTALLED): $(B)/$(CTL_SRC:.c=.o) $(LIBSO)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBSO) $(CJSON_LIBS) -lpthread

$(TESTCLIENT): $(B)/tests/mmapd-testclient.o $(LIBA)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CJSON_LIBS) -lpthread

# The examples are built the way a user would build them: against the public header and
# libmmapd only (uv_loop also against libuv), seeing only the public headers.
$(B)/examples/%: examples/%.c $(LIBA) $(PUBLIC_STAGED)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(PUBLIC_INCLUDES) $(CPPFLAGS) $(WARN) $(CFLAGS) $(SANFLAGS) \
	  $(if $(filter uv_%,$*),$(UV_CFLAGS)) \
	  -o $@ $< $(LIBA) $(ALL_LDFLAGS) $(CJSON_LIBS) $(if $(filter uv_%,$*),$(UV_LIBS)) -lpthread

# The C side of the Python package's interop tests, built as the examples are.
$(PYPEER): python/tests/pypeer.c $(LIBA) $(PUBLIC_STAGED)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(PUBLIC_INCLUDES) $(CPPFLAGS) $(WARN) $(CFLAGS) $(SANFLAGS) \
	  -o $@ $< $(LIBA) $(ALL_LDFLAGS) $(CJSON_LIBS) -lpthread

$(B)/tests/check_%: $(B)/tests/check_%.o $(TESTLIB_OBJ) $(LIBA_INTERNAL)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(CJSON_LIBS) -lpthread

# Unit suites drive daemon modules in-process (libuv, the daemon's headers) and reuse the
# integration harness (tests/harness.h) for its fixtures.
$(UNITS:%=%.o) $(UNITLIB_OBJ): ALL_CFLAGS += $(UV_CFLAGS) -Itests

$(B)/tests/unit/check_%: $(B)/tests/unit/check_%.o $(UNITLIB_OBJ) $(TESTLIB_OBJ) $(DAEMON_LIB) $(LIBA_INTERNAL)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(UV_LIBS) $(CJSON_LIBS) -lpthread -lm

$(BENCH): $(BENCH_SRC:%.c=$(B)/%.o) $(LIBA_INTERNAL)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CJSON_LIBS) -lpthread -lm

# The daemon's socket and data directory for `make run` live under ./run/. It reads no config
# file (not the host's /etc/mmapd/mmapd.json): RUNFLAGS="--config FILE" gives it one.
run: $(MMAPD) $(MMAPCTL)
	@mkdir -p run
	./$(MMAPD) --foreground --no-config --socket run/mmapd.sock --data-dir run/data $(RUNFLAGS)

# $(call quiet_run,NAME,COMMAND): COMMAND's output goes to $(B)/test-logs/NAME.log; only its
# last line (the summary) is shown, or all of it when it fails.
quiet_run = @mkdir -p $(B)/test-logs && if $(2) > $(B)/test-logs/$(1).log 2>&1; then \
	tail -n 1 $(B)/test-logs/$(1).log; else cat $(B)/test-logs/$(1).log; exit 1; fi

# Every suite runs even when an earlier one fails; the summary line counts suites. Each suite's
# output and its daemons' logs stay in $(B)/test-logs, printed only when the suite fails (the
# Python tests' too, which a failure of does not stop the C suites).
check: all $(UNITS) $(TESTS) $(TESTCLIENT) $(FUZZ_REPLAY) $(FUZZ_REPLAY_OPS) $(EXAMPLES) $(LIB_OBJ) $(PYPEER)
	+@MAKE="$(MAKE)" sh mk/installcheck.sh
	+@MAKE="$(MAKE)" sh mk/depscheck.sh
	@sh mk/debcheck.sh
	@sh mk/doccheck.sh
	@sh mk/tourcheck.sh $(B)
	@sh mk/spdx.sh --check
	@sh mk/symcheck.sh $(LIBA) $(LIBSO)
	@sh mk/layercheck.sh daemon $(B)/daemon
	@sh mk/layercheck.sh client $(B)/client
	$(call quiet_run,fuzz-replay,$(FUZZ_REPLAY) tests/fuzz/corpus)
	$(call quiet_run,fuzz-replay-ops,$(FUZZ_REPLAY_OPS) tests/fuzz/corpus_ops)
	@py=0; pylog=$(B)/test-logs/python.log; \
	 if MMAPD_BIN=$(abspath $(MMAPD)) MMAPD_LIBRARY=$(abspath $(B)/libmmapd.so.$(SOVERSION)) \
	    MMAPD_TESTCLIENT=$(abspath $(TESTCLIENT)) MMAPD_PYPEER=$(abspath $(PYPEER)) \
	    SAN=$(SAN) sh python/tests/run.sh $(PYTHON) > $$pylog 2>&1; \
	 then echo "== python: $$(tail -n 1 $$pylog)"; \
	 else py=1; echo "== python: FAILED; its log, $$pylog:"; cat $$pylog; fi; \
	 MMAPD_BIN=$(abspath $(MMAPD)) MMAPCTL_BIN=$(abspath $(MMAPCTL)) \
	 MMAPD_TESTCLIENT=$(abspath $(TESTCLIENT)) \
	 MMAPD_EXAMPLES_DIR=$(abspath $(B)/examples) TEST_LOG_DIR=$(abspath $(B)/test-logs) \
	 sh mk/runtests.sh $(UNITS) $(TESTS) && [ $$py = 0 ]

# make deb: the Debian packages of debian/ (mmapd, libmmapd0, libmmapd-dev), built by
# dpkg-buildpackage in a copy of the tree (mk/deb.sh), into build-deb/. make check builds and
# checks them too (mk/debcheck.sh).
.PHONY: deb
deb:
	@sh mk/deb.sh build-deb
	@ls build-deb/*.deb

bench: $(MMAPD) $(BENCH) $(LIBSO)
	@sh mk/benchdeps.sh
	MMAPD_BIN=$(abspath $(MMAPD)) ./$(BENCH) $(BENCHFLAGS)
	MMAPD_BIN=$(abspath $(MMAPD)) MMAPD_LIBRARY=$(abspath $(B)/libmmapd.so.$(SOVERSION)) \
	  $(PYTHON) bench/python_bench.py

# make soak [SOAK_SECONDS=60] [SOAK_CLIENTS=16]: many forked libmmapd clients doing mixed
# operations (some SIGKILLed and replaced) against one mmapd for a set time; then the daemon's
# open_fds and VmRSS must be back at their starting level and locks/grants/subscriptions at 0
# (tests/soak/soak.c). Not named check_*, so make check does not run it.
SOAK_SECONDS ?= 60
SOAK_CLIENTS ?= 16
SOAK       := $(B)/tests/soak/soak

.PHONY: soak

$(SOAK): $(B)/tests/soak/soak.o $(TESTLIB_OBJ) $(LIBA_INTERNAL)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(CJSON_LIBS) -lpthread

soak: $(MMAPD) $(SOAK)
	@MMAPD_BIN=$(abspath $(MMAPD)) SOAK_SECONDS=$(SOAK_SECONDS) SOAK_CLIENTS=$(SOAK_CLIENTS) ./$(SOAK)

# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGET="proto ops"] [FUZZ_ARGS=...]: the libFuzzer targets
# (docs/fuzzing.md), each run for FUZZ_SECONDS: fuzz_proto over proto/ and shared/, fuzz_ops
# over the daemon's request handling (daemon/ops*.c and what they drive, in-process). They
# need clang with libFuzzer, which mk/fuzzdeps.sh checks (and installs as root), so they stay
# out of `make check`. A target's corpus grows in build-fuzz/corpus (proto) or
# build-fuzz/corpus_ops from run to run; a finding stops the run, fails make, and is saved as
# build-fuzz/crash-*.
# make fuzz-replay: the same checks without libFuzzer, built with $(CC), over the seed corpora
# (tests/fuzz/corpus, tests/fuzz/corpus_ops); `make check` runs them too.
FUZZ_CC      := clang
FUZZ_SECONDS ?= 60
FUZZ_TARGET  ?= proto ops
FUZZ_ARGS    ?=
FUZZ_B       := build-fuzz
comma        := ,
FUZZ_FLAGS   := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -g -O1
FUZZ_HDRS    := $(wildcard proto/*.h shared/*.h)
# fuzz_ops links the daemon library too, its objects built with clang and instrumented like
# the target (fuzzer-no-link: libFuzzer's main comes with the target's link).
FUZZ_DAEMON_LIB := $(FUZZ_B)/libmmapd-daemon.a
FUZZ_DAEMON_OBJ := $(patsubst %.c,$(FUZZ_B)/%.o,$(filter-out daemon/main.c,$(DAEMON_SRC)))
FUZZ_OBJ_FLAGS  := $(subst -fsanitize=fuzzer$(comma),-fsanitize=fuzzer-no-link$(comma),$(FUZZ_FLAGS))
# The seed corpus of target $(1), under tests/fuzz/ and (grown) under $(FUZZ_B)/.
fuzz_corpus = $(if $(filter proto,$(1)),corpus,corpus_$(1))

.PHONY: fuzz fuzz-replay

$(FUZZ_B)/fuzz_proto: tests/fuzz/fuzz_proto.c $(PROTO_SRC) $(FUZZ_HDRS)
	$(Q)FUZZ_CC=$(FUZZ_CC) sh mk/fuzzdeps.sh
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(FUZZ_CC) $(CPPFLAGS_ALL) $(WARN) $(FUZZ_FLAGS) $(CJSON_CFLAGS) -o $@ \
	  tests/fuzz/fuzz_proto.c $(PROTO_SRC) $(CJSON_LIBS) -lm

$(FUZZ_B)/daemon/%.o: daemon/%.c $(FUZZ_HDRS) $(wildcard daemon/*.h)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(FUZZ_CC) $(CPPFLAGS_ALL) $(WARN) $(FUZZ_OBJ_FLAGS) $(CJSON_CFLAGS) $(UV_CFLAGS) -c -o $@ $<

$(FUZZ_DAEMON_LIB): $(FUZZ_DAEMON_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_B)/fuzz_ops: tests/fuzz/fuzz_ops.c $(FUZZ_DAEMON_LIB) $(PROTO_SRC) $(FUZZ_HDRS) $(wildcard daemon/*.h)
	$(Q)FUZZ_CC=$(FUZZ_CC) sh mk/fuzzdeps.sh
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(FUZZ_CC) $(CPPFLAGS_ALL) $(WARN) $(FUZZ_FLAGS) $(CJSON_CFLAGS) $(UV_CFLAGS) -o $@ \
	  tests/fuzz/fuzz_ops.c $(FUZZ_DAEMON_LIB) $(PROTO_SRC) $(UV_LIBS) $(CJSON_LIBS) -lm

# One target's run: its seeds join the corpus kept in $(FUZZ_B), then libFuzzer.
define fuzz_run
	@mkdir -p $(FUZZ_B)/$(call fuzz_corpus,$(1))
	@cp tests/fuzz/$(call fuzz_corpus,$(1))/* $(FUZZ_B)/$(call fuzz_corpus,$(1))/
	$(FUZZ_B)/fuzz_$(1) -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
	  -print_final_stats=1 -dict=tests/fuzz/$(1).dict -artifact_prefix=$(FUZZ_B)/ $(FUZZ_ARGS) \
	  $(FUZZ_B)/$(call fuzz_corpus,$(1))

endef

fuzz: $(FUZZ_TARGET:%=$(FUZZ_B)/fuzz_%)
	$(foreach t,$(FUZZ_TARGET),$(call fuzz_run,$(t)))

$(FUZZ_REPLAY): $(B)/tests/fuzz/fuzz_proto.o $(B)/tests/fuzz/replay.o $(PROTO_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CJSON_LIBS) -lm

$(B)/tests/fuzz/fuzz_ops.o: ALL_CFLAGS += $(UV_CFLAGS)

$(FUZZ_REPLAY_OPS): $(B)/tests/fuzz/fuzz_ops.o $(B)/tests/fuzz/replay.o $(DAEMON_LIB) $(PROTO_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(UV_LIBS) $(CJSON_LIBS) -lm

fuzz-replay: $(FUZZ_REPLAY) $(FUZZ_REPLAY_OPS)
	$(FUZZ_REPLAY) tests/fuzz/corpus
	$(FUZZ_REPLAY_OPS) tests/fuzz/corpus_ops

# The man page of each public function is a link to libmmapd(3), made from the headers
# (mk/manlinks.sh). The installed mmapctl links libmmapd.so.0, found through the loader's
# cache: ldconfig refreshes it after an install into the running system by root, never into a
# DESTDIR (a package's staging tree).
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
	  $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(SYSUSERSDIR)
	install -m 0755 $(MMAPD) $(DESTDIR)$(SBINDIR)/mmapd
	install -m 0755 $(MMAPCTL_INSTALLED) $(DESTDIR)$(BINDIR)/mmapctl
	install -m 0644 $(LIBA) $(DESTDIR)$(LIBDIR)/libmmapd.a
	install -m 0755 $(LIBSO) $(DESTDIR)$(LIBDIR)/libmmapd.so.$(VERSION)
	ln -sf libmmapd.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmmapd.so.$(SOVERSION)
	ln -sf libmmapd.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libmmapd.so
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi
	install -m 0644 $(PUBLIC_HDRS) $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' \
	  client/mmapd.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/mmapd.pc
	install -m 0644 docs/mmapd.8 $(DESTDIR)$(MANDIR)/man8/mmapd.8
	install -m 0644 docs/mmapctl.1 $(DESTDIR)$(MANDIR)/man1/mmapctl.1
	install -m 0644 docs/libmmapd.3 $(DESTDIR)$(MANDIR)/man3/libmmapd.3
	sh mk/manlinks.sh install $(DESTDIR)$(MANDIR)/man3 $(PUBLIC_HDRS)
	sed -e 's|@SBINDIR@|$(SBINDIR)|' systemd/mmapd.service.in > $(DESTDIR)$(UNITDIR)/mmapd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mmapd.service
	install -m 0644 systemd/mmapd.sysusers $(DESTDIR)$(SYSUSERSDIR)/mmapd.conf
	install -m 0644 systemd/mmapd.socket $(DESTDIR)$(UNITDIR)/mmapd.socket
	install -d $(DESTDIR)$(TMPFILESDIR)
	install -m 0644 systemd/mmapd-tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/mmapd.conf
	sed -e 's|@BINDIR@|$(BINDIR)|' systemd/mmapd-metrics.service.in > $(DESTDIR)$(UNITDIR)/mmapd-metrics.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mmapd-metrics.service
	install -m 0644 systemd/mmapd-metrics.timer $(DESTDIR)$(UNITDIR)/mmapd-metrics.timer
	install -d $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0644 docs/examples/mmapd.json $(DESTDIR)$(DOCDIR)/examples/mmapd.json
	install -m 0644 docs/examples/mmapd-backup.sh $(DESTDIR)$(DOCDIR)/examples/mmapd-backup.sh
	install -m 0644 completions/mmapctl.bash $(DESTDIR)$(BASHCOMPDIR)/mmapctl
	install -m 0644 completions/_mmapctl $(DESTDIR)$(ZSHCOMPDIR)/_mmapctl
	install -d $(DESTDIR)$(PYTHONDIR)/mmapd
	install -m 0644 python/mmapd/*.py python/mmapd/py.typed $(DESTDIR)$(PYTHONDIR)/mmapd/

uninstall:
	sh mk/manlinks.sh uninstall $(DESTDIR)$(MANDIR)/man3 $(PUBLIC_HDRS)
	rm -f $(DESTDIR)$(SBINDIR)/mmapd $(DESTDIR)$(BINDIR)/mmapctl \
	  $(DESTDIR)$(LIBDIR)/libmmapd.a $(DESTDIR)$(LIBDIR)/libmmapd.so.$(VERSION) \
	  $(DESTDIR)$(LIBDIR)/libmmapd.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libmmapd.so \
	  $(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(PUBLIC_HDRS))) $(DESTDIR)$(PKGCONFIGDIR)/mmapd.pc \
	  $(DESTDIR)$(MANDIR)/man8/mmapd.8 $(DESTDIR)$(MANDIR)/man1/mmapctl.1 $(DESTDIR)$(MANDIR)/man3/libmmapd.3 \
	  $(DESTDIR)$(UNITDIR)/mmapd.service $(DESTDIR)$(SYSUSERSDIR)/mmapd.conf
	rm -f $(DESTDIR)$(UNITDIR)/mmapd.socket $(DESTDIR)$(TMPFILESDIR)/mmapd.conf
	rm -f $(DESTDIR)$(UNITDIR)/mmapd-metrics.service $(DESTDIR)$(UNITDIR)/mmapd-metrics.timer \
	  $(DESTDIR)$(DOCDIR)/examples/mmapd.json $(DESTDIR)$(DOCDIR)/examples/mmapd-backup.sh \
	  $(DESTDIR)$(BASHCOMPDIR)/mmapctl $(DESTDIR)$(ZSHCOMPDIR)/_mmapctl
	rm -rf $(DESTDIR)$(PYTHONDIR)/mmapd

clean:
	rm -rf build build-san build-*

# The dependency files -MMD writes next to every object compiled from a .c file (objects built
# by a new rule belong in this list too).
ALL_OBJS := $(PROTO_OBJ) $(PROTO_PIC) $(DAEMON_OBJ) $(LIB_OBJ) $(LIB_PIC) $(TESTLIB_OBJ) \
            $(TESTS:=.o) $(TESTCLIENT).o $(B)/$(CTL_SRC:.c=.o) $(BENCH_SRC:%.c=$(B)/%.o) \
            $(B)/tests/soak/soak.o $(B)/tests/fuzz/fuzz_proto.o $(B)/tests/fuzz/fuzz_ops.o \
            $(B)/tests/fuzz/replay.o $(UNITS:=.o) $(UNITLIB_OBJ)
-include $(ALL_OBJS:.o=.d)
