//! Installing like a real tool: `make install PREFIX=<temp>` puts the command, the wrapper, the
//! library, the man page and the README in place, and an unmodified program run through the
//! INSTALLED wrapper (in a hermetic namespace whose name has a silent first address) reaches
//! the live address; `make uninstall` removes it all; `make deb` builds a package with the
//! expected contents that works once unpacked.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

const MAKE_LIMIT: Duration = Duration::from_secs(120);

fn make(args: &[&str]) -> Out {
    let mut c = clean("make");
    c.arg("--no-print-directory")
        .arg("-C")
        .arg(REPO)
        .args(args)
        .arg(format!("RELEASE_DIR={}", release_dir().display()));
    run(c, MAKE_LIMIT)
}

fn preload_seen_by(wrapper: &Path, args: &[&str]) -> String {
    let mut c = clean(wrapper);
    c.args(args)
        .args(["--", "sh", "-c", "printf '%s\\n' \"$LD_PRELOAD\""]);
    let o = run(c, Duration::from_secs(20));
    assert_eq!(o.code, Some(0), "{}\n{o}", wrapper.display());
    o.stdout.trim_end().to_string()
}

#[test]
fn make_install_into_a_temporary_prefix_then_run_through_the_installed_wrapper() {
    if !have("make") {
        return skip("make_install...", "make not found (Debian: make)");
    }
    built_lib();
    let tmp = TempDir::new("install");
    let prefix = tmp.path().join("prefix");
    let p = prefix.to_str().unwrap().to_string();
    let o = make(&["install", &format!("PREFIX={p}")]);
    assert_eq!(o.code, Some(0), "{o}");

    let files = [
        ("bin/dnsfo", 0o755),
        ("bin/dnsfo-run", 0o755),
        ("lib/dnsfo/libdnsfo.so", 0o644),
        ("share/man/man1/dnsfo.1", 0o644),
        ("share/doc/dnsfo/README.md", 0o644),
    ];
    for (f, mode) in files {
        let m = std::fs::metadata(prefix.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(m.permissions().mode() & 0o777, mode, "{f}");
    }
    let man = std::fs::read_to_string(prefix.join("share/man/man1/dnsfo.1")).unwrap();
    assert!(
        man.contains(&format!("dnsfo {}", env!("CARGO_PKG_VERSION"))),
        "version in the man page"
    );
    assert_eq!(
        std::fs::read_link(prefix.join("share/man/man1/dnsfo-run.1")).unwrap(),
        Path::new("dnsfo.1")
    );

    // The installed commands find the installed library, not the build tree's.
    let lib = std::fs::canonicalize(prefix.join("lib/dnsfo/libdnsfo.so")).unwrap();
    let lib = lib.to_str().unwrap();
    assert_eq!(preload_seen_by(&prefix.join("bin/dnsfo-run"), &[]), lib);
    assert_eq!(preload_seen_by(&prefix.join("bin/dnsfo"), &["run"]), lib);
    let mut c = clean(prefix.join("bin/dnsfo"));
    c.arg("--version");
    assert_eq!(
        run(c, Duration::from_secs(10)).stdout,
        format!("dnsfo {}\n", env!("CARGO_PKG_VERSION"))
    );

    // An unmodified python3 that connects to the first address only, through the installed
    // wrapper and the installed `dnsfo run`; and without either (cut off after 1 s).
    if let Some(why) = hermetic_unavailable() {
        skip("make_install... (hermetic part)", &why);
    } else {
        let client = format!("{REPO}/tests/e2e/clients/client.py");
        let script = format!(
            "timeout 1 python3 {client} svc 7000; echo \"plain rc=$?\"; \
             {p}/bin/dnsfo-run -- python3 {client} svc 7000; echo \"dnsfo-run rc=$?\"; \
             {p}/bin/dnsfo run -- python3 {client} svc 7000; echo \"dnsfo run rc=$?\""
        );
        let h = Hermetic::run(
            &["silent:127.0.0.2", "up:127.0.0.3"],
            &["sh", "-c", &script],
            20,
        );
        assert_eq!(h.get("harness", "gai"), "127.0.0.2 127.0.0.3", "{h}");
        assert_eq!(
            h.stdout(),
            "plain rc=124\n\
             GOT HELLO 127.0.0.3\ndnsfo-run rc=0\n\
             GOT HELLO 127.0.0.3\ndnsfo run rc=0\n",
            "without the wrapper it hangs; through either installed command it connects\n{h}"
        );
        // 1 s for the cut-off plain run plus two failovers of ~250 ms: far below the kernel's 127 s.
        assert!(h.elapsed_ms() < 10_000, "{h}");
    }

    let o = make(&["uninstall", &format!("PREFIX={p}")]);
    assert_eq!(o.code, Some(0), "{o}");
    for (f, _) in files {
        assert!(
            !prefix.join(f).exists(),
            "{f} left behind by make uninstall"
        );
    }
    assert!(!prefix.join("share/man/man1/dnsfo-run.1").exists());
    assert!(!prefix.join("lib/dnsfo").exists());
}

#[test]
fn make_install_honours_destdir_and_rejects_a_relative_prefix() {
    if !have("make") {
        return skip(
            "make_install_honours_destdir...",
            "make not found (Debian: make)",
        );
    }
    built_lib();
    let tmp = TempDir::new("install-destdir");
    let dest = tmp.path().join("stage");
    let o = make(&[
        "install",
        "PREFIX=/opt/dnsfo",
        &format!("DESTDIR={}", dest.display()),
    ]);
    assert_eq!(o.code, Some(0), "{o}");
    assert!(dest.join("opt/dnsfo/bin/dnsfo").is_file());
    assert!(dest.join("opt/dnsfo/lib/dnsfo/libdnsfo.so").is_file());
    let o = make(&["install", "PREFIX=relative/prefix"]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(o.stderr.contains("PREFIX must be an absolute path"), "{o}");
}

#[test]
fn make_deb_builds_a_package_with_the_expected_contents() {
    if !have("make") {
        return skip("make_deb...", "make not found (Debian: make)");
    }
    if !have("dpkg-deb") {
        return skip("make_deb...", "dpkg-deb not found (Debian: dpkg)");
    }
    built_lib();
    let tmp = TempDir::new("deb");
    let out_dir = tmp.path().join("out");
    let o = make(&["deb", &format!("DEB_DIR={}", out_dir.display())]);
    assert_eq!(o.code, Some(0), "{o}");
    let version = env!("CARGO_PKG_VERSION");
    let deb = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap_or_else(|| panic!("no .deb in {}\n{o}", out_dir.display()));
    let name = deb.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with(&format!("dnsfo_{version}_")), "{name}");
    assert_eq!(
        o.stdout.trim_end().lines().last(),
        Some(deb.to_str().unwrap()),
        "{o}"
    );

    let mut c = clean("dpkg-deb");
    c.arg("-c").arg(&deb);
    let list = run(c, Duration::from_secs(30));
    assert_eq!(list.code, Some(0), "{list}");
    for path in [
        "./usr/bin/dnsfo",
        "./usr/bin/dnsfo-run",
        "./usr/lib/dnsfo/libdnsfo.so",
        "./usr/share/man/man1/dnsfo.1.gz",
        "./usr/share/man/man1/dnsfo-run.1.gz -> dnsfo.1.gz",
        "./usr/share/doc/dnsfo/README.md.gz",
        "./usr/share/doc/dnsfo/copyright",
    ] {
        assert!(
            list.stdout.lines().any(|l| l.ends_with(path)),
            "{path} missing from dpkg-deb -c:\n{}",
            list.stdout
        );
    }
    assert!(
        list.stdout.lines().all(|l| l.contains(" root/root ")),
        "{}",
        list.stdout
    );

    let mut c = clean("dpkg-deb");
    c.arg("-f")
        .arg(&deb)
        .args(["Package", "Version", "Depends"]);
    let f = run(c, Duration::from_secs(30));
    assert!(f.stdout.contains("Package: dnsfo\n"), "{f}");
    assert!(f.stdout.contains(&format!("Version: {version}\n")), "{f}");
    assert!(f.stdout.contains("Depends: libc6"), "{f}");

    // Unpacked anywhere, the packaged wrapper finds the packaged library.
    let x = tmp.path().join("x");
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    let lib = std::fs::canonicalize(x.join("usr/lib/dnsfo/libdnsfo.so")).unwrap();
    assert_eq!(
        preload_seen_by(&x.join("usr/bin/dnsfo-run"), &[]),
        lib.to_str().unwrap()
    );
    assert_eq!(
        preload_seen_by(&x.join("usr/bin/dnsfo"), &["run"]),
        lib.to_str().unwrap()
    );
}
