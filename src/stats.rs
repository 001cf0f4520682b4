//! `DNSFO_STATS=1`: the summary line at exit (the counters are `dnsfo_core::stats`).
//!
//! Owns: arming and writing the exit line. Must never: write anything unless asked, or take a
//! lock.

pub use dnsfo_core::stats::*;
use std::sync::OnceLock;

static SINK: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();

/// Arms the exit line; `log_file` is where it goes (stderr when `None`).
pub fn enable(log_file: Option<std::path::PathBuf>) {
    if SINK.set(log_file).is_ok() {
        crate::sys::at_exit(report);
    }
}

extern "C" fn report() {
    let Some(_entered) = crate::guard::enter() else {
        return;
    };
    let _ = crate::guard::contain(|| {
        let text = format!("{}\n", line());
        match SINK.get().and_then(|p| p.as_ref()) {
            Some(path) => {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    let _ = f.write_all(text.as_bytes());
                }
            }
            None => crate::sys::write_all(2, text.as_bytes()),
        }
    });
}
