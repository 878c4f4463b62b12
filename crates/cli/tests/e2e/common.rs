//! Shared helpers: running the binary, fixtures, corpora, peer tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `trawl` binary under test.
pub fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

/// Runs `trawl` with `args`, returning its output.
pub fn run(args: &[&str]) -> Output {
    trawl().args(args).output().expect("running trawl")
}

/// Runs `trawl` and asserts success.
pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "trawl {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// The reference corpora, or `None` (after printing that the test is
/// skipped) when they are not present.
pub fn corpora(test: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora");
    if p.is_dir() {
        Some(p.canonicalize().expect("canonicalize corpora"))
    } else {
        trawl_fixtures::skip(test, "../shared/corpora");
        None
    }
}

/// Runs a command that must succeed (a file-system builder, a peer tool),
/// its output in the failure message.
pub fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether every tool of `list` is installed; the first missing one is
/// reported as the reason `test` is skipped (a failure in CI).
pub fn tools(test: &str, list: &[&str]) -> bool {
    for t in list {
        if !have(t) {
            trawl_fixtures::skip(test, t);
            return false;
        }
    }
    true
}

/// Whether a command is installed.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// First whitespace-separated word of a tool's output on `path`
/// (md5sum, sha1sum, sha256sum, b3sum).
pub fn tool_hash(tool: &str, path: &Path) -> String {
    let out = Command::new(tool).arg(path).output().expect(tool);
    assert!(out.status.success(), "{tool} failed on {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// BLAKE3 as `b3sum` prints it (b3sum itself when installed, otherwise the
/// reference implementation it is built on).
pub fn b3sum(path: &Path) -> String {
    if have("b3sum") {
        tool_hash("b3sum", path)
    } else {
        let data = std::fs::read(path).expect("read");
        blake3::hash(&data).to_hex().to_string()
    }
}

/// A generated fixture on disk: (image path, manifest path).
pub struct FixtureFiles {
    _dir: tempfile::TempDir,
    pub image: PathBuf,
    #[allow(dead_code)] // read by the carving and feature tests
    pub manifest: PathBuf,
}

fn make_fixture(cfg: &trawl_fixtures::Config, name: &str) -> FixtureFiles {
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, manifest) = trawl_fixtures::write(cfg, dir.path(), name).expect("fixture");
    FixtureFiles {
        _dir: dir,
        image,
        manifest,
    }
}

/// The small fixture (8 MiB), generated once per test run.
pub fn small_fixture() -> &'static FixtureFiles {
    static F: OnceLock<FixtureFiles> = OnceLock::new();
    F.get_or_init(|| make_fixture(&trawl_fixtures::Config::small(), "small"))
}

/// Reads `DIR/report.json`.
pub fn report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json is JSON")
}

/// `report.json`'s hashes as (md5, sha1, sha256, blake3).
pub fn report_hashes(dir: &Path) -> [String; 4] {
    let r = report(dir);
    let h = &r["hashes"];
    ["md5", "sha1", "sha256", "blake3"].map(|k| h[k].as_str().unwrap_or_default().to_string())
}

/// Peer hashes of a file: (md5sum, sha1sum, sha256sum, b3sum).
pub fn peer_hashes(path: &Path) -> [String; 4] {
    [
        tool_hash("md5sum", path),
        tool_hash("sha1sum", path),
        tool_hash("sha256sum", path),
        b3sum(path),
    ]
}

/// Runs an mtools command (`mcopy`, `mdel`, `mmd`, ...) on the FAT image
/// `fat`: `args[0]` is the command, the rest its arguments.
pub fn mtools(fat: &Path, args: &[&str]) {
    sh(Command::new(args[0])
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(fat)
        .args(&args[1..]));
}

/// Writes `data` to `dir/name` and returns the path.
pub fn put_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// An image of zeros with `tokens` planted 4 KiB apart, each between
/// spaces and newlines (the lab's-memory tests plant indicators so).
pub fn planted_image(dir: &Path, name: &str, tokens: &[&str]) -> PathBuf {
    let mut v = vec![0u8; 4096 * (tokens.len() + 2)];
    for (i, t) in tokens.iter().enumerate() {
        let line = format!("\n {t} \n");
        let at = 4096 * (i + 1);
        v[at..at + line.len()].copy_from_slice(line.as_bytes());
    }
    let p = dir.join(name);
    std::fs::write(&p, v).unwrap();
    p
}

/// Calls `f` every 200 ms until it gives a value, for at most `secs`.
pub fn poll_until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
