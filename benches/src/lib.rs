//! Shared helpers of the benchmark harness: timing external commands
//! (wall, CPU, peak RSS), medians, ratio tables.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// One measured run of a command.
#[derive(Debug, Clone, Copy, Default)]
pub struct Run {
    pub wall: f64,
    pub cpu: f64,
    pub max_rss_kb: u64,
}

/// Runs `argv` (through GNU time when installed, for CPU and peak RSS),
/// discarding its output. Panics with the command's stderr if it fails.
pub fn measure(argv: &[String]) -> Run {
    let gnu_time = Path::new("/usr/bin/time").exists();
    let mut cmd = if gnu_time {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "TRAWLBENCH %e %U %S %M"]).args(argv);
        c
    } else {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    let t = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {argv:?}: {e}"));
    let wall = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{argv:?} failed: {err}");
    let mut run = Run {
        wall,
        cpu: 0.0,
        max_rss_kb: 0,
    };
    if let Some(line) = err.lines().rev().find(|l| l.starts_with("TRAWLBENCH ")) {
        let f: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() == 4 {
            run = Run {
                wall: f[0].max(wall.min(f[0] + 0.05)),
                cpu: f[1] + f[2],
                max_rss_kb: f[3] as u64,
            };
        }
    }
    run
}

/// Median of values.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Whether a command is installed.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A named command measured several times, alternating with the others.
#[derive(Debug, Clone)]
pub struct Contender {
    pub name: String,
    pub argv: Vec<String>,
    /// Shell run, untimed, before each run (e.g. removing the last output).
    pub prep: Option<String>,
    pub runs: Vec<Run>,
}

impl Contender {
    pub fn new(name: &str, argv: &[&str]) -> Self {
        Self {
            name: name.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            prep: None,
            runs: Vec::new(),
        }
    }
    /// Runs `sh -c prep` untimed before each run.
    pub fn prep(mut self, prep: &str) -> Self {
        self.prep = Some(prep.to_string());
        self
    }
    pub fn median_wall(&self) -> f64 {
        median(self.runs.iter().map(|r| r.wall).collect())
    }
    pub fn median_cpu(&self) -> f64 {
        median(self.runs.iter().map(|r| r.cpu).collect())
    }
    pub fn max_rss_mb(&self) -> f64 {
        self.runs.iter().map(|r| r.max_rss_kb).max().unwrap_or(0) as f64 / 1024.0
    }
}

/// A preparation that gives the next run an empty output folder `out`
/// on an even footing: the last output is moved aside (to `out.old.N`,
/// deleted by [`clean_outputs`] after the section), written back, the
/// kernel's caches dropped, then `image` is read back into the page cache.
/// Moved, not deleted: ext4 skips inodes freed in the last minute when it
/// allocates new ones, so deleting thousands of carved files right before a
/// run charges that run's file creation with the previous run's deletion
/// (up to several times slower, and still a third of the report writing
/// after a sync and a cache drop), which no investigator writing a fresh
/// report sees. Dropping caches needs root; without it the preparation
/// still moves and syncs.
pub fn fresh_output(out: &str, image: &str) -> String {
    format!(
        "if [ -e {out} ]; then mv {out} {out}.old.$(date +%s%N); fi; sync; (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; cat {image} > /dev/null"
    )
}

/// As [`fresh_output`], but deleting the last output: for tools whose
/// outputs are too large to keep until the end of a section (scalpel
/// writes gigabytes per run).
pub fn fresh_output_deleting(out: &str, image: &str) -> String {
    format!(
        "rm -rf {out}; sync; (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; cat {image} > /dev/null"
    )
}

/// Removes a benchmark's output folders.
pub fn clean_outputs(out: &str) {
    let _ = Command::new("sh")
        .args(["-c", &format!("rm -rf {out} {out}.old.*")])
        .status();
}

/// Untimed: the contender's preparation, then `sync`, so that writing back
/// the previous run's output does not land in this run's time.
fn settle(c: &Contender) {
    let script = format!("{}\nsync", c.prep.as_deref().unwrap_or(":"));
    let _ = Command::new("sh").args(["-c", &script]).status();
}

/// Runs every contender `runs` times, alternating (round-robin), after one
/// warm-up round that is not counted. Before each run: the contender's
/// preparation and `sync`, untimed.
pub fn race(contenders: &mut [Contender], runs: usize) {
    for c in contenders.iter() {
        settle(c);
        measure(&c.argv);
    }
    for _ in 0..runs {
        for c in contenders.iter_mut() {
            settle(c);
            let r = measure(&c.argv);
            c.runs.push(r);
        }
    }
}

/// A Markdown table: median wall, MB/s, CPU, peak RSS.
pub fn table(contenders: &[Contender], bytes: u64) -> String {
    let mut s = String::from(
        "| command | median wall (s) | MB/s | median CPU (s) | peak RSS (MiB) |\n|---|---:|---:|---:|---:|\n",
    );
    for c in contenders {
        let w = c.median_wall();
        s.push_str(&format!(
            "| {} | {:.3} | {:.0} | {:.2} | {:.0} |\n",
            c.name,
            w,
            bytes as f64 / 1e6 / w,
            c.median_cpu(),
            c.max_rss_mb()
        ));
    }
    s
}

/// Writes `size` bytes of incompressible deterministic data to `path`.
pub fn random_file(path: &Path, size: u64, seed: u64) -> std::io::Result<()> {
    use rand::{RngCore, SeedableRng};
    use std::io::Write;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut f = std::io::BufWriter::with_capacity(1 << 22, std::fs::File::create(path)?);
    let mut buf = vec![0u8; 1 << 22];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()
}

/// A size in binary units: "20 GiB", "512 MiB".
pub fn human(bytes: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", U[i])
    } else {
        format!("{v:.1} {}", U[i])
    }
}
