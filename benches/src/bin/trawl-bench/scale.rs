//! `trawl-bench scale`: a 20 GiB sparse image and a 2 GiB mixed image
//! through a scheduler and 1, 2 and 4 worker processes on loopback:
//! throughput, speedup, peak RSS per worker against the bound
//! (shard size x slots + 256 MiB).
//!
//! `trawl-bench pipeline`: the full pipeline (hash, carve, features, YARA)
//! embedded on the 2 GiB mixed image, median of runs.

use anyhow::{Context, Result, bail, ensure};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The bundled demo rules (fixtures/rules/demo.yar) unless --rules.
fn rules(args: &[String]) -> PathBuf {
    arg(args, "--rules")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rules/demo.yar"))
}

/// The 2 GiB (or --mixed-size) mixed-content image: planted files of every
/// type, text with features, noise (`trawl_fixtures::Config::bulk`).
pub fn mixed_image(dir: &Path, size: u64) -> Result<PathBuf> {
    let name = format!("bulk-{size}");
    let img = dir.join(format!("{name}.raw"));
    if std::fs::metadata(&img).map(|m| m.len()).ok() != Some(size) {
        trawl_fixtures::write(&trawl_fixtures::Config::bulk(size, 5), dir, &name)?;
    }
    Ok(img)
}

fn sparse_image(dir: &Path, size: u64) -> Result<PathBuf> {
    let img = dir.join(format!("sparse-{size}.raw"));
    if std::fs::metadata(&img).map(|m| m.len()).ok() != Some(size) {
        let f = std::fs::File::create(&img).with_context(|| img.display().to_string())?;
        f.set_len(size)?;
    }
    Ok(img)
}

/// Peak resident set (VmHWM) of a live process, in KiB.
fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) struct Killed(pub(crate) Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns a `trawl scheduler` command and reads the address from the first
/// line it prints ("trawl-scheduler listening on ADDR").
pub(crate) fn spawn_scheduler(mut cmd: Command) -> Result<(Killed, String)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .context("starting trawl scheduler")?;
    let mut line = String::new();
    let out = child.stdout.take().context("piped stdout")?;
    let child = Killed(child);
    std::io::BufReader::new(out).read_line(&mut line)?;
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(
        addr.contains(':'),
        "the scheduler did not say where it listens (said {line:?})"
    );
    Ok((child, addr))
}

/// A scheduler (uninitialised, on a loopback port, `data` as its state)
/// and `workers` worker processes of `slots` slots, `root` the only
/// evidence root: the processes (killed when dropped) and the scheduler's
/// URL.
pub(crate) fn start_cluster(
    trawl: &Path,
    data: &Path,
    root: &str,
    workers: usize,
    slots: usize,
    id_prefix: &str,
) -> Result<(Killed, String, Vec<Killed>)> {
    start_cluster_with(trawl, data, &[root], workers, slots, id_prefix, &[])
}

/// [`start_cluster`] with several evidence roots (`s3://` prefixes
/// included) and environment variables for every process (object-store
/// credentials).
pub(crate) fn start_cluster_with(
    trawl: &Path,
    data: &Path,
    roots: &[&str],
    workers: usize,
    slots: usize,
    id_prefix: &str,
    env: &[(String, String)],
) -> Result<(Killed, String, Vec<Killed>)> {
    let root_args: Vec<&str> = roots.iter().flat_map(|r| ["--evidence-root", *r]).collect();
    let mut cmd = Command::new(trawl);
    cmd.args(["scheduler", "--data", data.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .args(&root_args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("TRAWL_LOG", "error")
        .stderr(Stdio::null());
    let (sched, addr) = spawn_scheduler(cmd)?;
    let url = format!("http://{addr}");
    let mut ws = Vec::new();
    for i in 0..workers {
        ws.push(Killed(
            Command::new(trawl)
                .args(["worker", "--scheduler", &url])
                .args(["--worker-id", &format!("{id_prefix}{i}")])
                .args(&root_args)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .args(["--slots", &slots.to_string(), "--drain-seconds", "0"])
                .env("TRAWL_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        ));
    }
    std::thread::sleep(Duration::from_millis(300));
    Ok((sched, url, ws))
}

/// One job through a fresh scheduler and `workers` worker processes:
/// (wall seconds from submit to results, peak RSS of each worker in KiB).
pub fn cluster_run(
    trawl: &Path,
    img: &Path,
    workers: usize,
    slots: usize,
    job_args: &[String],
    work: &Path,
) -> Result<(f64, Vec<u64>)> {
    let data = work.join("scale-data");
    let out = work.join("scale-out");
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&out);
    // The image is the only evidence the scheduler and the workers may read.
    let root = img.to_str().unwrap();
    let (_sched, url, ws) = start_cluster(trawl, &data, root, workers, slots, "scale-w")?;
    let t = Instant::now();
    let o = Command::new(trawl)
        .args([
            "submit",
            img.to_str().unwrap(),
            "--server",
            &url,
            "--case",
            "scale",
        ])
        .args(job_args)
        .output()?;
    ensure!(
        o.status.success(),
        "submit: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let job = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let st = Command::new(trawl)
        .args(["watch", &job, "--server", &url])
        .stdout(Stdio::null())
        .status()?;
    ensure!(st.success(), "job {job} did not complete");
    let st = Command::new(trawl)
        .args([
            "results",
            &job,
            "--server",
            &url,
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .status()?;
    ensure!(st.success(), "results of {job}");
    let wall = t.elapsed().as_secs_f64();
    let rss = ws.iter().map(|w| peak_rss_kb(w.0.id())).collect();
    drop(ws);
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&data);
    Ok((wall, rss))
}

pub fn scale(trawl: &Path, args: &[String]) -> Result<()> {
    let dir = PathBuf::from(
        arg(args, "--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    );
    let sparse = trawl_core::size::parse_size(
        &arg(args, "--sparse-size").unwrap_or_else(|| "20GiB".into()),
    )?;
    let mixed =
        trawl_core::size::parse_size(&arg(args, "--mixed-size").unwrap_or_else(|| "2GiB".into()))?;
    let runs: usize = arg(args, "--runs").unwrap_or_else(|| "1".into()).parse()?;
    let slots: usize = arg(args, "--slots").unwrap_or_else(|| "3".into()).parse()?;
    let counts: Vec<usize> = arg(args, "--workers")
        .unwrap_or_else(|| "1,2,4".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let rules = rules(args);
    if !rules.exists() {
        bail!("{}: rules not found (--rules)", rules.display());
    }
    let shard: u64 = 64 << 20;
    let bound_mib = (shard >> 20) * slots as u64 + 256;
    let job_args: Vec<String> = [
        "--analyses",
        "all",
        "--rules",
        rules.to_str().unwrap(),
        "--shard-size",
        "64MiB",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let work = dir.join(format!("trawl-scale-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let images = [
        ("sparse", sparse_image(&dir, sparse)?, sparse),
        ("mixed", mixed_image(&dir, mixed)?, mixed),
    ];
    println!(
        "Scheduler and N `trawl worker` processes on loopback, {slots} slots each, shard 64 MiB, analyses hash+carve+features+YARA ({}), submit → watch → results; {runs} run(s) per point, median; {cores} cores. Peak RSS is each worker's VmHWM; the bound is shard size × slots + 256 MiB = {bound_mib} MiB.\n",
        rules
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("rules")
    );
    println!(
        "| image | workers | median wall (s) | MB/s | speedup vs 1 | peak RSS per worker (MiB) | within bound |\n|---|---:|---:|---:|---:|---|---|"
    );
    let mut all_within = true;
    let mut best_speedup = 0.0f64;
    for (kind, img, size) in &images {
        let mut base = None;
        for &n in &counts {
            let mut walls = Vec::new();
            let mut rss = Vec::new();
            for _ in 0..runs {
                let (w, r) = cluster_run(trawl, img, n, slots, &job_args, &work)?;
                walls.push(w);
                rss = r;
            }
            let w = trawl_benches::median(walls);
            let b = *base.get_or_insert(w);
            let rss_mib: Vec<f64> = rss.iter().map(|k| *k as f64 / 1024.0).collect();
            let within = rss_mib.iter().all(|m| *m <= bound_mib as f64);
            best_speedup = best_speedup.max(b / w);
            all_within &= within;
            println!(
                "| {kind} {} | {n} | {w:.2} | {:.0} | {:.2}x | {} | {} |",
                trawl_benches::human(*size),
                *size as f64 / 1e6 / w,
                b / w,
                rss_mib
                    .iter()
                    .map(|m| format!("{m:.0}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if within { "yes" } else { "NO" }
            );
        }
    }
    println!(
        "\nAll these worker processes share this machine's {cores} cores, so the speedup cannot pass {cores} here (best measured: {best_speedup:.2}x; one worker already keeps both cores busy on the mixed image, and the sequential MD5/SHA-1/SHA-256 stream of the whole image bounds the sparse one): more workers add throughput only across machines. Peak RSS within the bound for every worker: {}.",
        if all_within { "yes" } else { "NO" }
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

pub fn pipeline(trawl: &Path, args: &[String]) -> Result<()> {
    let dir = PathBuf::from(
        arg(args, "--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    );
    let size = trawl_core::size::parse_size(&arg(args, "--size").unwrap_or_else(|| "2GiB".into()))?;
    let runs: usize = arg(args, "--runs").unwrap_or_else(|| "3".into()).parse()?;
    let rules = rules(args);
    let img = mixed_image(&dir, size)?;
    let out = dir.join("trawl-pipeline-out");
    let (t, i, o, r) = (
        trawl.display().to_string(),
        img.display().to_string(),
        out.display().to_string(),
        rules.display().to_string(),
    );
    let scan = |name: &str, analyses: &str| {
        trawl_benches::Contender::new(
            name,
            &[
                "sh",
                "-c",
                &format!("{t} scan {i} --out {o} {analyses} >/dev/null"),
            ],
        )
        .prep(&trawl_benches::fresh_output(&o, &i))
    };
    let yara = format!("--analyses yara --rules {r}");
    let all = format!("--analyses all --rules {r}");
    let mut c = vec![
        scan("trawl scan --analyses all (hash+carve+features+yara)", &all),
        scan("trawl scan --analyses hash", "--analyses hash"),
        scan("trawl scan --analyses carve", "--analyses carve"),
        scan("trawl scan --analyses features", "--analyses features"),
        scan("trawl scan --analyses yara", &yara),
    ];
    // `--baseline BIN`: an earlier build of trawl on the same full
    // pipeline, alternating with this one (what a change costs or gains).
    let baseline = arg(args, "--baseline");
    if let Some(b) = &baseline {
        c.push(
            trawl_benches::Contender::new(
                "baseline build: trawl scan --analyses all",
                &[
                    "sh",
                    "-c",
                    &format!("{b} scan {i} --out {o} {all} >/dev/null"),
                ],
            )
            .prep(&trawl_benches::fresh_output(&o, &i)),
        );
    }
    trawl_benches::race(&mut c, runs);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "Input: {} ({size} bytes, `Config::bulk`), rules {}, embedded scan writing the full report directory into an empty folder (the previous run's output moved aside, deleted after the section), {runs} runs each after a warm-up, alternating, {cores} cores.\n",
        img.display(),
        rules
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("rules")
    );
    println!("{}", trawl_benches::table(&c, size));
    let w = c[0].median_wall();
    println!(
        "full pipeline: {:.0} MB/s (target >= 250 MB/s on 2 cores)",
        size as f64 / 1e6 / w
    );
    if let (Some(b), Some(base)) = (&baseline, c.last()) {
        println!(
            "\nfull pipeline against the baseline build ({b}): {:.0} vs {:.0} MB/s, this build takes {:.3}x the baseline's wall time ({:.3}x its CPU time)",
            size as f64 / 1e6 / w,
            size as f64 / 1e6 / base.median_wall(),
            w / base.median_wall(),
            c[0].median_cpu() / base.median_cpu()
        );
    }
    trawl_benches::clean_outputs(&o);
    Ok(())
}

/// The machine and tool versions, for BENCHMARKS.md.
fn machine() -> String {
    let sh = |c: &str| {
        Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let mut s = String::new();
    s.push_str(&format!(
        "- CPU: {} ({} cores online)\n",
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'"),
        sh("nproc")
    ));
    s.push_str(&format!(
        "- memory: {}\n",
        sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    ));
    s.push_str(&format!(
        "- OS: {}, kernel {}\n",
        sh(". /etc/os-release && echo $PRETTY_NAME"),
        sh("uname -r")
    ));
    s.push_str(&format!(
        "- trawl {} (release build, `cargo build --release --locked`)\n",
        env!("CARGO_PKG_VERSION")
    ));
    for (tool, cmd) in [
        ("b3sum", "b3sum --version"),
        ("hashdeep", "hashdeep -V"),
        ("openssl", "openssl version"),
        ("yara", "yara --version"),
        ("foremost", "foremost -V 2>&1 | head -1"),
        ("scalpel", "scalpel -V 2>&1 | head -1"),
    ] {
        let v = sh(&format!("{cmd} 2>/dev/null | head -1"));
        s.push_str(&format!(
            "- {tool}: {}\n",
            if v.is_empty() {
                "not installed"
            } else {
                v.as_str()
            }
        ));
    }
    s
}

/// `trawl-bench all --out BENCHMARKS.md`: every comparison, one document.
pub fn all(args: &[String]) -> Result<()> {
    let out = PathBuf::from(arg(args, "--out").unwrap_or_else(|| "BENCHMARKS.md".into()));
    let quick = args.iter().any(|a| a == "--quick");
    let dir = arg(args, "--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string());
    let me = std::env::current_exe()?;
    // An earlier build of trawl to compare the pipeline and YARA sections with.
    let baseline = arg(args, "--baseline");
    let sections: Vec<(&str, &str, Vec<String>)> = vec![
        (
            "Hashing",
            "trawl's four hashes (and BLAKE3 alone) against openssl, b3sum and hashdeep on 1 GiB of random bytes.",
            vec![
                "hash".into(),
                "--size".into(),
                if quick { "256MiB" } else { "1GiB" }.into(),
                "--runs".into(),
                if quick { "2" } else { "5" }.into(),
            ],
        ),
        (
            "Carving",
            "Recall and precision against ground truth (fixture manifests, the DFTT #8 answer key, the DFRWS 2006/2007 layouts rebuilt from ../shared/corpora), then throughput against foremost and scalpel on a mixed image.",
            vec![
                "carve".into(),
                "--size".into(),
                if quick { "256MiB" } else { "1GiB" }.into(),
                "--runs".into(),
                "2".into(),
            ],
        ),
        (
            "Features",
            "Every scanner alone and together, one core, mixed data; false positives on random bytes (bulk_extractor is not packaged by Debian: no peer run here).",
            vec![
                "features".into(),
                "--size".into(),
                if quick { "64MiB" } else { "256MiB" }.into(),
                "--each".into(),
            ],
        ),
        (
            "YARA",
            "The largest public rule set of ../shared/corpora (yara-rules-community) on the same image: trawl against `yara -p 2`.",
            vec![
                "yara".into(),
                "--size".into(),
                if quick { "64MiB" } else { "256MiB" }.into(),
                "--runs".into(),
                "2".into(),
            ]
            .into_iter()
            .chain(
                baseline
                    .iter()
                    .flat_map(|b| ["--baseline".to_string(), b.clone()]),
            )
            .collect(),
        ),
        (
            "File systems",
            "The `files` analysis (listing, MD5+SHA-1+SHA-256 of every file, the five file reports) against `fiwalk -X` on an ext4 image of many small files built with `mke2fs -d`.",
            vec![
                "files".into(),
                "--files".into(),
                if quick { "20000" } else { "110000" }.into(),
                "--size".into(),
                if quick { "1GiB" } else { "4GiB" }.into(),
                "--runs".into(),
                if quick { "1" } else { "3" }.into(),
            ],
        ),
        (
            "Virtual-machine disks",
            "Hashing a dynamic VHDX and a compressed QCOW2 (made by qemu-img from the mixed-content image) against `qemu-img convert -O raw` and `md5sum` of the same container.",
            vec![
                "vdisk".into(),
                "--size".into(),
                if quick { "256MiB" } else { "2GiB" }.into(),
                "--runs".into(),
                if quick { "1" } else { "3" }.into(),
            ],
        ),
        (
            "Cluster overhead",
            "The embedded scan against a scheduler and 2 worker processes on loopback, same image; the scheduler's lease/report rate.",
            vec![
                "cluster".into(),
                "--size".into(),
                if quick { "256MiB" } else { "1GiB" }.into(),
                "--runs".into(),
                "3".into(),
            ],
        ),
        (
            "Full pipeline",
            "Every analysis at once on the 2 GiB mixed image, and each alone.",
            vec![
                "pipeline".into(),
                "--size".into(),
                if quick { "512MiB" } else { "2GiB" }.into(),
                "--runs".into(),
                if quick { "1" } else { "3" }.into(),
            ]
            .into_iter()
            .chain(
                baseline
                    .iter()
                    .flat_map(|b| ["--baseline".to_string(), b.clone()]),
            )
            .collect(),
        ),
        (
            "Scale",
            "The 20 GiB sparse and 2 GiB mixed images through 1, 2 and 4 worker processes.",
            vec![
                "scale".into(),
                "--sparse-size".into(),
                if quick { "4GiB" } else { "20GiB" }.into(),
                "--mixed-size".into(),
                if quick { "512MiB" } else { "2GiB" }.into(),
            ],
        ),
    ];
    let mut doc = String::new();
    doc.push_str("# trawl benchmarks\n\nGenerated by `trawl-bench all --out BENCHMARKS.md` (see \"Reproduce\" below); every ratio compares tools on the same input in the same run, runs alternating, medians reported. Absolute times on a shared machine are noise; ratios are the result.\n\n");
    doc.push_str(&format!(
        "Run {} UTC{}.\n\n## Machine\n\n{}\n",
        time_now(),
        if quick {
            " with --quick (smaller inputs)"
        } else {
            ""
        },
        machine()
    ));
    for (title, what, mut a) in sections {
        a.extend(["--dir".to_string(), dir.clone()]);
        eprintln!("trawl-bench all: {title} ...");
        let t = Instant::now();
        let o = Command::new(&me)
            .args(&a)
            .stderr(Stdio::inherit())
            .output()?;
        let text = String::from_utf8_lossy(&o.stdout);
        doc.push_str(&format!(
            "## {title}\n\n{what}\n\n`trawl-bench {}`\n\n",
            a.join(" ")
        ));
        if o.status.success() {
            doc.push_str(text.trim());
        } else {
            doc.push_str(&format!(
                "(failed, exit {:?})\n\n{}",
                o.status.code(),
                text.trim()
            ));
        }
        doc.push_str(&format!("\n\n({:.0} s)\n\n", t.elapsed().as_secs_f64()));
        std::fs::write(&out, &doc)?;
    }
    doc.push_str("## Reproduce\n\n```sh\nTRAWL_SETUP_BENCH=1 ./scripts/setup.sh          # the peers: hashdeep, yara, foremost, scalpel, b3sum, fiwalk\ncargo build --release --locked -p trawl-cli -p trawl-benches\ntarget/release/trawl-bench all --out BENCHMARKS.md   # about 15 minutes on 2 cores; --quick for a smaller run\n```\n\nEach section's command line above reruns that section alone. Criterion micro-benchmarks per analyzer: `cargo bench -p trawl-benches` (hashing, carving, features, yara).\n");
    std::fs::write(&out, &doc)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn time_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
