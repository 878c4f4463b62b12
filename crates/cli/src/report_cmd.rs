//! `trawl report`: the threat report of a period, written to a folder.

use crate::client::status_err;
use crate::commands::ServerArgs;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use tokio_stream::StreamExt;
use trawl_proto::v1;
use trawl_report::paths::{RelPath, ReportDir};
use trawl_scheduler::outln;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// First day of the period, YYYY-MM-DD (UTC).
    #[arg(long)]
    pub from: String,
    /// Last day of the period, YYYY-MM-DD (UTC), included.
    #[arg(long)]
    pub to: String,
    /// The folder to write (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Language of the page: en or fr.
    #[arg(long, default_value = "en")]
    pub lang: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// A day written YYYY-MM-DD (the server checks the calendar again).
fn check_day(name: &str, v: &str) -> Result<(u32, u32, u32)> {
    let bad = || anyhow!("--{name} {v:?} is not a day written YYYY-MM-DD");
    let p: Vec<&str> = v.split('-').collect();
    if p.len() != 3
        || [4, 2, 2] != [p[0].len(), p[1].len(), p[2].len()]
        || !p.iter().all(|x| x.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let (y, m, d): (u32, u32, u32) = (p[0].parse()?, p[1].parse()?, p[2].parse()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if d == 0 || d > days {
        return Err(bad());
    }
    Ok((y, m, d))
}

pub async fn report(a: ReportArgs) -> Result<()> {
    let from = check_day("from", &a.from)?;
    let to = check_day("to", &a.to)?;
    if from > to {
        bail!("--from {} is after --to {}", a.from, a.to);
    }
    if !matches!(a.lang.as_str(), "en" | "fr") {
        bail!("--lang {:?}: the report is written in en or fr", a.lang);
    }
    if a.out.exists() {
        let mut entries = std::fs::read_dir(&a.out)
            .with_context(|| format!("{} exists and is not a folder", a.out.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} exists and is not empty: give a new folder",
                a.out.display()
            );
        }
    }
    let mut stream = a
        .server
        .client()?
        .reports
        .get_threat_report(v1::ThreatReportRequest {
            from: a.from.clone(),
            to: a.to.clone(),
            lang: a.lang.clone(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    let dir = ReportDir::new(&a.out);
    dir.create_root()?;
    let mut written = Vec::new();
    while let Some(f) = stream.next().await {
        let f = f.map_err(status_err)?;
        let rel = RelPath::parse("report file", &f.path)?;
        let (path, mut file) = dir.create_file(&rel)?;
        file.write_all(&f.content)
            .with_context(|| format!("writing {}", path.display()))?;
        written.push((rel.as_str().to_string(), f.content.len()));
    }
    if !written.iter().any(|(p, _)| p == "index.html") {
        bail!("the scheduler sent no index.html");
    }
    if a.server.json {
        let files: Vec<_> = written
            .iter()
            .map(|(p, n)| json!({"path": p, "bytes": n}))
            .collect();
        outln!(
            "{}",
            json!({"from": a.from, "to": a.to, "out": a.out.display().to_string(), "files": files})
        );
    } else {
        for (p, n) in &written {
            outln!("{p}  {n} bytes");
        }
        outln!("{}", a.out.join("index.html").display());
    }
    Ok(())
}
