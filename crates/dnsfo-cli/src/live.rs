//! `dnsfo check`'s progress on a terminal: each probe's row as soon as it is known, and one live
//! line saying which addresses are still being waited for and for how long (an operator in the
//! middle of an outage sees at once that something answers, and what hangs).
//!
//! Owns: that transient output. When the probes are done it is erased (if it still fits on the
//! screen), so that what stays is the same report a pipe gets. Must never: write anything when
//! stdout is not a terminal (scripts and `--json` read the report alone).

use crate::term::Style;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Instant;

/// Rows erased at the end at most: more may have scrolled off the screen, and moving the cursor
/// up past the top would erase the wrong lines.
const MAX_ERASED_ROWS: usize = 20;

pub struct Live {
    on: bool,
    style: Style,
    started: Instant,
    rows: usize,
    line_shown: bool,
    addr_width: usize,
}

impl Live {
    /// Progress for the probes of `addrs`, shown only when `on` (stdout is a terminal).
    pub fn new(on: bool, style: Style, addrs: &[SocketAddr]) -> Live {
        Live {
            on,
            style,
            started: Instant::now(),
            rows: 0,
            line_shown: false,
            addr_width: addrs
                .iter()
                .map(|a| a.ip().to_string().len())
                .max()
                .unwrap_or(0),
        }
    }

    /// A probe finished: its row, now.
    pub fn done(&mut self, addr: SocketAddr, result: &str, time: &str, open: bool) {
        if !self.on {
            return;
        }
        self.clear_line();
        let result = if open {
            self.style.green(result)
        } else {
            self.style.red(result)
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "  {:<w$}  {result}  {time}",
            addr.ip(),
            w = self.addr_width
        );
        let _ = out.flush();
        self.rows += 1;
    }

    /// Some probes are still going: say which, and for how long.
    pub fn waiting(&mut self, pending: &[SocketAddr]) {
        if !self.on || pending.is_empty() {
            return;
        }
        let mut list: Vec<String> = pending.iter().take(4).map(|a| a.ip().to_string()).collect();
        if pending.len() > 4 {
            list.push(format!("and {} more", pending.len() - 4));
        }
        let text = format!(
            "waiting on {} ... {:.1} s",
            list.join(", "),
            self.started.elapsed().as_secs_f64()
        );
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[K{}", self.style.dim(&text));
        let _ = out.flush();
        self.line_shown = true;
    }

    /// The probes are done: the transient output goes (the report follows).
    pub fn finish(&mut self) {
        if !self.on {
            return;
        }
        self.clear_line();
        if self.rows > 0 && self.rows <= MAX_ERASED_ROWS {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\x1b[{}A\x1b[J", self.rows);
            let _ = out.flush();
        } else if self.rows > 0 {
            println!();
        }
        self.rows = 0;
    }

    fn clear_line(&mut self) {
        if self.line_shown {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
            self.line_shown = false;
        }
    }
}
