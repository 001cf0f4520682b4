//! dnsfo's own entry point, for its command-line tool: not a libc function.
//!
//! `dnsfo check` looks this symbol up in its own process (`dlsym`); found, the library is in the
//! process, whatever its file name or however it was loaded, and calling it makes every hook pass
//! straight through from then on. Must never: do anything but set that flag.

/// Makes every hook of this process pass straight through from now on.
#[no_mangle]
pub extern "C" fn dnsfo_pass_through() {
    crate::lifecycle::pass_through_from_now_on();
}
