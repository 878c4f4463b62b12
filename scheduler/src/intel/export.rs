//! Sharing exports: a case's, a job's or a flash's indicators as a STIX 2.1
//! bundle, a MISP event or a MISP feed directory (`trawl-share` writes
//! them).
//!
//! Rules: the TLP is required and every written object carries it; an
//! indicator that an active flash marks stricter than the export's TLP is
//! withheld (as are a flash's own items when the flash is stricter);
//! card numbers (kept only as keyed hashes) never leave; common indicators
//! only on request; no other case is ever named. Only the case's officers
//! and admins export a case or job, analysts and admins a flash. Every
//! export is audited with its digest.

use super::flash::flash_err;
use crate::auth::Perm;
use crate::core::{Caller, Scheduler};
use crate::error::SchedError;
use std::collections::BTreeMap;
use trawl_intel::Kind;
use trawl_intel::index::ItemSeen;
use trawl_share::{Identity, Item, ItemKind, ShareSet, Tlp, YaraSource};
use trawl_store::now_ms;

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Case(String),
    Job(String),
    Flash(String),
}

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Stix,
    Misp,
    MispFeed,
}

impl Format {
    /// `stix`, `misp`, `misp-feed`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stix" | "stix2" | "stix2.1" => Some(Format::Stix),
            "misp" => Some(Format::Misp),
            "misp-feed" | "misp_feed" | "feed" => Some(Format::MispFeed),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Stix => "stix",
            Format::Misp => "misp",
            Format::MispFeed => "misp_feed",
        }
    }
}

/// An export's files and figures.
#[derive(Debug, Clone, Default)]
pub struct Exported {
    /// (relative path, content, SHA-256).
    pub files: Vec<(String, Vec<u8>, String)>,
    pub digest: String,
    pub objects: usize,
    pub withheld: usize,
    pub not_in_format: usize,
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn item_kind(k: Kind) -> Option<ItemKind> {
    // card numbers (keyed hashes) have no item kind: they never leave
    ItemKind::parse(k.name())
}

impl Scheduler {
    /// The lab as the exports name it.
    fn lab_identity(&self) -> Identity {
        let name = self.cfg.intel.lab_name.clone();
        Identity {
            uuid: trawl_share::ids::derived(&["trawl lab identity", &name]),
            name,
        }
    }

    /// Exports `scope` as `format` at `tlp`. The caller's right is checked
    /// here (refusals audited); a job of another case is answered as one
    /// that does not exist.
    ///
    /// # Errors
    /// Refused, unknown scope, bad TLP, nothing indexed, writing failing.
    pub fn export(
        &self,
        caller: &Caller,
        scope: &Scope,
        format: Format,
        tlp: &str,
        include_common: bool,
    ) -> Result<Exported, SchedError> {
        let intel = self.intel.as_ref().ok_or_else(|| {
            SchedError::FailedPrecondition("this scheduler keeps no indicator index".into())
        })?;
        let tlp = Tlp::parse(tlp).ok_or_else(|| {
            SchedError::InvalidArgument(format!(
                "TLP {tlp:?}: an export needs one of clear, green, amber, amber+strict, red"
            ))
        })?;
        let refuse = |what: String, case: &str, target: &str| {
            self.audit(caller, "denied", target, case, what.clone());
            SchedError::PermissionDenied(format!(
                "user {} ({}) may not {what}",
                caller.user, caller.role
            ))
        };
        // flash markings: an indicator in an active flash carries its TLP
        let flashes = intel.flashes.list().map_err(flash_err)?;
        let mut marked: BTreeMap<(String, String), Tlp> = BTreeMap::new();
        for f in flashes.iter().filter(|f| f.active()) {
            for (k, v) in &f.indicators {
                let e = marked.entry((k.clone(), v.clone())).or_insert(f.tlp);
                *e = (*e).max(f.tlp);
            }
        }
        let (title, seen, yara, case, target) = match scope {
            Scope::Case(case) => {
                if !caller.may(Perm::Export, case) {
                    return Err(refuse(
                        format!("export the indicators of case {case:?}"),
                        case,
                        case,
                    ));
                }
                let seen = intel.index.case_items(case).map_err(super::internal)?;
                (
                    format!("trawl case {case}"),
                    seen,
                    Vec::new(),
                    case.clone(),
                    case.clone(),
                )
            }
            Scope::Job(job) => {
                let rec = crate::service::job_for(self, caller, Perm::Export, job)
                    .map_err(|s| SchedError::NotFound(s.message().to_string()))?;
                let case = rec.spec.case_id.as_str().to_string();
                let seen = intel
                    .index
                    .job_items(job)
                    .map_err(super::internal)?
                    .ok_or_else(|| {
                        SchedError::FailedPrecondition(format!(
                            "job {job} is not indexed (only completed jobs are)"
                        ))
                    })?;
                (
                    format!("trawl job {job} (case {case})"),
                    seen,
                    Vec::new(),
                    case,
                    job.clone(),
                )
            }
            Scope::Flash(id) => {
                if !caller.may(Perm::PublishFlash, "") {
                    return Err(refuse(format!("export flash {id}"), "", id));
                }
                let f = intel.flashes.flash(id).map_err(flash_err)?;
                let seen = f
                    .indicator_set()
                    .into_iter()
                    .map(|indicator| ItemSeen {
                        indicator,
                        first_ms: f.published_ms,
                        last_ms: f.published_ms,
                        jobs: 0,
                        count: 1,
                    })
                    .collect();
                let mut yara = Vec::new();
                if let Some(rs) = &f.ruleset
                    && f.tlp <= tlp
                {
                    let rec = self.ruleset(rs)?;
                    for (name, text) in rec.sources {
                        yara.push(YaraSource {
                            name: name.strip_prefix("flash/").unwrap_or(&name).to_string(),
                            text,
                        });
                    }
                }
                // the flash's own items carry its marking
                for i in &f.indicators {
                    marked.insert(i.clone(), f.tlp);
                }
                (
                    format!("trawl flash {}: {}", f.id, f.title),
                    seen,
                    yara,
                    String::new(),
                    id.clone(),
                )
            }
        };
        let mut items = Vec::new();
        let mut withheld_here = 0usize;
        for s in seen {
            let Some(kind) = item_kind(s.indicator.kind) else {
                continue;
            };
            if !include_common
                && !matches!(scope, Scope::Flash(_))
                && intel
                    .index
                    .is_common(&s.indicator)
                    .map_err(super::internal)?
            {
                continue;
            }
            let marking = marked
                .get(&(
                    s.indicator.kind.name().to_string(),
                    s.indicator.value.clone(),
                ))
                .copied()
                .unwrap_or(tlp);
            if marking > tlp {
                withheld_here += 1;
                continue;
            }
            items.push(Item {
                kind,
                value: s.indicator.value,
                first_ms: s.first_ms,
                last_ms: s.last_ms.max(s.first_ms),
                sightings: s.count,
                jobs: s.jobs,
                marking,
            });
        }
        let set = ShareSet {
            identity: self.lab_identity(),
            tlp,
            title,
            created_ms: now_ms(),
            items,
            yara,
        };
        let share = |e: trawl_share::ShareError| SchedError::Internal(format!("export: {e}"));
        let mut out = match format {
            Format::Stix | Format::Misp => {
                let w = if format == Format::Stix {
                    trawl_share::stix_bundle(&set).map_err(share)?
                } else {
                    trawl_share::misp_event(&set).map_err(share)?
                };
                let sha = sha256_hex(&w.bytes);
                let name = if format == Format::Stix {
                    "bundle.json"
                } else {
                    "event.json"
                };
                Exported {
                    digest: sha.clone(),
                    files: vec![(name.to_string(), w.bytes, sha)],
                    objects: w.objects,
                    withheld: w.withheld,
                    not_in_format: w.not_in_format,
                }
            }
            Format::MispFeed => {
                let dir = tempfile::tempdir()
                    .map_err(|e| SchedError::Internal(format!("export: {e}")))?;
                let feed = dir.path().join("feed");
                let w = trawl_share::misp_feed(std::slice::from_ref(&set), &feed).map_err(share)?;
                let mut files = Vec::new();
                for (path, sha) in &w.files {
                    let b = std::fs::read(feed.join(path))
                        .map_err(|e| SchedError::Internal(format!("export: {path}: {e}")))?;
                    files.push((path.clone(), b, sha.clone()));
                }
                Exported {
                    files,
                    digest: w.digest,
                    objects: w.attributes,
                    withheld: w.withheld,
                    not_in_format: 0,
                }
            }
        };
        out.withheld += withheld_here;
        self.audit(
            caller,
            &format!("export.{}", format.name()),
            &target,
            &case,
            format!(
                "{} {}: {} object(s), {} withheld, sha256 {}",
                match scope {
                    Scope::Case(_) => "case",
                    Scope::Job(_) => "job",
                    Scope::Flash(_) => "flash",
                },
                tlp.label(),
                out.objects,
                out.withheld,
                out.digest
            ),
        );
        Ok(out)
    }
}
