# heald: build, test, package. `make` builds build/heald; `make check` runs every test;
# `make demo` runs the local demo; `make soak` lives SOAK_MINUTES (default 15) of production life. Sources are found by wildcard: adding a module or a
# test is adding a file.

VERSION    := 0.1.0
CC         ?= gcc
PKGS       := libcurl libcrypto libcjson inih libsystemd
BUILD      := build
comma      := ,
PKG_CONFIG := pkg-config
STRIP      := strip

# Graviton: ARCH=arm64 (or aarch64, rpm's name) cross-builds everything into build/arm64 with
# Debian's aarch64-linux-gnu toolchain against the arm64 -dev packages (dpkg multiarch), with
# the same flags; tests/run-all.sh runs the results under qemu-user.
ARCH       ?=
ifneq ($(filter arm64 aarch64,$(ARCH)),)
TRIPLET    := aarch64-linux-gnu
CC         := $(TRIPLET)-gcc
STRIP      := $(TRIPLET)-strip
BUILD      := build/arm64
DEB_ARCH   := arm64
RPM_ARCH   := aarch64
PKG_CONFIG := PKG_CONFIG_LIBDIR=/usr/lib/$(TRIPLET)/pkgconfig:/usr/share/pkgconfig pkg-config
else ifneq ($(ARCH),)
$(error ARCH=$(ARCH): only arm64 (aarch64) is cross-built; leave ARCH empty for this machine)
endif

# STATIC_PKGS are linked into heald from static archives (make rpm: the libraries Amazon
# Linux 2023 does not ship under Debian's soname, packaging/README.md); STATIC_LIBDIR holds
# the ones the system has no .a for.
STATIC_PKGS   ?=
STATIC_LIBDIR ?=
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
HEALD_LIBS := $(if $(STATIC_PKGS),$(addprefix -L,$(STATIC_LIBDIR)) -Wl$(comma)-Bstatic \
              $(shell $(PKG_CONFIG) --libs-only-l $(STATIC_PKGS)) -Wl$(comma)-Bdynamic \
              $(shell $(PKG_CONFIG) --libs $(filter-out $(STATIC_PKGS),$(PKGS))),$(PKG_LIBS))

WARN       := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
              -Wmissing-prototypes -Wstrict-prototypes -Wvla
HARDEN     := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
CFLAGS     ?= -O2 -g
# The version lives in a generated header that changes only when VERSION does, so
# "make deb VERSION=x" rebuilds what reports it.
VERSION_H  := $(BUILD)/version.h
ALL_CFLAGS := -std=gnu11 $(WARN) $(HARDEN) $(CFLAGS) -Iagent $(PKG_CFLAGS) -include $(VERSION_H)
LDFLAGS    ?=
ALL_LDFLAGS := -pie -Wl,-z,relro,-z,now $(LDFLAGS)

# Sanitizer build for unit tests and corpus replay (-O1: FORTIFY needs optimisation).
SAN        := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_CFLAGS := -std=gnu11 $(WARN) -D_FORTIFY_SOURCE=2 -fstack-protector-strong -O1 -g $(SAN) \
              -Iagent $(PKG_CFLAGS) -include $(VERSION_H)

AGENT_SRCS := $(sort $(shell find agent -name '*.c' ! -name main.c))
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/obj/%.o)
SAN_OBJS   := $(AGENT_SRCS:%.c=$(BUILD)/san/%.o)
UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
REPLAY_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/replay/%)
# tests/lib: what the test programs share (temporary directories, the SigV4 suite's parser).
TESTLIB_SRCS := $(sort $(wildcard tests/lib/*.c))
TESTLIB_SAN  := $(BUILD)/libheald-test-san.a

.PHONY: all clean check unit replay fuzz demo bench soak fleet-sim deps deb rpm system-arm64 FORCE
all: $(BUILD)/heald $(BUILD)/sigv4-vector

$(VERSION_H): FORCE
	@mkdir -p $(dir $@)
	@echo '#define HEALD_VERSION "$(VERSION)"' >$@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

$(BUILD)/obj/%.o: %.c $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/san/%.o: %.c $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libheald.a: $(AGENT_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libheald-san.a: $(SAN_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(TESTLIB_SAN): $(TESTLIB_SRCS:%.c=$(BUILD)/san/%.o)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/heald: $(BUILD)/obj/agent/main.o $(BUILD)/libheald.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(HEALD_LIBS)

$(BUILD)/sigv4-vector: $(BUILD)/obj/tests/tools/sigv4_vector.o $(BUILD)/obj/tests/lib/sigv4_req.o \
                      $(BUILD)/libheald.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Unit tests: cmocka, ASan+UBSan. A test may name link seams in a first-line comment
# "/* wrap: sym1 sym2 */", turned into -Wl,--wrap=sym.
$(BUILD)/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(TESTLIB_SAN) $(BUILD)/libheald-san.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -MMD -MP -o $@ $< $(TESTLIB_SAN) $(BUILD)/libheald-san.a \
	  $(addprefix -Wl$(comma)--wrap=,$(shell sed -n '1s|^/\* wrap: \(.*\) \*/|\1|p' $<)) \
	  $(PKG_LIBS) -lcmocka

unit: $(UNIT_BINS)
replay: $(REPLAY_BINS)

# Power-loss crash test (tests/crash/): ASan+UBSan; powercut.c names its link seams like a unit test.
CRASH_SRCS := $(sort $(wildcard tests/crash/*.c))
CRASH_BIN  := $(BUILD)/crash/test_crash
$(CRASH_BIN): $(CRASH_SRCS) $(wildcard tests/crash/*.h) $(TESTLIB_SAN) $(BUILD)/libheald-san.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -o $@ $(CRASH_SRCS) $(TESTLIB_SAN) $(BUILD)/libheald-san.a \
	  $(addprefix -Wl$(comma)--wrap=,$(shell sed -n '1s|^/\* wrap: \(.*\) \*/|\1|p' tests/crash/powercut.c)) \
	  $(PKG_LIBS)

# Fuzz targets: libFuzzer with clang (make fuzz); the same sources replay their
# corpus under ASan+UBSan with gcc in make check (tests/fuzz/replay.c provides main).
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Iagent $(PKG_CFLAGS) \
               -include $(VERSION_H)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(AGENT_SRCS) $(TESTLIB_SRCS) $(VERSION_H)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(TESTLIB_SRCS) $(AGENT_SRCS) $(PKG_LIBS)

$(BUILD)/replay/%: tests/fuzz/%.c tests/fuzz/replay.c $(TESTLIB_SAN) $(BUILD)/libheald-san.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -o $@ $< tests/fuzz/replay.c $(TESTLIB_SAN) $(BUILD)/libheald-san.a $(PKG_LIBS)

fuzz: deps $(FUZZ_BINS)
	tests/fuzz/run-all.sh $(FUZZ_BINS)

deps:
	@packaging/install-deps.sh --if-missing

# Packages (packaging/README.md): build/heald_VERSION_ARCH.deb and build/heald-VERSION.ARCH.rpm;
# VERSION=x.y.z on the command line names another version, ARCH=arm64 (aarch64) Graviton's.
deb: $(BUILD)/heald
	STRIP=$(STRIP) packaging/build-deb.sh $(VERSION) $(BUILD) build $(DEB_ARCH)

rpm:
	STRIP=$(STRIP) packaging/build-rpm.sh $(VERSION) build $(RPM_ARCH)

check: deps
	$(MAKE) all unit $(REPLAY_BINS) $(CRASH_BIN)
	tests/run-all.sh

# The arm64 .deb under systemd in an arm64 Debian container (tests/system/test_package.py),
# every program in it run by qemu-user through binfmt_misc (registered here if it is not):
# too slow for make check (packaging/README.md says how slow), so a target of its own. Root.
system-arm64: deps
	@[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { mountpoint -q /proc/sys/fs/binfmt_misc || \
	  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64; }
	HEALD_CONTAINER_ARCH=arm64 python3 tests/system/run.py test_package

# Healing in a throwaway systemd container (root); elsewhere it says why and runs the host demo.
demo: deps
	$(MAKE) all
	tests/system/demo_healing.py

bench: deps
	$(MAKE) all
	tests/bench/run.sh

# The soak test (tests/system/soak.py, root): the installed .deb in a container for SOAK_MINUTES
# while a driver kills, reloads, cuts AWS off, fills the disk and sends commands; make check
# runs a short form.
SOAK_MINUTES ?= 15
soak: deps
	$(MAKE) all
	python3 tests/system/soak.py --minutes $(SOAK_MINUTES)

# The fleet stack with 50 real healds (tests/integration/fleet_sim.py, about 20 minutes);
# make check runs a 10-instance form of scenarios 1 and 2.
fleet-sim: deps
	$(MAKE) all
	python3 tests/integration/fleet_sim.py --instances 50

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
