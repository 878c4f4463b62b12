//! End-to-end comparison harness: trawl against the peers on the same input
//! in the same run, alternating runs, medians and ratios.
//!
//! ```text
//! trawl-bench hash [--size 1GiB] [--runs 5] [--dir /tmp]
//! ```
mod carve;
mod features;
mod files;
mod labyear;
mod objstore;
mod retro;
mod scale;
mod vdisk;
mod yara;

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use trawl_benches::{Contender, have, race, random_file, table};

pub(crate) fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The last line of a command's stdout (a job id after `trawl submit`).
pub(crate) fn last_line(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Runs `trawl ARGS`, failing with its stderr when it fails.
pub(crate) fn run(trawl: &std::path::Path, args: &[&str]) -> Result<std::process::Output> {
    let o = std::process::Command::new(trawl).args(args).output()?;
    anyhow::ensure!(
        o.status.success(),
        "trawl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(o)
}

/// Waits until the scheduler has planned job `id` (it has tasks).
pub(crate) async fn wait_planned(
    jobs: &mut trawl_proto::v1::jobs_client::JobsClient<tonic::transport::Channel>,
    id: &str,
) -> Result<()> {
    loop {
        let j = jobs
            .get_job(trawl_proto::v1::GetJobRequest { job_id: id.into() })
            .await?
            .into_inner();
        if j.progress.is_some_and(|p| p.tasks_total > 0) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub(crate) fn trawl_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.with_file_name("trawl")
}

/// trawl-bench: trawl against its peers on the same input in the same run
/// (alternating runs, medians and ratios).
#[derive(clap::Parser, Debug)]
#[command(name = "trawl-bench")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

/// Options shared by the timed sections.
#[derive(clap::Args, Debug, Default)]
struct Common {
    /// Scratch directory for the generated images [default: the temp dir].
    #[arg(long)]
    dir: Option<String>,
    /// Runs of each contender.
    #[arg(long)]
    runs: Option<String>,
    /// Image size (e.g. 1GiB).
    #[arg(long)]
    size: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum Bench {
    /// Every section below, one document (yara and pipeline also timed
    /// with an earlier build).
    All {
        /// Where the document goes (e.g. BENCHMARKS.md).
        #[arg(long)]
        out: Option<String>,
        /// Smaller inputs, fewer runs.
        #[arg(long)]
        quick: bool,
        #[arg(long)]
        dir: Option<String>,
        /// An earlier trawl binary to time as well.
        #[arg(long)]
        baseline: Option<String>,
    },
    /// Hashing: trawl against openssl, b3sum, hashdeep.
    Hash(Common),
    /// Carving: trawl against foremost and scalpel (throughput and
    /// accuracy).
    Carve {
        #[command(flatten)]
        common: Common,
        /// Skip the accuracy part.
        #[arg(long)]
        no_accuracy: bool,
        /// Skip the throughput part.
        #[arg(long)]
        no_throughput: bool,
    },
    /// Feature scanners, per core.
    Features {
        #[arg(long)]
        size: Option<String>,
        #[arg(long)]
        seed: Option<String>,
        /// Scanners (comma-separated).
        #[arg(long)]
        scanners: Option<String>,
        /// Each scanner alone too.
        #[arg(long)]
        each: bool,
        #[arg(long)]
        dir: Option<String>,
    },
    /// YARA: trawl against yara on the same rule set.
    Yara {
        #[command(flatten)]
        common: Common,
        /// Rule directory.
        #[arg(long)]
        rules: Option<String>,
        #[arg(long)]
        baseline: Option<String>,
    },
    /// Which rules an image leaves live (diagnostics of the rule-set
    /// index).
    YaraLive { rules: String, image: String },
    /// File systems: the `files` analysis against `fiwalk -X` on an ext4
    /// image of many small files.
    Files {
        #[command(flatten)]
        common: Common,
        /// Files in the generated tree.
        #[arg(long)]
        files: Option<String>,
    },
    /// Virtual-machine disks: hashing a dynamic VHDX and a compressed QCOW2
    /// against `qemu-img convert -O raw` and `md5sum`.
    Vdisk {
        #[command(flatten)]
        common: Common,
    },
    /// A scheduler and workers on loopback against the embedded scan.
    Cluster {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        analyses: Option<String>,
    },
    /// The whole pipeline (every analysis) against the peers run one
    /// after the other.
    Pipeline {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        rules: Option<String>,
        #[arg(long)]
        baseline: Option<String>,
    },
    /// Retrohunt: a flash's rules over retained evidence against the same
    /// rules as a fresh YARA job (identical matches required).
    Retrohunt {
        #[arg(long)]
        size: Option<String>,
        #[arg(long)]
        runs: Option<String>,
        #[arg(long)]
        rules: Option<String>,
        #[arg(long)]
        dir: Option<String>,
    },
    /// Object-store evidence: the same image from a local file and from an
    /// S3-compatible store (SeaweedFS on loopback), alternately.
    Objstore {
        #[arg(long)]
        size: Option<String>,
        #[arg(long)]
        runs: Option<String>,
        #[arg(long)]
        analyses: Option<String>,
        #[arg(long)]
        dir: Option<String>,
    },
    /// A lab's year in one scheduler: thousands of jobs, millions of tasks,
    /// hundreds of simulated workers over gRPC on loopback; lease round
    /// trips, latency, RSS, restart, archive.
    Labyear {
        /// Jobs submitted [default: 5000].
        #[arg(long)]
        jobs: Option<String>,
        /// Tasks (shards) per job [default: 2000].
        #[arg(long)]
        tasks_per_job: Option<String>,
        /// Simulated workers [default: 500].
        #[arg(long)]
        workers: Option<String>,
        /// Slots per worker [default: 16].
        #[arg(long)]
        slots: Option<String>,
        /// Cases the jobs belong to [default: 50].
        #[arg(long)]
        cases: Option<String>,
        /// Jobs submitted ahead of the finished work [default: 64].
        #[arg(long)]
        backlog: Option<String>,
        /// Each slot holds a task this long before reporting it: a paced
        /// load below capacity, for latency [default: 0, saturation].
        #[arg(long)]
        hold_ms: Option<String>,
        #[arg(long)]
        dir: Option<String>,
        /// Keep the work directory (data directory, image).
        #[arg(long)]
        keep: bool,
    },
    /// Scale-out: sparse and mixed images over 1, 2, 4 workers.
    Scale {
        #[arg(long)]
        sparse_size: Option<String>,
        #[arg(long)]
        mixed_size: Option<String>,
        /// Worker counts (comma-separated).
        #[arg(long)]
        workers: Option<String>,
        #[arg(long)]
        slots: Option<String>,
        #[arg(long)]
        runs: Option<String>,
        #[arg(long)]
        dir: Option<String>,
    },
}

/// `--name value` pairs (and bare flags) for the sections, which read
/// their options from such a list.
fn argv(pairs: &[(&str, &Option<String>)], flags: &[(&str, bool)]) -> Vec<String> {
    let mut v = Vec::new();
    for (k, val) in pairs {
        if let Some(x) = val {
            v.push((*k).to_string());
            v.push(x.clone());
        }
    }
    for (k, on) in flags {
        if *on {
            v.push((*k).to_string());
        }
    }
    v
}

fn common(c: &Common) -> Vec<(&'static str, &Option<String>)> {
    vec![("--dir", &c.dir), ("--runs", &c.runs), ("--size", &c.size)]
}

fn main() -> Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    // A --dir that does not exist yet is created, as the work directory of
    // every section (they used to fail on their first file inside it).
    let dir = match &cli.command {
        Bench::All { dir, .. }
        | Bench::Features { dir, .. }
        | Bench::Scale { dir, .. }
        | Bench::Labyear { dir, .. }
        | Bench::Retrohunt { dir, .. }
        | Bench::Objstore { dir, .. } => dir,
        Bench::Hash(c)
        | Bench::Carve { common: c, .. }
        | Bench::Yara { common: c, .. }
        | Bench::Cluster { common: c, .. }
        | Bench::Files { common: c, .. }
        | Bench::Vdisk { common: c }
        | Bench::Pipeline { common: c, .. } => &c.dir,
        Bench::YaraLive { .. } => &None,
    };
    if let Some(d) = dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating the work directory {d}"))?;
    }
    match &cli.command {
        Bench::All {
            out,
            quick,
            dir,
            baseline,
        } => scale::all(&argv(
            &[("--out", out), ("--dir", dir), ("--baseline", baseline)],
            &[("--quick", *quick)],
        )),
        Bench::Hash(c) => hash(&argv(&common(c), &[])),
        Bench::Carve {
            common: c,
            no_accuracy,
            no_throughput,
        } => carve::run(&argv(
            &common(c),
            &[
                ("--no-accuracy", *no_accuracy),
                ("--no-throughput", *no_throughput),
            ],
        )),
        Bench::Features {
            size,
            seed,
            scanners,
            each,
            dir,
        } => features::run(&argv(
            &[
                ("--size", size),
                ("--seed", seed),
                ("--scanners", scanners),
                ("--dir", dir),
            ],
            &[("--each", *each)],
        )),
        Bench::Yara {
            common: c,
            rules,
            baseline,
        } => {
            let mut p = common(c);
            p.push(("--rules", rules));
            p.push(("--baseline", baseline));
            yara::run(&argv(&p, &[]))
        }
        Bench::YaraLive { rules, image } => yara::live(&[rules.clone(), image.clone()]),
        Bench::Files { common: c, files } => {
            let mut p = common(c);
            p.push(("--files", files));
            files::run(&argv(&p, &[]))
        }
        Bench::Vdisk { common: c } => vdisk::run(&argv(&common(c), &[])),
        Bench::Cluster {
            common: c,
            analyses,
        } => {
            let mut p = common(c);
            p.push(("--analyses", analyses));
            cluster(&argv(&p, &[]))
        }
        Bench::Pipeline {
            common: c,
            rules,
            baseline,
        } => {
            let mut p = common(c);
            p.push(("--rules", rules));
            p.push(("--baseline", baseline));
            scale::pipeline(&trawl_bin(), &argv(&p, &[]))
        }
        Bench::Retrohunt {
            size,
            runs,
            rules,
            dir,
        } => retro::run_bench(
            &trawl_bin(),
            &argv(
                &[
                    ("--size", size),
                    ("--runs", runs),
                    ("--rules", rules),
                    ("--dir", dir),
                ],
                &[],
            ),
        ),
        Bench::Objstore {
            size,
            runs,
            analyses,
            dir,
        } => objstore::run_bench(
            &trawl_bin(),
            &argv(
                &[
                    ("--size", size),
                    ("--runs", runs),
                    ("--analyses", analyses),
                    ("--dir", dir),
                ],
                &[],
            ),
        ),
        Bench::Labyear {
            jobs,
            tasks_per_job,
            workers,
            slots,
            cases,
            backlog,
            hold_ms,
            dir,
            keep,
        } => labyear::run(
            &trawl_bin(),
            &argv(
                &[
                    ("--jobs", jobs),
                    ("--tasks-per-job", tasks_per_job),
                    ("--workers", workers),
                    ("--slots", slots),
                    ("--cases", cases),
                    ("--backlog", backlog),
                    ("--hold-ms", hold_ms),
                    ("--dir", dir),
                ],
                &[("--keep", *keep)],
            ),
        ),
        Bench::Scale {
            sparse_size,
            mixed_size,
            workers,
            slots,
            runs,
            dir,
        } => scale::scale(
            &trawl_bin(),
            &argv(
                &[
                    ("--sparse-size", sparse_size),
                    ("--mixed-size", mixed_size),
                    ("--workers", workers),
                    ("--slots", slots),
                    ("--runs", runs),
                    ("--dir", dir),
                ],
                &[],
            ),
        ),
    }
}

fn hash(args: &[String]) -> Result<()> {
    let size = trawl_core::size::parse_size(&arg(args, "--size").unwrap_or_else(|| "1GiB".into()))?;
    let runs: usize = arg(args, "--runs").unwrap_or_else(|| "5".into()).parse()?;
    let dir = PathBuf::from(
        arg(args, "--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    );
    let trawl = trawl_bin();
    if !trawl.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --locked)",
            trawl.display()
        );
    }
    let img = dir.join(format!("trawl-bench-{size}.raw"));
    if std::fs::metadata(&img).map(|m| m.len()).ok() != Some(size) {
        random_file(&img, size, 42).with_context(|| format!("writing {}", img.display()))?;
    }
    let out = dir.join("trawl-bench-out");
    let (t, i, o) = (
        trawl.to_str().unwrap(),
        img.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let mut c = vec![
        Contender::new(
            "trawl scan --analyses hash (MD5+SHA-1+SHA-256+BLAKE3)",
            &[t, "scan", i, "--out", o, "--analyses", "hash"],
        ),
        Contender::new(
            "trawl scan --analyses hash --no-stream-hash --piecewise-window 0 (BLAKE3)",
            &[
                t,
                "scan",
                i,
                "--out",
                o,
                "--analyses",
                "hash",
                "--no-stream-hash",
                "--piecewise-window",
                "0",
            ],
        ),
        Contender::new("openssl dgst -md5", &["openssl", "dgst", "-md5", i]),
    ];
    if have("b3sum") {
        c.push(Contender::new("b3sum", &["b3sum", i]));
    }
    if have("hashdeep") {
        c.push(Contender::new(
            "hashdeep -c md5,sha1,sha256",
            &["hashdeep", "-c", "md5,sha1,sha256", i],
        ));
    }
    race(&mut c, runs);
    println!(
        "Input: {} ({} bytes of random data, page cache warm), {} runs each, alternating\n",
        img.display(),
        size,
        runs
    );
    println!("{}", table(&c, size));
    let w = |name: &str| {
        c.iter()
            .find(|x| x.name.starts_with(name))
            .map(|x| x.median_wall())
    };
    let all = w("trawl scan --analyses hash (").unwrap_or(f64::NAN);
    let b3 = w("trawl scan --analyses hash --no-stream").unwrap_or(f64::NAN);
    if let Some(md5) = w("openssl") {
        println!(
            "all four vs MD5 alone (openssl): {:.2}x (target >= 0.9)",
            md5 / all
        );
    }
    if let Some(b) = w("b3sum") {
        println!("BLAKE3 vs b3sum: {:.2}x (target >= 0.9)", b / b3);
    }
    if let Some(h) = w("hashdeep") {
        println!(
            "all four vs hashdeep -c md5,sha1,sha256: {:.2}x (target >= 3)",
            h / all
        );
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// Lease/report round trips per second sustained by a scheduler over gRPC
/// on loopback, with `clients` concurrent fake workers that report empty
/// results at once.
fn round_trips(clients: usize, secs: f64) -> Result<(f64, u64)> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use trawl_proto::v1;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let dir = tempfile_dir()?;
        let img = dir.join("rt.raw");
        std::fs::write(&img, vec![0u8; 64 << 20])?;
        // Tiny tasks on purpose (the round trip is what is measured): the
        // per-job limits are lifted, the image is the only evidence root.
        let cfg = trawl_scheduler::SchedulerConfig {
            data_dir: dir.join("data"),
            lease_ms: 60_000,
            evidence_roots: vec![img.clone()],
            min_shard_size: 1024,
            max_tasks_per_job: 1 << 20,
            ..Default::default()
        };
        let sched = trawl_scheduler::Scheduler::open(cfg)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(trawl_scheduler::serve(
            sched.clone(),
            listener,
            stop.clone(),
        ));
        let ch = tonic::transport::Endpoint::from_shared(url)?
            .tcp_nodelay(true)
            .connect()
            .await?;
        let mut jobs = trawl_proto::v1::jobs_client::JobsClient::new(ch.clone());
        // 64 MiB in 1 KiB shards: 65,536 tiny tasks.
        let spec = trawl_core::JobSpec {
            shard_size: 1024,
            margin: 0,
            ..trawl_core::JobSpec::new(
                trawl_core::CaseId::new("bench")?,
                trawl_core::spec::EvidenceRef::Paths(vec![img.display().to_string()]),
                trawl_core::AnalysisSet::parse("hash")?,
            )
        };
        let job = jobs
            .submit_job(v1::SubmitJobRequest {
                spec: Some(v1::JobSpec::from(&spec)),
            })
            .await?
            .into_inner()
            .job_id;
        wait_planned(&mut jobs, &job).await?;
        let count = Arc::new(AtomicU64::new(0));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
        let mut handles = Vec::new();
        for i in 0..clients {
            let mut c = trawl_proto::v1::cluster_client::ClusterClient::new(ch.clone());
            let count = count.clone();
            handles.push(tokio::spawn(async move {
                let id = c
                    .register(v1::RegisterRequest {
                        worker: Some(v1::WorkerInfo {
                            worker_id: format!("bench-{i}"),
                            slots: 1,
                            protocol: 1,
                            ..Default::default()
                        }),
                    })
                    .await?
                    .into_inner()
                    .worker_id;
                // As a worker does: lease once, then each report hands the
                // next task back in the same round trip.
                let mut next = c
                    .lease_tasks(v1::LeaseTasksRequest {
                        worker_id: id.clone(),
                        max_tasks: 1,
                        wait_ms: 0,
                    })
                    .await?
                    .into_inner()
                    .tasks;
                while std::time::Instant::now() < deadline {
                    let Some(t) = next.pop() else { break };
                    let task_id = t.task_id.clone();
                    next = c
                        .report_task(v1::ReportTaskRequest {
                            worker_id: id.clone(),
                            task_id: task_id.clone(),
                            attempt: t.attempt,
                            outcome: Some(v1::report_task_request::Outcome::Result(
                                v1::TaskResult {
                                    task_id,
                                    ..Default::default()
                                },
                            )),
                            lease_next: 1,
                            lease_token: t.lease_token,
                        })
                        .await?
                        .into_inner()
                        .next;
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        let t0 = std::time::Instant::now();
        for h in handles {
            h.await??;
        }
        let elapsed = t0.elapsed().as_secs_f64();
        stop.cancel();
        let _ = server.await;
        let n = count.load(Ordering::Relaxed);
        let _ = std::fs::remove_dir_all(&dir);
        Ok((n as f64 / elapsed, n))
    })
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("trawl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// The embedded scan against a scheduler and 2 worker processes on
/// loopback, same image, same run; then the scheduler's round-trip rate.
fn cluster(args: &[String]) -> Result<()> {
    let size = trawl_core::size::parse_size(&arg(args, "--size").unwrap_or_else(|| "1GiB".into()))?;
    let runs: usize = arg(args, "--runs").unwrap_or_else(|| "3".into()).parse()?;
    let analyses = arg(args, "--analyses").unwrap_or_else(|| "hash".into());
    let dir = PathBuf::from(
        arg(args, "--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    );
    let trawl = trawl_bin();
    let img = dir.join(format!("trawl-bench-{size}.raw"));
    if std::fs::metadata(&img).map(|m| m.len()).ok() != Some(size) {
        random_file(&img, size, 42)?;
    }
    let out = dir.join("trawl-bench-out");
    let mut embedded = Vec::new();
    let mut clustered = Vec::new();
    for _ in 0..runs + 1 {
        let t = std::time::Instant::now();
        let st = std::process::Command::new(&trawl)
            .args([
                "scan",
                img.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--analyses",
                &analyses,
            ])
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(st.success(), "embedded scan failed");
        embedded.push(t.elapsed().as_secs_f64());
        // Scheduler + 2 worker processes with the default slots (cores + 1).
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
        let job = ["--analyses".to_string(), analyses.clone()];
        clustered.push(scale::cluster_run(&trawl, &img, 2, slots, &job, &tempfile_dir()?)?.0);
    }
    // The first round warms up.
    embedded.remove(0);
    clustered.remove(0);
    let (e, c) = (
        trawl_benches::median(embedded),
        trawl_benches::median(clustered),
    );
    println!(
        "Input: {} ({size} bytes), analyses {analyses}, {runs} runs each, alternating\n",
        img.display()
    );
    println!("| mode | median wall (s) | MB/s |\n|---|---:|---:|");
    println!(
        "| embedded `trawl scan` | {e:.3} | {:.0} |",
        size as f64 / 1e6 / e
    );
    println!(
        "| scheduler + 2 worker processes (submit → results) | {c:.3} | {:.0} |",
        size as f64 / 1e6 / c
    );
    println!(
        "\ncluster overhead: {:+.1}% (target <= 10%)",
        (c / e - 1.0) * 100.0
    );
    let (rate, n) = round_trips(8, 5.0)?;
    println!(
        "scheduler lease/report round trips: {rate:.0}/s over {n} tasks, 8 concurrent fake workers (target >= 5000/s)"
    );
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}
