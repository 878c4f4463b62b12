//! The lab's memory from the command line: links between cases, indicator
//! look-ups.

use crate::client::status_err;
use crate::commands::ServerArgs;
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;
use std::collections::BTreeMap;
use trawl_proto::v1;
use trawl_scheduler::outln;
use trawl_scheduler::text::utc_ms;

#[derive(Args, Debug)]
pub struct LinksArgs {
    /// The case whose links to show (admins may leave it out: every
    /// case's links).
    #[arg(long)]
    pub case: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum IndexCmd {
    /// Every case where an indicator was seen, and whether it is common.
    #[command(
        after_help = "Examples:\n  trawl index lookup domain evil.example\n  trawl index lookup email Bob@Evil.Example --json\n\nKinds: email, domain, url, ipv4, ipv6, bitcoin, iban, phone, ccn_hmac (give the card number), md5, sha1, sha256, yara_rule"
    )]
    Lookup {
        kind: String,
        value: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

fn indicator_json(i: &Option<v1::Indicator>) -> serde_json::Value {
    let i = i.clone().unwrap_or_default();
    json!({"kind": i.kind, "value": i.value})
}

pub async fn links(a: LinksArgs) -> Result<()> {
    let case = a.case.clone().unwrap_or_default();
    let links = a
        .server
        .client()?
        .intel
        .list_links(v1::ListLinksRequest {
            case_id: case.clone(),
        })
        .await
        .map_err(status_err)?
        .into_inner()
        .links;
    if a.server.json {
        let list: Vec<serde_json::Value> = links
            .iter()
            .map(|l| {
                let mut v = json!({"case": l.case_id, "other_case": l.other_case,
                    "indicator": indicator_json(&l.indicator), "contacts": l.contacts,
                    "first_linked_unix_ms": l.first_linked_unix_ms});
                if !l.own_jobs.is_empty() || !l.other_jobs.is_empty() {
                    v["own_jobs"] = json!(l.own_jobs);
                    v["other_jobs"] = json!(l.other_jobs);
                }
                v
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if links.is_empty() {
        if case.is_empty() {
            outln!("no links between cases");
        } else {
            outln!("case {case}: no indicator shared with another case");
        }
        return Ok(());
    }
    // per (asking case, other case): contacts and shared indicators
    let mut groups: BTreeMap<(&str, &str), Vec<&v1::Link>> = BTreeMap::new();
    for l in &links {
        groups
            .entry((l.case_id.as_str(), l.other_case.as_str()))
            .or_default()
            .push(l);
    }
    for ((mine, other), ls) in groups {
        let contacts = &ls[0].contacts;
        outln!(
            "case {mine} shares {} indicator(s) with case {other} (contact: {})",
            ls.len(),
            if contacts.is_empty() {
                "-".to_string()
            } else {
                contacts.join(", ")
            }
        );
        for l in &ls {
            let i = l.indicator.clone().unwrap_or_default();
            outln!(
                "  {:<10} {}   linked {}",
                i.kind,
                i.value,
                utc_ms(l.first_linked_unix_ms)
            );
        }
        if !ls[0].own_jobs.is_empty() || !ls[0].other_jobs.is_empty() {
            outln!(
                "  jobs: {} | {}",
                ls[0].own_jobs.join(" "),
                ls[0].other_jobs.join(" ")
            );
        }
    }
    Ok(())
}

pub async fn index(c: IndexCmd) -> Result<()> {
    match c {
        IndexCmd::Lookup {
            kind,
            value,
            server,
        } => {
            let r = server
                .client()?
                .intel
                .lookup_indicator(v1::LookupIndicatorRequest {
                    indicator: Some(v1::Indicator { kind, value }),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if server.json {
                let seen: Vec<serde_json::Value> = r
                    .sightings
                    .iter()
                    .map(|s| {
                        json!({"case": s.case_id, "jobs": s.jobs, "first_unix_ms": s.first_unix_ms,
                        "last_unix_ms": s.last_unix_ms, "contacts": s.contacts})
                    })
                    .collect();
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "indicator": indicator_json(&r.normalised),
                        "common": r.common, "common_reason": r.common_reason,
                        "sightings": seen,
                    }))?
                );
                return Ok(());
            }
            let i = r.normalised.clone().unwrap_or_default();
            outln!(
                "{} {}{}",
                i.kind,
                i.value,
                if r.common {
                    format!(" (common: {})", r.common_reason)
                } else {
                    String::new()
                }
            );
            if r.sightings.is_empty() {
                outln!("  never seen");
            }
            for s in &r.sightings {
                outln!(
                    "  case {}: {} job(s), first {}, last {} (contact: {})",
                    s.case_id,
                    s.jobs,
                    utc_ms(s.first_unix_ms),
                    utc_ms(s.last_unix_ms),
                    s.contacts.join(", ")
                );
            }
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum FlashCmd {
    /// Publish an alert flash (analysts and admins): its indicators are
    /// looked for in every past and future job, its rules retrohunt the
    /// retained evidence. Prints the flash id last.
    #[command(
        after_help = "Examples:\n  trawl flash publish --title \"Campaign X\" --tlp amber --indicator domain:evil-c2.com --indicator email:x@evil-c2.com\n  trawl flash publish --title \"Loader Y\" --tlp green --rules loader-y.yar"
    )]
    Publish {
        #[arg(long)]
        title: String,
        /// clear, green, amber, amber+strict, red.
        #[arg(long)]
        tlp: String,
        #[arg(long, default_value = "")]
        description: String,
        /// KIND:VALUE (repeatable).
        #[arg(long = "indicator")]
        indicators: Vec<String>,
        /// A file of indicators, one `KIND VALUE` per line.
        #[arg(long)]
        indicators_file: Option<std::path::PathBuf>,
        /// A YARA rule file or folder.
        #[arg(long)]
        rules: Option<std::path::PathBuf>,
        /// Do not run the rules over past evidence.
        #[arg(long)]
        no_retrohunt: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// The flashes, with their retrohunt progress.
    List(ServerArgs),
    /// Withdraw a flash: it raises no more alerts.
    Withdraw {
        flash: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Args, Debug)]
pub struct AlertsArgs {
    /// Only this case's alerts.
    #[arg(long)]
    pub case: Option<String>,
    /// Only alerts in this state: new, seen, dismissed.
    #[arg(long)]
    pub state: Option<String>,
    /// Keep printing alerts as they are raised or change.
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum AlertCmd {
    /// Mark an alert seen.
    Seen {
        alert: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Dismiss an alert, with the reason.
    Dismiss {
        alert: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

fn parse_indicator(s: &str) -> Result<v1::Indicator> {
    let (k, v) = s
        .split_once([':', ' ', '\t'])
        .ok_or_else(|| anyhow::anyhow!("indicator {s:?}: give KIND:VALUE (domain:evil.com)"))?;
    Ok(v1::Indicator {
        kind: k.trim().into(),
        value: v.trim().into(),
    })
}

fn flash_json(f: &v1::Flash) -> serde_json::Value {
    let r = f.retro.unwrap_or_default();
    json!({"flash_id": f.flash_id, "title": f.title, "tlp": f.tlp, "state": f.state,
        "publisher": f.publisher, "published_unix_ms": f.published_unix_ms,
        "indicators": f.indicators.iter().map(|i| json!({"kind": i.kind, "value": i.value})).collect::<Vec<_>>(),
        "ruleset": f.ruleset, "description": f.description,
        "retro": {"jobs": r.jobs, "running": r.running, "done": r.done, "failed": r.failed, "hits": r.hits, "bytes_scanned": r.bytes_scanned},
        "rejected": f.rejected, "past_alerts": f.past_alerts.iter().map(alert_json).collect::<Vec<_>>(),
        "retro_jobs": f.retro_jobs, "gone": f.gone, "withdrawn_reason": f.withdrawn_reason})
}

pub fn alert_json(a: &v1::Alert) -> serde_json::Value {
    json!({"alert_id": a.alert_id, "seq": a.seq, "case": a.case_id, "flash_id": a.flash_id,
        "flash_title": a.flash_title, "tlp": a.tlp, "job": a.job_id, "kind": a.kind,
        "indicator": a.indicator.as_ref().map(|i| json!({"kind": i.kind, "value": i.value})),
        "rules": a.rules, "hits": a.hits, "state": a.state, "state_by": a.state_by,
        "reason": a.reason, "created_unix_ms": a.created_unix_ms, "contacts": a.contacts})
}

fn alert_line(a: &v1::Alert) -> String {
    let what = match &a.indicator {
        Some(i) if i.kind == "ccn_hmac" => "a card number".to_string(),
        Some(i) => format!("{} {}", i.kind, i.value),
        None => format!("{} match(es) of {}", a.hits, a.rules.join(", ")),
    };
    format!(
        "{}  {}  case {}  job {}  {} [{}] {}: {}  ({})",
        a.alert_id,
        utc_ms(a.created_unix_ms),
        a.case_id,
        a.job_id,
        a.flash_id,
        a.tlp.to_uppercase(),
        a.flash_title,
        what,
        a.state
    )
}

pub async fn flash(c: FlashCmd) -> Result<()> {
    match c {
        FlashCmd::Publish {
            title,
            tlp,
            description,
            indicators,
            indicators_file,
            rules,
            no_retrohunt,
            server,
        } => {
            let mut list = indicators
                .iter()
                .map(|s| parse_indicator(s))
                .collect::<Result<Vec<_>>>()?;
            if let Some(f) = &indicators_file {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                for (n, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or_default().trim();
                    if !line.is_empty() {
                        list.push(
                            parse_indicator(line).map_err(|e| {
                                anyhow::anyhow!("{} line {}: {e}", f.display(), n + 1)
                            })?,
                        );
                    }
                }
            }
            let rules = match &rules {
                Some(p) => crate::spec_args::read_rules(p)?
                    .into_iter()
                    .map(|r| v1::RuleSource {
                        name: r.name,
                        text: r.text,
                    })
                    .collect(),
                None => Vec::new(),
            };
            let f = server
                .client()?
                .intel
                .publish_flash(v1::PublishFlashRequest {
                    title,
                    tlp,
                    description,
                    indicators: list,
                    rules,
                    no_retrohunt,
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if server.json {
                outln!("{}", serde_json::to_string_pretty(&flash_json(&f))?);
                return Ok(());
            }
            for r in &f.rejected {
                outln!("refused: {r}");
            }
            outln!(
                "flash {} [{}] {}: {} indicator(s){}",
                f.flash_id,
                f.tlp.to_uppercase(),
                f.title,
                f.indicators.len(),
                if f.ruleset.is_empty() {
                    String::new()
                } else {
                    format!(", rules {}", f.ruleset)
                }
            );
            for a in &f.past_alerts {
                outln!("past sighting: {}", alert_line(a));
            }
            if !f.retro_jobs.is_empty() {
                outln!(
                    "retrohunt: {} job(s): {}",
                    f.retro_jobs.len(),
                    f.retro_jobs.join(" ")
                );
            }
            for g in &f.gone {
                outln!("not retrohunted (evidence gone): {g}");
            }
            outln!("{}", f.flash_id);
        }
        FlashCmd::List(server) => {
            let list = server
                .client()?
                .intel
                .list_flashes(v1::ListFlashesRequest {})
                .await
                .map_err(status_err)?
                .into_inner()
                .flashes;
            if server.json {
                let v: Vec<_> = list.iter().map(flash_json).collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            if list.is_empty() {
                outln!("no flashes");
            }
            for f in &list {
                let r = f.retro.unwrap_or_default();
                outln!(
                    "{}  {}  [{}] {}  {}  {} indicator(s)  retrohunt {}/{} done, {} running, {} failed, {} hit(s)",
                    f.flash_id,
                    utc_ms(f.published_unix_ms),
                    f.tlp.to_uppercase(),
                    f.title,
                    f.state,
                    f.indicators.len(),
                    r.done,
                    r.jobs,
                    r.running,
                    r.failed,
                    r.hits
                );
            }
        }
        FlashCmd::Withdraw {
            flash,
            reason,
            server,
        } => {
            let f = server
                .client()?
                .intel
                .withdraw_flash(v1::WithdrawFlashRequest {
                    flash_id: flash,
                    reason,
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if server.json {
                outln!("{}", flash_json(&f));
            } else {
                outln!("flash {} withdrawn", f.flash_id);
            }
        }
    }
    Ok(())
}

pub async fn alerts(a: AlertsArgs) -> Result<()> {
    let client = a.server.client()?;
    let case = a.case.clone().unwrap_or_default();
    let state = a.state.clone().unwrap_or_default();
    let show = |x: &v1::Alert| {
        if a.server.json {
            outln!("{}", alert_json(x));
        } else {
            outln!("{}", alert_line(x));
        }
    };
    if !a.watch {
        let list = client
            .intel
            .clone()
            .list_alerts(v1::ListAlertsRequest {
                case_id: case,
                state,
                from_seq: 0,
                limit: 0,
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .alerts;
        if list.is_empty() && !a.server.json {
            outln!("no alerts");
        }
        for x in &list {
            show(x);
        }
        return Ok(());
    }
    let mut stream = client
        .intel
        .clone()
        .watch_alerts(v1::WatchAlertsRequest {
            case_id: case,
            from_seq: 0,
        })
        .await
        .map_err(status_err)?
        .into_inner();
    use tokio_stream::StreamExt;
    while let Some(x) = stream.next().await {
        let x = x.map_err(status_err)?;
        if state.is_empty() || x.state == state {
            show(&x);
        }
    }
    Ok(())
}

pub async fn alert(c: AlertCmd) -> Result<()> {
    let (id, state, reason, server) = match c {
        AlertCmd::Seen { alert, server } => (alert, "seen", String::new(), server),
        AlertCmd::Dismiss {
            alert,
            reason,
            server,
        } => (alert, "dismissed", reason, server),
    };
    let a = server
        .client()?
        .intel
        .update_alert(v1::UpdateAlertRequest {
            alert_id: id,
            state: state.into(),
            reason,
        })
        .await
        .map_err(status_err)?
        .into_inner();
    if server.json {
        outln!("{}", alert_json(&a));
    } else {
        outln!("{}", alert_line(&a));
    }
    Ok(())
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["case", "job", "flash"])))]
pub struct ExportArgs {
    /// stix (a STIX 2.1 bundle), misp (a MISP event) or misp-feed (a MISP
    /// feed directory a MISP instance can subscribe to).
    pub format: String,
    /// Export a case's indicators.
    #[arg(long)]
    pub case: Option<String>,
    /// Export one job's indicators.
    #[arg(long)]
    pub job: Option<String>,
    /// Export an alert flash (analysts and admins).
    #[arg(long)]
    pub flash: Option<String>,
    /// The export's TLP (required): clear, green, amber, amber+strict, red.
    /// Nothing marked above it leaves.
    #[arg(long)]
    pub tlp: String,
    /// Where to write: a file (stix, misp) or a new directory (misp-feed).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Also the common indicators (stop list, known files, private
    /// addresses, seen in too many cases).
    #[arg(long)]
    pub include_common: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn export(a: ExportArgs) -> Result<()> {
    use v1::export_request::Scope;
    let scope = match (&a.case, &a.job, &a.flash) {
        (Some(c), _, _) => Scope::CaseId(c.clone()),
        (_, Some(j), _) => Scope::JobId(j.clone()),
        (_, _, Some(f)) => Scope::FlashId(f.clone()),
        _ => anyhow::bail!("give --case, --job or --flash"),
    };
    let feed = a.format.eq_ignore_ascii_case("misp-feed");
    // refuse before asking: nothing is overwritten
    if feed {
        if a.out.exists()
            && std::fs::read_dir(&a.out)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            anyhow::bail!(
                "{}: exists and is not an empty directory (a feed goes into a new one)",
                a.out.display()
            );
        }
    } else if a.out.exists() {
        anyhow::bail!("{}: exists (not overwritten)", a.out.display());
    }
    let mut stream = a
        .server
        .client()?
        .intel
        .export(v1::ExportRequest {
            scope: Some(scope),
            format: a.format.clone(),
            tlp: a.tlp.clone(),
            include_common: a.include_common,
        })
        .await
        .map_err(status_err)?
        .into_inner();
    use tokio_stream::StreamExt;
    let mut files = Vec::new();
    while let Some(f) = stream.next().await {
        files.push(f.map_err(status_err)?);
    }
    let last = files
        .last()
        .filter(|f| f.last)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the export ended early"))?;
    let write_new = |path: &std::path::Path, content: &[u8]| -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        f.write_all(content)
            .and_then(|_| f.sync_all())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    if feed {
        std::fs::create_dir_all(&a.out).map_err(|e| anyhow::anyhow!("{}: {e}", a.out.display()))?;
        for f in &files {
            // plain file names only
            let rel = trawl_report::paths::RelPath::name("feed file", &f.path)
                .map_err(|e| anyhow::anyhow!("the server sent a bad path {:?}: {e}", f.path))?;
            write_new(&a.out.join(rel.as_str()), &f.content)?;
        }
    } else {
        let f = &files[0];
        write_new(&a.out, &f.content)?;
    }
    if a.server.json {
        outln!(
            "{}",
            json!({"out": a.out, "format": a.format, "tlp": a.tlp, "files": files.len(),
                "objects": last.objects, "withheld": last.withheld,
                "not_in_format": last.not_in_format, "sha256": last.digest})
        );
    } else {
        outln!(
            "{} object(s) written to {} ({} withheld above {}, {} with no form in {})",
            last.objects,
            a.out.display(),
            last.withheld,
            a.tlp,
            last.not_in_format,
            a.format
        );
        outln!("sha256 {}", last.digest);
    }
    Ok(())
}
