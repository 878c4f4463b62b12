//! Alert flashes as the scheduler runs them.
//!
//! An analyst (or admin) publishes a flash: a title, a TLP level,
//! indicators and/or YARA rules. On publication
//!
//! 1. **past sightings** answer at once from the index: one alert per
//!    (case, job) holding one of its indicators;
//! 2. **retrohunt**: its rules (stored as the restricted rule set
//!    `flash-F000001`) run over the evidence of every completed job that is
//!    still retained (uploads in the store, paths still under an evidence
//!    root), one low-priority YARA job per distinct image and case, in
//!    the case's name, never ahead of casework (the pool serves higher
//!    priorities first);
//! 3. **future jobs**: each completed job's indicators are checked against
//!    the active flashes' indicators, and its evidence is retrohunted by
//!    the active flashes' rules.
//!
//! Each hit raises one alert for the case concerned ([`trawl_intel::flash`]),
//! audited, broadcast to watchers (CLI `trawl alerts --watch`, the
//! dashboard) and queued for the lab's webhook.

use super::system_caller;
use crate::auth::Role;
use crate::core::{Caller, Scheduler};
use crate::error::SchedError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use trawl_core::spec::{Analysis, AnalysisSet, Priority, RuleSource};
use trawl_core::{CaseId, JobSpec};
use trawl_intel::flash::{
    AlertEvent, AlertRecord, AlertWhat, FlashError, FlashRecord, FlashState, RetroRecord, Tlp,
};
use trawl_intel::{Indicator, JobIndicators, Kind};
use trawl_store::{JobRecord, JobState, now_ms};

/// Longest flash title, in bytes.
pub const MAX_TITLE: usize = 256;
/// Most indicators in one flash.
pub const MAX_FLASH_INDICATORS: usize = 10_000;

/// What publishing a flash asks.
#[derive(Debug, Clone, Default)]
pub struct FlashInput {
    pub title: String,
    pub description: String,
    pub tlp: String,
    /// (kind, value) as given; normalised here.
    pub indicators: Vec<(String, String)>,
    pub rules: Vec<RuleSource>,
    pub no_retrohunt: bool,
}

/// What publishing did.
#[derive(Debug, Clone)]
pub struct Published {
    pub flash: FlashRecord,
    /// Indicators refused, with why.
    pub rejected: Vec<String>,
    /// Alerts raised at once from past sightings.
    pub past: Vec<AlertRecord>,
    /// Retrohunt jobs submitted.
    pub retro_jobs: Vec<String>,
    /// Past jobs whose evidence is gone (job, why).
    pub gone: Vec<(String, String)>,
}

/// Retrohunt progress of a flash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetroProgress {
    pub jobs: u32,
    pub running: u32,
    pub done: u32,
    pub failed: u32,
    pub hits: u64,
    pub bytes: u64,
}

pub(crate) fn flash_err(e: FlashError) -> SchedError {
    match e {
        FlashError::NotFound(m) => SchedError::NotFound(m),
        FlashError::Invalid(m) => SchedError::InvalidArgument(m),
        e => SchedError::Internal(e.to_string()),
    }
}

/// The name of a flash's restricted rule set.
pub fn ruleset_name(flash: &str) -> String {
    format!("flash-{flash}")
}

/// Whether a rule set is a flash's (restricted: admins, analysts and
/// workers only).
pub fn is_flash_ruleset(name: &str) -> bool {
    name.starts_with("flash-")
}

/// Whether `caller` may see the rule set of a flash.
pub fn may_see_flash_rules(caller: &Caller) -> bool {
    matches!(
        caller.role,
        Role::Admin | Role::Analyst | Role::Worker | Role::Local
    )
}

/// Work left after a job's results are merged, done once it is complete.
#[derive(Debug)]
pub(crate) enum AfterJob {
    /// A case's job: index its indicators, check the active flashes.
    Index(JobIndicators),
    /// A retrohunt job: its matches raise the flash's alerts.
    Retro {
        retro: RetroRecord,
        rules: Vec<String>,
        hits: u64,
    },
}

impl Scheduler {
    fn intel_or_off(&self) -> Result<&super::Intel, SchedError> {
        self.intel.as_ref().ok_or_else(|| {
            SchedError::FailedPrecondition("this scheduler keeps no indicator index".into())
        })
    }

    /// What to do with a job's merged results for the lab's memory.
    pub(crate) fn intel_after(
        &self,
        rec: &JobRecord,
        r: &trawl_report::JobResults,
    ) -> Option<AfterJob> {
        let intel = self.intel.as_ref()?;
        match rec.spec.origin.split(' ').collect::<Vec<_>>()[..] {
            ["retrohunt", flash, of_job] => {
                let finals: Vec<_> = r.yara.iter().filter(|m| !m.is_shard_record()).collect();
                let rules: BTreeSet<String> = finals.iter().map(|m| m.rule.clone()).collect();
                Some(AfterJob::Retro {
                    retro: RetroRecord {
                        flash: flash.into(),
                        of_job: of_job.into(),
                        case: rec.spec.case_id.as_str().into(),
                        submitted_ms: rec.created_ms,
                        done_ms: 0,
                        hits: 0,
                    },
                    rules: rules.into_iter().collect(),
                    hits: finals.len() as u64,
                })
            }
            _ => Some(AfterJob::Index(trawl_intel::extract(r, &intel.cfg))),
        }
    }

    /// Does the work of [`Scheduler::intel_after`] for a completed job.
    pub(crate) fn intel_finish(self: &Arc<Self>, rec: &JobRecord, work: AfterJob) {
        if rec.state != JobState::Completed {
            return;
        }
        match work {
            AfterJob::Index(found) => {
                self.intel_index(rec, &found);
                self.flash_check_job(rec, &found);
            }
            AfterJob::Retro { retro, rules, hits } => self.retro_done(rec, retro, rules, hits),
        }
    }

    /// Raises an alert (once), audits it, tells the watchers and queues it
    /// for the webhook.
    fn raise_alert(
        &self,
        flash: &FlashRecord,
        case: &str,
        job: &str,
        what: AlertWhat,
    ) -> Option<AlertRecord> {
        let intel = self.intel.as_ref()?;
        match intel.flashes.raise(flash, case, job, what, now_ms()) {
            Ok(Some(a)) => {
                let detail = match &a.what {
                    AlertWhat::Indicator {
                        indicator_kind,
                        value,
                    } if indicator_kind != Kind::CcnHmac.name() => {
                        format!("flash {}: {indicator_kind} {value} in job {job}", flash.id)
                    }
                    AlertWhat::Indicator { .. } => {
                        format!("flash {}: a card number in job {job}", flash.id)
                    }
                    AlertWhat::Rule { rules, hits } => format!(
                        "flash {}: {hits} match(es) of {} in job {job}",
                        flash.id,
                        rules.join(", ")
                    ),
                };
                self.audit(&system_caller(), "alert.raise", &a.id, case, detail);
                self.alert_raised(&a);
                Some(a)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(flash = %flash.id, case, job, error = %e, "raising an alert");
                None
            }
        }
    }

    /// Publishes a flash: past sightings at once, retrohunt submitted.
    ///
    /// # Errors
    /// Bad title, TLP or sizes; nothing to look for; rules that do not
    /// compile; the index off; the database failing.
    pub async fn publish_flash(
        self: &Arc<Self>,
        caller: &Caller,
        input: FlashInput,
    ) -> Result<Published, SchedError> {
        let intel = self.intel_or_off()?;
        let title = input.title.trim().to_string();
        if title.is_empty() || title.len() > MAX_TITLE || title.chars().any(char::is_control) {
            return Err(SchedError::InvalidArgument(format!(
                "a flash needs a title of 1..{MAX_TITLE} bytes without control characters"
            )));
        }
        let tlp = Tlp::parse(&input.tlp).ok_or_else(|| {
            SchedError::InvalidArgument(format!(
                "TLP {:?}: give clear, green, amber, amber+strict or red",
                input.tlp
            ))
        })?;
        if input.indicators.len() > MAX_FLASH_INDICATORS {
            return Err(SchedError::InvalidArgument(format!(
                "more than {MAX_FLASH_INDICATORS} indicators"
            )));
        }
        let mut normalised = BTreeSet::new();
        let mut rejected = Vec::new();
        for (k, v) in &input.indicators {
            let shown = |why: String| {
                let v: String = v.chars().take(200).collect();
                format!("{k} {v:?}: {why}")
            };
            match Kind::parse(k) {
                None => rejected.push(shown("unknown kind".into())),
                Some(kind) => match trawl_intel::normalize_any(kind, v, &intel.cfg) {
                    Ok(i) => {
                        normalised.insert(i);
                    }
                    Err(e) => rejected.push(shown(e.to_string())),
                },
            }
        }
        if normalised.is_empty() && input.rules.is_empty() {
            return Err(SchedError::InvalidArgument(format!(
                "a flash needs indicators or YARA rules{}",
                if rejected.is_empty() {
                    String::new()
                } else {
                    format!(" (refused: {})", rejected.join("; "))
                }
            )));
        }
        // The rules must compile before anything is published. Their
        // sources are named `flash/NAME`, so matches' namespaces say they
        // are a flash's; the compiled set is cached by digest, so storing
        // it below and the retrohunts' workers compile the same set.
        let sources: Vec<RuleSource> = input
            .rules
            .iter()
            .map(|s| RuleSource {
                name: format!("flash/{}", s.name),
                text: s.text.clone(),
            })
            .collect();
        if !sources.is_empty() {
            let srcs = sources.clone();
            tokio::task::spawn_blocking(move || {
                trawl_analyzers::yara::compile_cached(&srcs, false)
            })
            .await
            .map_err(|e| SchedError::Internal(e.to_string()))?
            .map_err(|e| SchedError::InvalidArgument(format!("flash rules: {e}")))?;
        }
        let rec = FlashRecord {
            id: String::new(),
            title,
            description: input.description.clone(),
            tlp,
            publisher: caller.user.clone(),
            published_ms: now_ms(),
            indicators: normalised
                .iter()
                .map(|i| (i.kind.name().to_string(), i.value.clone()))
                .collect(),
            ruleset: None,
            state: FlashState::Active,
        };
        let mut flash = intel.flashes.publish(rec).map_err(flash_err)?;
        if !sources.is_empty() {
            let name = ruleset_name(&flash.id);
            self.add_ruleset(&name, sources, false, &system_caller())
                .await?;
            flash = intel
                .flashes
                .set_ruleset(&flash.id, &name)
                .map_err(flash_err)?;
        }
        let digest = {
            let mut h = blake3::Hasher::new();
            for (k, v) in &flash.indicators {
                h.update(format!("{k}\t{v}\n").as_bytes());
            }
            for s in &input.rules {
                h.update(s.name.as_bytes());
                h.update(b"\0");
                h.update(s.text.as_bytes());
            }
            h.finalize().to_hex().to_string()
        };
        self.audit(
            caller,
            "flash.publish",
            &flash.id,
            "",
            format!(
                "{} {:?}: {} indicator(s), {} rule file(s), digest {digest}",
                flash.tlp.label(),
                flash.title,
                flash.indicators.len(),
                input.rules.len()
            ),
        );
        self.flush_quietly();
        // past sightings, at once
        let mut past = Vec::new();
        for ind in &normalised {
            let seen = intel.index.sightings(ind).map_err(super::internal)?;
            for s in seen {
                for job in &s.jobs {
                    if let Some(a) = self.raise_alert(&flash, &s.case, job, indicator_what(ind)) {
                        past.push(a);
                    }
                }
            }
        }
        // the answer names the cases that saw the indicators: audited
        let mut revealed: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &past {
            *revealed.entry(a.case.as_str()).or_default() += 1;
        }
        for (case, n) in revealed {
            self.audit(
                caller,
                "intel.case_revealed",
                case,
                case,
                format!("past sightings of flash {}: {n} alert(s)", flash.id),
            );
        }
        // retrohunt over the retained evidence
        let (mut retro_jobs, mut gone) = (Vec::new(), Vec::new());
        if flash.ruleset.is_some() && !input.no_retrohunt {
            let jobs = self.store.jobs()?;
            let retros = intel.flashes.retros().map_err(flash_err)?;
            let mut seen_evidence = BTreeSet::new();
            for j in jobs {
                if j.state != JobState::Completed || retros.contains_key(j.job_id.as_str()) {
                    continue;
                }
                let key = (j.spec.case_id.as_str().to_string(), evidence_key(&j));
                if !seen_evidence.insert(key) {
                    continue;
                }
                match self.submit_retro(&flash, &j).await {
                    Ok(id) => retro_jobs.push(id),
                    Err(e) => gone.push((j.job_id.to_string(), e.to_string())),
                }
            }
        }
        self.flush_quietly();
        Ok(Published {
            flash,
            rejected,
            past,
            retro_jobs,
            gone,
        })
    }

    fn flush_quietly(&self) {
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "flushing flashes and alerts");
        }
    }

    /// Submits the retrohunt of `flash` over the evidence of `of`: a YARA
    /// job of the same case, at low priority.
    async fn submit_retro(
        self: &Arc<Self>,
        flash: &FlashRecord,
        of: &JobRecord,
    ) -> Result<String, SchedError> {
        let intel = self.intel_or_off()?;
        let ruleset = flash
            .ruleset
            .clone()
            .ok_or_else(|| SchedError::InvalidArgument("the flash has no rules".into()))?;
        if let trawl_core::spec::EvidenceRef::Upload(d) = &of.spec.evidence
            && self.uploads.complete_path(d).is_none()
        {
            return Err(SchedError::NotFound(format!(
                "upload {d} is no longer retained"
            )));
        }
        let mut spec = JobSpec::new(
            CaseId::new(of.spec.case_id.as_str())
                .map_err(|e| SchedError::Internal(e.to_string()))?,
            of.spec.evidence.clone(),
            {
                let mut a = AnalysisSet::default();
                a.insert(Analysis::Yara);
                a
            },
        );
        spec.evidence_name = of.spec.evidence_name.clone();
        // the source's plan: its shard size, so no shard is larger than
        // the casework's (a retrohunt shard given back wastes little)
        spec.shard_size = of.spec.shard_size;
        spec.margin = of.spec.margin;
        spec.priority = Priority::Low;
        spec.yara.ruleset_name = ruleset;
        spec.yara.scan_carved = false;
        spec.description = format!(
            "retrohunt of flash {} ({}) over the evidence of job {}",
            flash.id, flash.title, of.job_id
        );
        spec.origin = format!("retrohunt {} {}", flash.id, of.job_id);
        let retro_caller = system_caller();
        let rec = self.submit(spec, &retro_caller).await?;
        intel
            .flashes
            .add_retro(
                &rec.job_id,
                &RetroRecord {
                    flash: flash.id.clone(),
                    of_job: of.job_id.to_string(),
                    case: of.spec.case_id.as_str().to_string(),
                    submitted_ms: now_ms(),
                    done_ms: 0,
                    hits: 0,
                },
            )
            .map_err(flash_err)?;
        Ok(rec.job_id.to_string())
    }

    /// A retrohunt job completed: its matches raise the flash's alert.
    fn retro_done(&self, rec: &JobRecord, mut retro: RetroRecord, rules: Vec<String>, hits: u64) {
        let Some(intel) = &self.intel else { return };
        let Ok(flash) = intel.flashes.flash(&retro.flash) else {
            tracing::error!(job = %rec.job_id, flash = %retro.flash, "retrohunt of an unknown flash");
            return;
        };
        if hits > 0 && flash.active() {
            // the alert names the job whose evidence matched
            self.raise_alert(
                &flash,
                &retro.case,
                &retro.of_job,
                AlertWhat::Rule { rules, hits },
            );
        }
        retro.done_ms = now_ms();
        retro.hits = hits;
        if let Err(e) = intel.flashes.add_retro(&rec.job_id, &retro) {
            tracing::error!(job = %rec.job_id, error = %e, "recording the retrohunt's end");
        }
        self.flush_quietly();
    }

    /// A case's job completed: the active flashes' indicators it holds
    /// raise alerts, and the active flashes' rules are run over its
    /// evidence.
    fn flash_check_job(self: &Arc<Self>, rec: &JobRecord, found: &JobIndicators) {
        let Some(intel) = &self.intel else { return };
        let flashes = match intel.flashes.list() {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "reading the flashes");
                return;
            }
        };
        let case = rec.spec.case_id.as_str();
        let mut with_rules = Vec::new();
        for f in flashes.into_iter().filter(FlashRecord::active) {
            for ind in f.indicator_set() {
                if found.indicators.contains_key(&ind) {
                    self.raise_alert(&f, case, &rec.job_id, indicator_what(&ind));
                }
            }
            if f.ruleset.is_some() {
                with_rules.push(f);
            }
        }
        self.flush_quietly();
        if with_rules.is_empty() {
            return;
        }
        let me = self.clone();
        let of = rec.clone();
        tokio::spawn(async move {
            for f in with_rules {
                if let Err(e) = me.submit_retro(&f, &of).await {
                    tracing::warn!(job = %of.job_id, flash = %f.id, error = %e, "checking a new job against a flash's rules");
                }
            }
        });
    }

    /// The flashes, newest first, with their retrohunt progress.
    ///
    /// # Errors
    /// The index off; the database failing.
    pub fn flashes(&self) -> Result<Vec<(FlashRecord, RetroProgress)>, SchedError> {
        let intel = self.intel_or_off()?;
        let retros = intel.flashes.retros().map_err(flash_err)?;
        let mut out = Vec::new();
        for f in intel.flashes.list().map_err(flash_err)?.into_iter().rev() {
            let mut p = RetroProgress::default();
            for (job, r) in retros.iter().filter(|(_, r)| r.flash == f.id) {
                p.jobs += 1;
                p.hits += r.hits;
                match self.job(job) {
                    Ok(j) if j.state == JobState::Completed => {
                        p.done += 1;
                        p.bytes += j.evidence.map_or(0, |e| e.size);
                    }
                    Ok(j) if j.state.is_final() => p.failed += 1,
                    Ok(_) => p.running += 1,
                    Err(_) => p.failed += 1,
                }
            }
            out.push((f, p));
        }
        Ok(out)
    }

    /// Withdraws a flash: no more alerts from it.
    ///
    /// # Errors
    /// Unknown or withdrawn flash; no reason.
    pub fn withdraw_flash(
        &self,
        caller: &Caller,
        id: &str,
        reason: &str,
    ) -> Result<FlashRecord, SchedError> {
        let intel = self.intel_or_off()?;
        let f = intel
            .flashes
            .withdraw(id, &caller.user, now_ms(), reason)
            .map_err(flash_err)?;
        self.audit(caller, "flash.withdraw", id, "", reason.to_string());
        self.flush_quietly();
        Ok(f)
    }

    /// Whether `caller` may see an alert: readers of its case, analysts
    /// and admins.
    pub fn may_see_alert(&self, caller: &Caller, a: &AlertRecord) -> bool {
        caller.role == Role::Analyst || caller.may(crate::auth::Perm::Read, &a.case)
    }

    /// The alerts `caller` may see, from `from_seq`, of `case` (all when
    /// empty) and `state` (all when empty).
    ///
    /// # Errors
    /// The index off; the database failing.
    pub fn alerts(
        &self,
        caller: &Caller,
        case: &str,
        state: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, SchedError> {
        let intel = self.intel_or_off()?;
        intel
            .flashes
            .alerts(from_seq, limit, |a| {
                (case.is_empty() || a.case == case)
                    && (state.is_empty() || a.state.name() == state)
                    && self.may_see_alert(caller, a)
            })
            .map_err(flash_err)
    }

    /// Marks an alert seen, or dismisses it with a reason.
    ///
    /// # Errors
    /// Unknown alert (or one the caller may not see: the same answer);
    /// a refused transition.
    pub fn update_alert(
        &self,
        caller: &Caller,
        id: &str,
        state: &str,
        reason: &str,
    ) -> Result<AlertRecord, SchedError> {
        let intel = self.intel_or_off()?;
        let hidden = || SchedError::NotFound(format!("alert {id:?} not found among your alerts"));
        let a = intel.flashes.alert(id).map_err(|_| hidden())?;
        if !self.may_see_alert(caller, &a) {
            self.audit(
                caller,
                "denied",
                id,
                &a.case,
                "update an alert of another case",
            );
            return Err(hidden());
        }
        let ms = now_ms();
        let event = match state {
            "seen" => AlertEvent::Seen {
                by: caller.user.clone(),
                ms,
            },
            "dismissed" | "dismiss" => AlertEvent::Dismiss {
                by: caller.user.clone(),
                ms,
                reason: reason.to_string(),
            },
            s => {
                return Err(SchedError::InvalidArgument(format!(
                    "alert state {s:?}: seen or dismissed"
                )));
            }
        };
        let a = intel.flashes.update_alert(id, event).map_err(flash_err)?;
        let action = if a.state.name() == "seen" {
            "alert.seen"
        } else {
            "alert.dismiss"
        };
        self.audit(caller, action, id, &a.case, reason.to_string());
        self.flush_quietly();
        self.alert_raised(&a);
        Ok(a)
    }

    /// Whether a rule set digest is a flash's rules.
    pub fn is_flash_digest(&self, digest: &str) -> bool {
        self.flash_map().values().any(|f| {
            f.ruleset
                .as_ref()
                .and_then(|n| self.store.ruleset(n).ok().flatten())
                .is_some_and(|r| r.digest == digest)
        })
    }

    /// Flashes that matter for a list of alerts, by id (titles, TLP).
    pub fn flash_map(&self) -> BTreeMap<String, FlashRecord> {
        self.intel
            .as_ref()
            .and_then(|i| i.flashes.list().ok())
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.id.clone(), f))
            .collect()
    }
}

fn indicator_what(i: &Indicator) -> AlertWhat {
    AlertWhat::Indicator {
        indicator_kind: i.kind.name().into(),
        value: i.value.clone(),
    }
}

/// What tells two jobs' evidence apart: the upload digest, or the paths.
fn evidence_key(j: &JobRecord) -> String {
    match &j.spec.evidence {
        trawl_core::spec::EvidenceRef::Upload(d) => format!("upload:{}", d.to_ascii_lowercase()),
        trawl_core::spec::EvidenceRef::Paths(p) => format!("paths:{}", p.join("\0")),
    }
}
