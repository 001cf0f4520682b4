//! Which version a `libdnsfo.so` file is, read from the file without loading it (loading it into
//! the command would put its hooks in the command's own process).
//!
//! Owns: finding the library's version tag. Must never: `dlopen` the library.

use std::io::Read;
use std::path::Path;

/// What the library puts before its version (`lifecycle::VERSION_TAG`).
pub const TAG: &[u8] = b"dnsfo-library-version ";
/// Library files larger than this are not read whole (a release build is a few MB, a debug one
/// tens).
const MAX_READ: u64 = 256 << 20;

/// The version the library file at `path` carries, if it carries one.
pub fn of_library(path: &Path) -> Option<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_READ)
        .read_to_end(&mut bytes)
        .ok()?;
    of_bytes(&bytes)
}

fn of_bytes(bytes: &[u8]) -> Option<String> {
    let at = bytes.windows(TAG.len()).position(|w| w == TAG)? + TAG.len();
    let rest = &bytes[at..];
    let end = rest.iter().take(64).position(|&b| b == 0)?;
    let v = std::str::from_utf8(&rest[..end]).ok()?;
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic())).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tag() {
        assert_eq!(
            of_bytes(b"\x7fELF...dnsfo-library-version 1.2.3\0more"),
            Some("1.2.3".into())
        );
        assert_eq!(of_bytes(b"dnsfo-library-version \0"), None);
        assert_eq!(of_bytes(b"nothing here"), None);
        assert_eq!(of_bytes(b"dnsfo-library-version 1.2.3"), None, "no end");
    }
}
