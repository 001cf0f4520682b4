# dnsfo: build, install, package.
#
#   make                              cargo build --release
#   make install [PREFIX=/usr/local] [DESTDIR=]
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]
#   make deb                          target/deb/dnsfo_<version>_<arch>.deb (needs dpkg-deb)
#
# Installed layout (dnsfo and dnsfo-run find the library as ../lib/dnsfo/libdnsfo.so next to
# themselves, so bin/ and lib/ must stay siblings under one PREFIX):
#   $(PREFIX)/bin/dnsfo, $(PREFIX)/bin/dnsfo-run
#   $(PREFIX)/lib/dnsfo/libdnsfo.so
#   $(PREFIX)/share/man/man1/dnsfo.1, dnsfo-run.1 (a link to dnsfo.1), man5/dnsfo.conf.5
#   $(PREFIX)/share/bash-completion/completions/dnsfo, dnsfo-run (a link)
#   $(PREFIX)/share/zsh/vendor-completions/_dnsfo
#   $(PREFIX)/share/doc/dnsfo/README.md
#
# The installed binary and library are stripped (STRIP= keeps their symbols and debug info).
# `install` builds only what is missing; run `make` first to pick up source changes.
# RELEASE_DIR points at another cargo output directory (e.g. $CARGO_TARGET_DIR/release).

PREFIX      ?= /usr/local
DESTDIR     ?=
CARGO       ?= cargo
INSTALL     ?= install
RELEASE_DIR ?= target/release
DEB_DIR     ?= target/deb

BINDIR := $(PREFIX)/bin
PKGLIBDIR := $(PREFIX)/lib/dnsfo
STRIP       ?= strip
MAN1DIR := $(PREFIX)/share/man/man1
MAN5DIR := $(PREFIX)/share/man/man5
BASHCOMPDIR := $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR := $(PREFIX)/share/zsh/vendor-completions
DOCDIR := $(PREFIX)/share/doc/dnsfo

VERSION := $(shell sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)

LIB := $(RELEASE_DIR)/libdnsfo.so
BIN := $(RELEASE_DIR)/dnsfo

.PHONY: all build install uninstall deb help

all: build

build:
	$(CARGO) build --release

# Only when missing: `make install` run as root after `make` must not rebuild.
$(LIB) $(BIN):
	$(CARGO) build --release

help:
	@sed -n '2,20s/^# \{0,1\}//p' Makefile

install: $(LIB) $(BIN)
	@case '$(PREFIX)' in /*) ;; *) echo "make install: PREFIX must be an absolute path (got '$(PREFIX)')" >&2; exit 2;; esac
	$(INSTALL) -d '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(PKGLIBDIR)' '$(DESTDIR)$(MAN1DIR)' \
	    '$(DESTDIR)$(MAN5DIR)' '$(DESTDIR)$(BASHCOMPDIR)' '$(DESTDIR)$(ZSHCOMPDIR)' '$(DESTDIR)$(DOCDIR)'
	$(INSTALL) -m 0755 '$(BIN)' '$(DESTDIR)$(BINDIR)/dnsfo'
	$(INSTALL) -m 0755 scripts/dnsfo-run '$(DESTDIR)$(BINDIR)/dnsfo-run'
	$(INSTALL) -m 0644 '$(LIB)' '$(DESTDIR)$(PKGLIBDIR)/libdnsfo.so'
	if [ -n '$(STRIP)' ]; then \
	    $(STRIP) --strip-unneeded --remove-section=.comment '$(DESTDIR)$(BINDIR)/dnsfo' '$(DESTDIR)$(PKGLIBDIR)/libdnsfo.so'; fi
	sed 's/@VERSION@/$(VERSION)/g' packaging/dnsfo.1 >'$(DESTDIR)$(MAN1DIR)/dnsfo.1'
	sed 's/@VERSION@/$(VERSION)/g' packaging/dnsfo.conf.5 >'$(DESTDIR)$(MAN5DIR)/dnsfo.conf.5'
	chmod 0644 '$(DESTDIR)$(MAN1DIR)/dnsfo.1' '$(DESTDIR)$(MAN5DIR)/dnsfo.conf.5'
	ln -sf dnsfo.1 '$(DESTDIR)$(MAN1DIR)/dnsfo-run.1'
	$(INSTALL) -m 0644 packaging/completions/dnsfo.bash '$(DESTDIR)$(BASHCOMPDIR)/dnsfo'
	ln -sf dnsfo '$(DESTDIR)$(BASHCOMPDIR)/dnsfo-run'
	$(INSTALL) -m 0644 packaging/completions/_dnsfo '$(DESTDIR)$(ZSHCOMPDIR)/_dnsfo'
	$(INSTALL) -m 0644 README.md '$(DESTDIR)$(DOCDIR)/README.md'

uninstall:
	rm -f '$(DESTDIR)$(BINDIR)/dnsfo' '$(DESTDIR)$(BINDIR)/dnsfo-run' \
	      '$(DESTDIR)$(PKGLIBDIR)/libdnsfo.so' \
	      '$(DESTDIR)$(MAN1DIR)/dnsfo.1' '$(DESTDIR)$(MAN1DIR)/dnsfo-run.1' \
	      '$(DESTDIR)$(MAN5DIR)/dnsfo.conf.5' \
	      '$(DESTDIR)$(BASHCOMPDIR)/dnsfo' '$(DESTDIR)$(BASHCOMPDIR)/dnsfo-run' \
	      '$(DESTDIR)$(ZSHCOMPDIR)/_dnsfo' \
	      '$(DESTDIR)$(DOCDIR)/README.md'
	rmdir '$(DESTDIR)$(PKGLIBDIR)' '$(DESTDIR)$(DOCDIR)' 2>/dev/null || true

deb: $(LIB) $(BIN)
	RELEASE_DIR='$(RELEASE_DIR)' DEB_DIR='$(DEB_DIR)' MAKE='$(MAKE)' packaging/build-deb
