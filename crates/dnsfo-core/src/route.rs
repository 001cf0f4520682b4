//! The first decision of every connect: whether dnsfo acts on it, and which way. This is where
//! the connect is decided; `failover::connect` only gathers the facts (and then carries the
//! route out), the planner orders the addresses of a route that steers.
//!
//! The facts are asked for lazily, cheapest first, through [`Facts`], and the route asks only
//! for what it needs: a connect to an address of no learned name costs one registry look-up
//! and nothing else. Owns: the routes and the reasons to pass through. Must never: touch a
//! socket or a lock (the facts' provider does).

/// What dnsfo knows of the socket a connect is made on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Socket {
    /// Not a TCP socket dnsfo saw created (another family or type, or made before dnsfo was
    /// in the process, or by a raw system call).
    Untracked,
    /// Its connect was already made (the program asks how it is going, or starts over after
    /// its failure), or dnsfo is steering it.
    Connecting,
    /// A TCP socket that has not connected yet.
    Fresh {
        /// Made `AF_INET` (else `AF_INET6`).
        ipv4: bool,
        /// The program asked for TCP Fast Open: its first data rides on the SYN, so the
        /// connect cannot be moved.
        fast_open: bool,
    },
}

/// The facts of one connect, asked for in this order and only when needed.
pub trait Facts {
    /// Is the address one that a name this process resolved returned?
    fn learned(&mut self) -> bool;
    /// What dnsfo knows of the socket.
    fn socket(&mut self) -> Socket;
    /// Is the socket non-blocking (`O_NONBLOCK`)? `None` when its flags cannot be read.
    fn nonblocking(&mut self) -> Option<bool>;
}

/// Why dnsfo leaves a connect to libc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassThrough {
    /// The address is no learned name's: dnsfo knows no other address to go to.
    NotLearned,
    /// dnsfo did not see the socket made (see [`Socket::Untracked`]).
    Untracked,
    /// An IPv4 address on an `AF_INET6` socket or the reverse: the program's mistake, which
    /// libc answers (`EINVAL`, `EAFNOSUPPORT`).
    FamilyMismatch,
    /// TCP Fast Open (see [`Socket::Fresh`]).
    FastOpen,
    /// The socket's flags cannot be read (the fd is gone).
    FlagsUnknown,
}

/// What dnsfo does with a connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Call libc's `connect` unchanged.
    PassThrough(PassThrough),
    /// A connect on a socket already connecting or steered: answer from the steer (or let the
    /// kernel answer).
    Again,
    /// A blocking connect: its first attempt on the program's socket, bounded by the attempt
    /// delay; a race on the same socket if that fails or stays silent.
    Blocking,
    /// A non-blocking connect: its first attempt at once, the race in the background.
    NonBlocking,
}

/// The route of a connect to an address of the family `ipv4`.
pub fn route(addr_is_ipv4: bool, facts: &mut impl Facts) -> Route {
    if !facts.learned() {
        return Route::PassThrough(PassThrough::NotLearned);
    }
    let (ipv4, fast_open) = match facts.socket() {
        Socket::Untracked => return Route::PassThrough(PassThrough::Untracked),
        Socket::Connecting => return Route::Again,
        Socket::Fresh { ipv4, fast_open } => (ipv4, fast_open),
    };
    if addr_is_ipv4 != ipv4 {
        return Route::PassThrough(PassThrough::FamilyMismatch);
    }
    if fast_open {
        return Route::PassThrough(PassThrough::FastOpen);
    }
    match facts.nonblocking() {
        None => Route::PassThrough(PassThrough::FlagsUnknown),
        Some(true) => Route::NonBlocking,
        Some(false) => Route::Blocking,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Given facts; records which were asked for.
    struct Given {
        learned: bool,
        socket: Socket,
        nonblocking: Option<bool>,
        asked: Vec<&'static str>,
    }

    impl Facts for Given {
        fn learned(&mut self) -> bool {
            self.asked.push("learned");
            self.learned
        }
        fn socket(&mut self) -> Socket {
            self.asked.push("socket");
            self.socket
        }
        fn nonblocking(&mut self) -> Option<bool> {
            self.asked.push("nonblocking");
            self.nonblocking
        }
    }

    const FRESH_V4: Socket = Socket::Fresh {
        ipv4: true,
        fast_open: false,
    };

    fn go(v4: bool, learned: bool, socket: Socket, nb: Option<bool>) -> (Route, Vec<&'static str>) {
        let mut g = Given {
            learned,
            socket,
            nonblocking: nb,
            asked: Vec::new(),
        };
        (route(v4, &mut g), g.asked)
    }

    #[test]
    fn every_route_and_what_it_costs() {
        use PassThrough::*;
        let all = vec!["learned", "socket", "nonblocking"];
        // The common case of a program that never resolved the address: one look-up only.
        assert_eq!(
            go(true, false, FRESH_V4, Some(false)),
            (Route::PassThrough(NotLearned), vec!["learned"])
        );
        assert_eq!(
            go(true, true, Socket::Untracked, Some(false)),
            (Route::PassThrough(Untracked), vec!["learned", "socket"])
        );
        assert_eq!(
            go(true, true, Socket::Connecting, Some(true)),
            (Route::Again, vec!["learned", "socket"])
        );
        let v6 = Socket::Fresh {
            ipv4: false,
            fast_open: false,
        };
        assert_eq!(
            go(true, true, v6, Some(false)).0,
            Route::PassThrough(FamilyMismatch),
            "IPv4 address on an AF_INET6 socket"
        );
        assert_eq!(
            go(false, true, FRESH_V4, Some(false)).0,
            Route::PassThrough(FamilyMismatch),
            "IPv6 address on an AF_INET socket"
        );
        let tfo = Socket::Fresh {
            ipv4: true,
            fast_open: true,
        };
        assert_eq!(
            go(true, true, tfo, Some(false)).0,
            Route::PassThrough(FastOpen)
        );
        assert_eq!(
            go(true, true, FRESH_V4, None),
            (Route::PassThrough(FlagsUnknown), all.clone())
        );
        assert_eq!(
            go(true, true, FRESH_V4, Some(false)),
            (Route::Blocking, all.clone())
        );
        assert_eq!(go(false, true, v6, Some(true)), (Route::NonBlocking, all));
    }
}
