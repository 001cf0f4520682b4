//! What `libdnsfo.so` and the `dnsfo` command both need from the operating system: the shared
//! winner cache's file ([`cachefile`]), socket addresses in C form ([`sockaddr`]) and kernel
//! settings ([`kernel`]).
//!
//! Owns: those few system interactions, each behind a safe function. Must never: decide
//! anything (that is `dnsfo_core`), or call a function `libdnsfo.so` hooks other than through std's file
//! calls (inside the library those reach its `close` hook, which passes a non-socket fd straight
//! through).

pub mod cachefile;
pub mod conffile;
pub mod kernel;
pub mod sockaddr;
pub mod version;
