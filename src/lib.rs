//! dnsfo: an `LD_PRELOAD` shim that makes a connect to a dead address of a multi-address name
//! land, quickly and on the same fd, on a live address of that name.
//!
//! Data flow (see `../shared/DESIGN.md`):
//! `hooks::resolve` → [`learn`] → [`registry`] (name ↔ addresses);
//! `hooks::connect` → [`failover`] → [`plan`] (pure: which addresses, in which order) →
//! [`dial`] (the only socket work: it steers the program's own socket) → [`health`] (winners,
//! dead addresses) → back into [`learn`], which reorders later lookups. The wait hooks hold back
//! the intermediate events of a steered socket ([`failover::judge`], [`copies`]). Shared state
//! lives in [`state`]; every libc call goes through [`sys`]; [`guard`] stops re-entrancy and
//! contains panics.
//!
//! **Where is the connect decided?** `dnsfo_core::route::route` (pure); [`failover::connect`]
//! gathers its facts and carries the route out.

// The pure core, under the names the library's modules use.
pub use dnsfo_core::{config, health, literal, plan, registry};

pub mod alloc;
pub mod copies;
pub mod dial;
pub mod failover;
pub mod fdtable;
pub mod forksafe;
pub mod guard;
pub mod learn;
pub mod lifecycle;
pub mod logging;
pub mod reactor;
pub mod resolver;
pub mod state;
pub mod stats;
pub mod sys;

#[cfg(not(test))]
mod hooks;

// Installed in the unit tests too: they count allocations through it (`alloc::allocations`).
#[global_allocator]
static ALLOCATOR: alloc::WithReserve = alloc::WithReserve;
