//! dnsfo's core: every rule of the connect decision and its bookkeeping, as plain functions
//! and data, shared by `libdnsfo.so` and the `dnsfo` command.
//!
//! Owns: the settings and their parsing ([`config`]), the order of addresses ([`plan`]), what
//! is known of names and addresses ([`registry`], [`health`]), what came of a connect's
//! attempts and what the program is told ([`outcome`]), the winner cache's format
//! ([`cache`]), host strings that are not names ([`literal`]), errno names ([`errno`]) and the
//! counters ([`stats`]). Must never: make a system call other than reading the clock, hold
//! unsafe code, or know about hooks, sockets or files (that is the library's and `dnsfo-os`'s).
#![forbid(unsafe_code)]

pub mod cache;
pub mod conffile;
pub mod config;
pub mod errno;
pub mod health;
pub mod literal;
pub mod outcome;
pub mod plan;
pub mod registry;
pub mod route;
pub mod schedule;
pub mod settings;
pub mod stats;
pub mod values;
