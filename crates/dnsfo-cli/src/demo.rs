//! `dnsfo demo`: the before/after demonstration, self-contained. In a private user + mount +
//! network namespace (see `ns`), a name `svc` has two addresses: the first silent (drops every
//! SYN, like a dead host), the second up. A stock program that connects to the first address
//! (python3, else perl) runs without dnsfo, cut off after a few seconds, then through
//! `dnsfo run`, where it reaches the live address in about the attempt delay.
//!
//! Every server is a thread of this process with a bounded lifetime; clients are killed at their
//! cut-off; the namespace disappears with the process.

use crate::args::{Item, Parser};
use crate::ns;
use crate::run;
use crate::term::Style;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const USAGE: &str = "\
Usage: dnsfo demo [options]

Show what dnsfo does, on this machine only. In a private network namespace (only loopback
exists there) the name svc has two addresses: 127.0.0.2, which silently drops every connection
attempt like a dead host, and 127.0.0.3, which answers. A stock program that connects to the
first address only (python3's socket.connect, else perl's IO::Socket::INET) runs:

  1. dnsfo check svc:PORT   what dnsfo sees
  2. without dnsfo          it hangs (cut off after --cutoff seconds)
  3. with dnsfo run         it reaches 127.0.0.3 in about the attempt delay (250 ms)
  4. again, a new process   it goes straight to 127.0.0.3 (dnsfo's shared winner cache)

Options:
  --cutoff SECONDS     how long the program may hang without dnsfo (default 5, 1..=60)
  --port PORT          the port inside the namespace (default 8080)
  -h, --help           show this help and exit
  -V, --version        show the version and exit

Needs unprivileged user namespaces (or root), and python3 or perl. Nothing is installed or
changed outside the namespace (the winner cache is a private temporary one); it all disappears
when the demo exits.

Exit status: 0 when the program reached the live address with dnsfo; 1 when it did not or the
demo could not be set up; 2 on a usage error; 125 if libdnsfo.so cannot be found.
";

const NAME: &str = "svc";
const SILENT: &str = "127.0.0.2";
const UP: &str = "127.0.0.3";

const PY: &str = "import socket, sys\n\
s = socket.socket()\n\
s.connect((sys.argv[1], int(sys.argv[2])))\n\
print('GOT ' + s.makefile().readline().strip())\n";

const PL: &str = "use IO::Socket::INET; \
my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], Proto => 'tcp') \
or die \"ERR $@\\n\"; my $l = <$s>; print \"GOT $l\";";

struct Opts {
    cutoff: u64,
    port: u16,
}

fn parse(argv: Vec<OsString>) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        cutoff: 5,
        port: 8080,
    };
    let mut p = Parser::new(argv);
    while let Some(item) = p.next_item() {
        match item {
            Item::End => {
                if let Some(extra) = p.rest().first() {
                    return Err(format!("unexpected argument '{}'", extra.to_string_lossy()));
                }
                break;
            }
            Item::Pos(a) => return Err(format!("unexpected argument '{}'", a.to_string_lossy())),
            Item::Opt { name, inline } => match name.as_str() {
                "--cutoff" => {
                    let v = p.value(&name, inline)?;
                    let s = v.to_string_lossy();
                    o.cutoff = s
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (1..=60).contains(n))
                        .ok_or_else(|| {
                            format!("--cutoff: '{s}' is not a whole number of seconds in 1..=60")
                        })?;
                }
                "--port" => {
                    let v = p.value(&name, inline)?;
                    let s = v.to_string_lossy();
                    o.port = s
                        .parse::<u16>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("--port: '{s}' is not a port in 1..=65535"))?;
                }
                "-h" | "--help" => {
                    print!("{USAGE}");
                    return Ok(None);
                }
                "-V" | "--version" => {
                    crate::version();
                    return Ok(None);
                }
                _ => return Err(format!("unknown option '{name}'")),
            },
        }
    }
    Ok(Some(o))
}

pub fn main(argv: Vec<OsString>) -> u8 {
    let o = match parse(argv) {
        Ok(Some(o)) => o,
        Ok(None) => return 0,
        Err(msg) => {
            eprintln!("dnsfo demo: {msg} (try 'dnsfo demo --help')");
            return 2;
        }
    };
    let lib = match run::find_lib() {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("dnsfo demo: {msg}");
            return 125;
        }
    };
    let client = match Client::find() {
        Some(c) => c,
        None => {
            eprintln!("dnsfo demo: needs python3 or perl on PATH to play the unmodified program");
            return 1;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("dnsfo demo: cannot locate myself: {e}");
            return 1;
        }
    };
    if let Err(msg) = ns::enter() {
        eprintln!("dnsfo demo: cannot create a private network namespace: {msg}");
        return 1;
    }
    let work = std::env::temp_dir().join(format!(
        "dnsfo-demo-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let code = match Demo::set_up(&o, &work) {
        Ok(demo) => demo.play(&o, &lib, &exe, &client),
        Err(msg) => {
            eprintln!("dnsfo demo: setting up: {msg}");
            1
        }
    };
    let _ = std::fs::remove_dir_all(&work);
    code
}

struct Client {
    label: &'static str,
    program: PathBuf,
    args: Vec<String>,
    shown: String,
}

impl Client {
    fn find() -> Option<Client> {
        if let Some(p) = crate::which::which("python3".as_ref()) {
            return Some(Client {
                label: "python3, socket.connect((name, port)): the first address only",
                program: p,
                args: vec!["-c".into(), PY.into()],
                shown: "python3 -c '<socket.connect to the first address>'".into(),
            });
        }
        crate::which::which("perl".as_ref()).map(|p| Client {
            label: "perl, IO::Socket::INET without a timeout: one address after the other",
            program: p,
            args: vec!["-e".into(), PL.into()],
            shown: "perl -e '<IO::Socket::INET->new(...)>'".into(),
        })
    }
}

struct Demo {
    stop: Arc<AtomicBool>,
    up: Option<std::thread::JoinHandle<()>>,
    // The blackhole: a listener with a full accept queue, and what fills it.
    _silent: (OwnedFd, TcpStream),
    /// A private DNSFO_CACHE_DIR: the demo's name never reaches the user's real cache.
    cache_dir: PathBuf,
}

impl Demo {
    fn set_up(o: &Opts, work: &Path) -> Result<Demo, String> {
        std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
        let hosts = work.join("hosts");
        let text = format!(
            "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n{SILENT} {NAME}\n{UP} {NAME}\n"
        );
        std::fs::write(&hosts, text).map_err(|e| format!("{}: {e}", hosts.display()))?;
        ns::bind_file(&hosts, Path::new("/etc/hosts"))?;
        if Path::new("/etc/gai.conf").exists() {
            // glibc's defaults: the host's gai.conf cannot reorder our name.
            let gai = work.join("gai.conf");
            std::fs::write(&gai, "# dnsfo demo: glibc defaults\n").map_err(|e| e.to_string())?;
            ns::bind_file(&gai, Path::new("/etc/gai.conf"))?;
        }
        let order = crate::check::resolve(NAME, o.port)?;
        let want: Vec<SocketAddr> = [SILENT, UP]
            .iter()
            .map(|ip| SocketAddr::new(ip.parse().unwrap(), o.port))
            .collect();
        if order != want {
            return Err(format!("{NAME} resolves to {order:?}, expected {want:?}"));
        }
        let cache_dir = work.join("cache");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&cache_dir)
            .map_err(|e| format!("{}: {e}", cache_dir.display()))?;
        let silent = blackhole(SILENT, o.port)?;
        let stop = Arc::new(AtomicBool::new(false));
        let listener =
            TcpListener::bind((UP, o.port)).map_err(|e| format!("{UP}:{}: {e}", o.port))?;
        let lifetime = Duration::from_secs(o.cutoff + 60);
        let stop2 = stop.clone();
        let up = std::thread::spawn(move || serve_up(listener, stop2, lifetime));
        Ok(Demo {
            stop,
            up: Some(up),
            _silent: silent,
            cache_dir,
        })
    }

    /// Runs the client through `dnsfo run -v`; prints its answer and the library's log.
    fn with_dnsfo(
        &self,
        o: &Opts,
        lib: &Path,
        exe: &Path,
        client: &Client,
        title: &str,
    ) -> (bool, Duration) {
        let st = Style::for_fd(1);
        let port = o.port.to_string();
        println!("{title}  dnsfo run -v -- {} {NAME} {port}", client.shown);
        let mut with = self.clean(exe);
        with.env("DNSFO_LIB", lib)
            .env("DNSFO_STATS", "1")
            .args(["run", "-v", "--"])
            .arg(&client.program)
            .args(&client.args)
            .args([NAME, &port]);
        let after = run_bounded(with, Duration::from_secs(o.cutoff.max(5)));
        let got = after.stdout.lines().find(|l| l.starts_with("GOT "));
        let ok = !after.timed_out && got == Some(&format!("GOT HELLO {UP}"));
        match got {
            Some(line) if ok => println!(
                "     {}   ({:.2} s)",
                st.green(line),
                after.elapsed.as_secs_f64()
            ),
            _ => {
                print_indented(&after.stdout, "     ");
                if after.timed_out {
                    println!(
                        "     {} after {:.1} s: cut off",
                        st.red("no answer"),
                        after.elapsed.as_secs_f64()
                    );
                }
            }
        }
        // The library's log, without its start-up line (the configuration dump).
        let log: Vec<&str> = after
            .stderr
            .lines()
            .filter(|l| !l.contains("initialised:"))
            .collect();
        if !log.is_empty() {
            println!("     the library's log (-v):");
            print_indented(&log.join("\n"), "       ");
        }
        println!();
        (ok, after.elapsed)
    }

    /// A command with a clean environment and the demo's private winner cache.
    fn clean(&self, program: &Path) -> Command {
        let mut c = clean(Command::new(program));
        c.env("DNSFO_CACHE_DIR", &self.cache_dir);
        c
    }

    fn play(mut self, o: &Opts, lib: &Path, exe: &Path, client: &Client) -> u8 {
        let st = Style::for_fd(1);
        let port = o.port.to_string();
        println!(
            "{} before/after, in a private network namespace (nothing leaves this machine)\n",
            st.bold("dnsfo demo:")
        );
        println!("  /etc/hosts in that namespace:");
        println!("    {SILENT} {NAME}   silent: drops every SYN, like a dead host");
        println!("    {UP} {NAME}   up: answers \"HELLO {UP}\"");
        println!("  the program: {}\n", client.label);

        println!(
            "{}  dnsfo check --timeout 1000 {NAME}:{port}",
            st.bold("1. What dnsfo sees:")
        );
        let mut check = self.clean(exe);
        check.args(["check", "--timeout", "1000", &format!("{NAME}:{port}")]);
        let r = run_bounded(check, Duration::from_secs(10));
        print_indented(&r.stdout, "     ");
        print_indented(&r.stderr, "     ");
        println!();

        println!(
            "{}  {} {NAME} {port}",
            st.bold("2. Without dnsfo:"),
            client.shown
        );
        let mut plain = clean(Command::new(&client.program));
        plain.args(&client.args).args([NAME, &port]);
        let before = run_bounded(plain, Duration::from_secs(o.cutoff));
        let before_hung = before.timed_out;
        if before.timed_out {
            println!(
                "     {} after {:.1} s: cut off (the kernel would keep trying for ~{} s)",
                st.red("no answer"),
                before.elapsed.as_secs_f64(),
                dnsfo_os::kernel::syn_timeout_s()
            );
        } else {
            print_indented(&before.stdout, "     ");
            print_indented(&before.stderr, "     ");
            println!("     exited after {:.2} s", before.elapsed.as_secs_f64());
        }
        println!();

        let (ok, after) = self.with_dnsfo(o, lib, exe, client, &st.bold("3. With dnsfo:"));
        let (again_ok, again) = self.with_dnsfo(
            o,
            lib,
            exe,
            client,
            &st.bold("4. Again, in a new process (the winner is in dnsfo's shared cache now):"),
        );

        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.up.take() {
            let _ = h.join();
        }
        if ok && before_hung {
            println!(
                "{} without dnsfo the program hung (cut off after {} s); with dnsfo it reached {UP} in {:.2} s{}.",
                st.green("Result:"),
                o.cutoff,
                after.as_secs_f64(),
                if again_ok {
                    format!(", and a new process in {:.2} s", again.as_secs_f64())
                } else {
                    String::new()
                }
            );
            0
        } else if ok {
            println!(
                "{} with dnsfo the program reached {UP}; without it, it did not hang as expected (see step 2).",
                st.yellow("Result:")
            );
            0
        } else {
            println!(
                "{} with dnsfo the program did not reach {UP} (see step 3).",
                st.red("Result:")
            );
            1
        }
    }
}

/// A command with the caller's environment minus `LD_PRELOAD` and every `DNSFO_*` variable.
fn clean(mut c: Command) -> Command {
    for (k, _) in std::env::vars_os() {
        let ks = k.to_string_lossy();
        if ks == "LD_PRELOAD" || ks.starts_with("DNSFO_") {
            c.env_remove(&k);
        }
    }
    c
}

fn print_indented(text: &str, indent: &str) {
    for l in text.lines() {
        println!("{indent}{l}");
    }
}

/// Accepts (at most 100 connections, for at most `lifetime`) and greets each with its address.
fn serve_up(listener: TcpListener, stop: Arc<AtomicBool>, lifetime: Duration) {
    let deadline = Instant::now() + lifetime;
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let mut served = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && served < 100 {
        match listener.accept() {
            Ok((mut s, _)) => {
                served += 1;
                let _ = s.set_nonblocking(false);
                let _ = s.write_all(format!("HELLO {UP}\n").as_bytes());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// A listener with backlog 0 whose accept queue is filled by one connection that is never
/// accepted: every further SYN is dropped, exactly as by a dead host. Verified before use.
fn blackhole(ip: &str, port: u16) -> Result<(OwnedFd, TcpStream), String> {
    let addr: SocketAddr = SocketAddr::new(ip.parse().unwrap(), port);
    let std::net::IpAddr::V4(v4) = addr.ip() else {
        return Err("IPv4 only".into());
    };
    // SAFETY: plain socket calls on a descriptor owned by `fd` from here on.
    let fd = unsafe {
        let raw = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if raw < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        OwnedFd::from_raw_fd(raw)
    };
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(v4).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: valid descriptor and properly sized arguments.
    let ok = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of_val(&one) as libc::socklen_t,
        );
        libc::bind(
            fd.as_raw_fd(),
            &sin as *const _ as *const libc::sockaddr,
            std::mem::size_of_val(&sin) as libc::socklen_t,
        ) == 0
            && libc::listen(fd.as_raw_fd(), 0) == 0
    };
    if !ok {
        return Err(format!(
            "blackhole {addr}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let filler = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("blackhole {addr}: filler connect: {e}"))?;
    match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok((fd, filler)),
        Ok(_) => Err(format!("blackhole {addr}: a probe was answered")),
        Err(e) => Err(format!("blackhole {addr}: probe: {e}")),
    }
}

struct Ran {
    stdout: String,
    stderr: String,
    timed_out: bool,
    elapsed: Duration,
}

/// Runs `cmd` in its own process group; kills the group at `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Ran {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let t0 = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                stdout: String::new(),
                stderr: format!("cannot start: {e}\n"),
                timed_out: false,
                elapsed: t0.elapsed(),
            }
        }
    };
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(1 << 20).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let mut timed_out = false;
    let pid = child.id() as libc::pid_t;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if t0.elapsed() >= limit {
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = t0.elapsed();
    // SAFETY: the child leads its own process group; kill it and anything it started.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = child.wait();
    Ran {
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
        elapsed,
    }
}
