//! Can `LD_PRELOAD` reach this program? Reads just enough of an ELF file to tell a dynamically
//! linked program (yes) from a statically linked one (no `PT_INTERP`: the dynamic loader never
//! runs, nothing is preloaded) and a Go program (`.go.buildinfo` section or a `Go` build-ID note:
//! Go resolves and connects with its own code and raw system calls). Scripts are judged by their
//! `#!` interpreter.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const NT_GO_BUILDID: u32 = 4;

/// What the program is, as far as preloading goes.
#[derive(Debug, PartialEq, Eq)]
pub struct Elf {
    /// Has a `PT_INTERP` program header: the dynamic loader runs and honours `LD_PRELOAD`.
    pub interp: bool,
    /// Has a `PT_DYNAMIC` program header.
    pub dynamic: bool,
    /// Built by the Go toolchain.
    pub go: bool,
}

/// The verdict on a program file.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    Elf(Elf),
    /// A `#!` script; the interpreter it names (resolved on `PATH` through `env`), if found.
    Script(Option<PathBuf>),
    /// Neither ELF nor `#!`.
    Other,
}

struct Reader {
    f: File,
    len: u64,
    le: bool,
    wide: bool,
}

impl Reader {
    fn bytes(&mut self, off: u64, n: usize) -> Option<Vec<u8>> {
        if off.checked_add(n as u64)? > self.len {
            return None;
        }
        let mut buf = vec![0u8; n];
        self.f.seek(SeekFrom::Start(off)).ok()?;
        self.f.read_exact(&mut buf).ok()?;
        Some(buf)
    }
}

fn u16_at(b: &[u8], off: usize, le: bool) -> u64 {
    let a = [b[off], b[off + 1]];
    u64::from(if le {
        u16::from_le_bytes(a)
    } else {
        u16::from_be_bytes(a)
    })
}
fn u32_at(b: &[u8], off: usize, le: bool) -> u64 {
    let a = [b[off], b[off + 1], b[off + 2], b[off + 3]];
    u64::from(if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    })
}
fn u64_at(b: &[u8], off: usize, le: bool) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    if le {
        u64::from_le_bytes(a)
    } else {
        u64::from_be_bytes(a)
    }
}

/// Inspects the file at `path`. `Err` only when it cannot be read at all.
pub fn inspect(path: &Path) -> std::io::Result<Kind> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut head = [0u8; 64];
    let n = read_up_to(&mut f, &mut head)?;
    let head = &head[..n];
    if head.starts_with(b"#!") {
        return Ok(Kind::Script(script_interpreter(path)));
    }
    if n < 52 || &head[..4] != b"\x7fELF" {
        return Ok(Kind::Other);
    }
    let wide = match head[4] {
        1 => false,
        2 => true,
        _ => return Ok(Kind::Other),
    };
    let le = match head[5] {
        1 => true,
        2 => false,
        _ => return Ok(Kind::Other),
    };
    if wide && n < 64 {
        return Ok(Kind::Other);
    }
    let mut r = Reader { f, len, le, wide };
    Ok(Kind::Elf(parse(&mut r, head).unwrap_or(Elf {
        // Unreadable headers: claim nothing (no warning is better than a wrong one).
        interp: true,
        dynamic: true,
        go: false,
    })))
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn parse(r: &mut Reader, h: &[u8]) -> Option<Elf> {
    let (le, wide) = (r.le, r.wide);
    let (phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx) = if wide {
        (
            u64_at(h, 0x20, le),
            u64_at(h, 0x28, le),
            u16_at(h, 0x36, le),
            u16_at(h, 0x38, le),
            u16_at(h, 0x3a, le),
            u16_at(h, 0x3c, le),
            u16_at(h, 0x3e, le),
        )
    } else {
        (
            u32_at(h, 0x1c, le),
            u32_at(h, 0x20, le),
            u16_at(h, 0x2a, le),
            u16_at(h, 0x2c, le),
            u16_at(h, 0x2e, le),
            u16_at(h, 0x30, le),
            u16_at(h, 0x32, le),
        )
    };
    let mut elf = Elf {
        interp: false,
        dynamic: false,
        go: false,
    };
    let min_ph = if wide { 56 } else { 32 };
    if phentsize < min_ph || phnum > 4096 {
        return None;
    }
    let phdrs = r.bytes(phoff, (phentsize * phnum) as usize)?;
    let mut notes = Vec::new();
    for i in 0..phnum as usize {
        let p = &phdrs[i * phentsize as usize..];
        let kind = u32_at(p, 0, le) as u32;
        let (off, size) = if wide {
            (u64_at(p, 8, le), u64_at(p, 0x20, le))
        } else {
            (u32_at(p, 4, le), u32_at(p, 0x10, le))
        };
        match kind {
            PT_INTERP => elf.interp = true,
            PT_DYNAMIC => elf.dynamic = true,
            PT_NOTE if size <= 1 << 16 => notes.push((off, size)),
            _ => {}
        }
    }
    for (off, size) in notes {
        if let Some(b) = r.bytes(off, size as usize) {
            if has_go_note(&b, le) {
                elf.go = true;
            }
        }
    }
    if !elf.go {
        elf.go = has_go_section(r, shoff, shentsize, shnum, shstrndx).unwrap_or(false);
    }
    Some(elf)
}

/// A note with name `Go` and type `NT_GO_BUILDID` (the Go build ID).
fn has_go_note(b: &[u8], le: bool) -> bool {
    let mut at = 0usize;
    for _ in 0..256 {
        if at + 12 > b.len() {
            return false;
        }
        let namesz = u32_at(b, at, le) as usize;
        let descsz = u32_at(b, at + 4, le) as usize;
        let kind = u32_at(b, at + 8, le) as u32;
        let name_at = at + 12;
        let Some(name) = b.get(name_at..name_at.saturating_add(namesz)) else {
            return false;
        };
        let name_trimmed: &[u8] = match name.iter().position(|&c| c == 0) {
            Some(z) => &name[..z],
            None => name,
        };
        if name_trimmed == b"Go" && kind == NT_GO_BUILDID {
            return true;
        }
        let pad = |n: usize| n.div_ceil(4) * 4;
        at = name_at
            .saturating_add(pad(namesz))
            .saturating_add(pad(descsz));
    }
    false
}

fn has_go_section(
    r: &mut Reader,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
) -> Option<bool> {
    let (le, wide) = (r.le, r.wide);
    let min_sh = if wide { 64 } else { 40 };
    if shoff == 0 || shnum == 0 || shentsize < min_sh || shstrndx >= shnum {
        return Some(false);
    }
    let shdrs = r.bytes(shoff, (shentsize * shnum) as usize)?;
    let sh = |i: u64| &shdrs[(i * shentsize) as usize..];
    let (str_off, str_size) = {
        let s = sh(shstrndx);
        if wide {
            (u64_at(s, 0x18, le), u64_at(s, 0x20, le))
        } else {
            (u32_at(s, 0x10, le), u32_at(s, 0x14, le))
        }
    };
    if str_size > 1 << 24 {
        return Some(false);
    }
    let names = r.bytes(str_off, str_size as usize)?;
    for i in 0..shnum {
        let name_off = u32_at(sh(i), 0, le) as usize;
        let Some(rest) = names.get(name_off..) else {
            continue;
        };
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        let name = &rest[..end];
        if name == b".go.buildinfo" || name == b".note.go.buildid" {
            return Some(true);
        }
    }
    Some(false)
}

/// The interpreter of a `#!` script: the first word of the line, or with `/usr/bin/env` the first
/// word after it that is not an option or `VAR=value`, looked up on `PATH`.
fn script_interpreter(path: &Path) -> Option<PathBuf> {
    let mut f = File::open(path).ok()?;
    let mut buf = [0u8; 256];
    let n = read_up_to(&mut f, &mut buf).ok()?;
    let line = &buf[2..n];
    let line = &line[..line.iter().position(|&c| c == b'\n').unwrap_or(line.len())];
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if Path::new(first).file_name().is_some_and(|n| n == "env") {
        let prog = words.find(|w| !w.starts_with('-') && !w.contains('='))?;
        return crate::which::which(std::ffi::OsStr::new(prog));
    }
    Some(PathBuf::from(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_note() {
        let mut b = Vec::new();
        // An unrelated GNU note first, then the Go build ID note.
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&20u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(b"GNU\0");
        b.extend_from_slice(&[0u8; 20]);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&5u32.to_le_bytes());
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(b"Go\0\0");
        b.extend_from_slice(b"abcde\0\0\0");
        assert!(has_go_note(&b, true));
        assert!(!has_go_note(&b[..32], true));
        assert!(!has_go_note(&[], true));
    }

    #[test]
    fn this_test_binary_is_dynamic_and_not_go() {
        let me = std::env::current_exe().unwrap();
        match inspect(&me).unwrap() {
            Kind::Elf(e) => {
                assert!(e.interp && e.dynamic && !e.go, "{e:?}");
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn scripts_and_other_files() {
        let dir = std::env::temp_dir().join(format!("dnsfo-elf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = dir.join("s");
        std::fs::write(&s, "#!/bin/sh -e\necho hi\n").unwrap();
        assert_eq!(inspect(&s).unwrap(), Kind::Script(Some("/bin/sh".into())));
        std::fs::write(&s, "#!/usr/bin/env -S sh -e\n").unwrap();
        assert!(matches!(inspect(&s).unwrap(), Kind::Script(Some(p)) if p.ends_with("sh")));
        std::fs::write(&s, "hello").unwrap();
        assert_eq!(inspect(&s).unwrap(), Kind::Other);
        std::fs::write(&s, b"\x7fELF\x02\x01").unwrap();
        assert_eq!(inspect(&s).unwrap(), Kind::Other);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
