//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use trawl_known::Digests;

/// MD5, SHA-1 and SHA-256 of `data`, computed here (not by the crate).
pub fn digests_of(data: &[u8]) -> Digests {
    Digests {
        md5: Some(Md5::digest(data).into()),
        sha1: Some(Sha1::digest(data).into()),
        sha256: Some(Sha256::digest(data).into()),
    }
}

/// Files with awkward names (space, comma, backslash, non-ASCII) and their
/// contents, written into `dir`.
pub fn write_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("plain.txt", b"hello, known files\n".to_vec()),
        ("with space.bin", (0u8..=255).collect()),
        ("a,b,c.csv", b"1,2,3\n".repeat(100)),
        ("back\\slash", b"backslash name".to_vec()),
        ("caf\u{e9}.doc", vec![0xAA; 5000]),
    ];
    files
        .into_iter()
        .map(|(n, d)| {
            let p = dir.join(n);
            std::fs::write(&p, &d).unwrap();
            (p, d)
        })
        .collect()
}

/// True when `tool` runs (`tool --version`).
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty())
}

/// Runs `tool args` in `dir`; its stdout (the command must succeed).
pub fn run_in(dir: &Path, tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Deterministic pseudo-random bytes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for c in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }

    pub fn digests(&mut self) -> Digests {
        let mut d = Digests::default();
        let (mut a, mut b, mut c) = ([0u8; 16], [0u8; 20], [0u8; 32]);
        self.fill(&mut a);
        self.fill(&mut b);
        self.fill(&mut c);
        d.md5 = Some(a);
        d.sha1 = Some(b);
        d.sha256 = Some(c);
        d
    }
}
