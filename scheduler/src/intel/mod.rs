//! The lab's memory, as the scheduler runs it: every completed job's
//! indicators go into the index ([`trawl_intel::index`]), which raises the
//! links between cases; the links and look-ups are answered here under
//! need-to-know.
//!
//! Need-to-know: a user of case A is told, per other case B sharing an
//! indicator A holds, B's id and B's case officers' names as contacts —
//! never B's jobs, evidence, results or other indicators; every such answer
//! is audited (`intel.case_revealed`, one entry per case revealed). Admins
//! see both sides and the whole lab's graph; analysts read the index
//! (`intel.lookup`, audited with the cases it names) but no case's jobs.
//!
//! Indexing runs after the job is completed, flushed and announced: it never
//! fails or delays the job. A job whose indexing was cut short (crash,
//! restart) is indexed at the next start ([`Scheduler::intel_backfill`]);
//! indexing is idempotent.

pub mod export;
pub mod flash;
pub mod key;
mod stop;
pub mod webhook;

use crate::auth::Role;
use crate::core::{Caller, Scheduler};
use crate::error::SchedError;
use std::collections::BTreeMap;
use std::sync::Arc;
use trawl_intel::index::{CommonRule, Index};
use trawl_intel::{Indicator, IntelConfig, JobIndicators, Kind};
use trawl_store::{JobRecord, JobState, now_ms};

/// The index and the extraction settings.
pub struct Intel {
    pub index: Index,
    pub cfg: IntelConfig,
    pub flashes: trawl_intel::flash::Flashes,
    /// New and changed alerts, for watchers.
    pub alerts: tokio::sync::broadcast::Sender<trawl_intel::flash::AlertRecord>,
    /// The lab's webhook, when configured.
    pub webhook: Option<webhook::Webhook>,
}

impl std::fmt::Debug for Intel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intel").field("cfg", &self.cfg).finish()
    }
}

impl Intel {
    /// Opens the index of a standing scheduler (`None` for the throw-away
    /// state of an embedded scan, or when `[intel] enabled = false`).
    ///
    /// # Errors
    /// The key or stop list unusable, the database failing.
    pub fn open(
        cfg: &crate::config::SchedulerConfig,
        store: &trawl_store::Store,
    ) -> Result<Option<Self>, SchedError> {
        if cfg.ephemeral || !cfg.intel.enabled {
            return Ok(None);
        }
        let pre = |e: anyhow::Error| SchedError::FailedPrecondition(format!("{e:#}"));
        let ccn_key =
            key::load_or_create(&cfg.data_dir, cfg.intel.key_file.as_deref()).map_err(pre)?;
        let icfg = IntelConfig {
            ccn_key: Some(ccn_key),
        };
        let stop = match &cfg.intel.stop_list {
            Some(p) => stop::load(p, &icfg).map_err(pre)?,
            None => Default::default(),
        };
        let rule = CommonRule {
            min_cases: cfg.intel.common_min_cases,
            share: cfg.intel.common_share,
            stop,
        };
        let index =
            Index::open(store.db(), rule).map_err(|e| SchedError::Internal(e.to_string()))?;
        let flashes = trawl_intel::flash::Flashes::open(store.db())
            .map_err(|e| SchedError::Internal(e.to_string()))?;
        let webhook = webhook::Webhook::open(&cfg.data_dir, &cfg.intel, store).map_err(pre)?;
        Ok(Some(Self {
            index,
            cfg: icfg,
            flashes,
            alerts: tokio::sync::broadcast::channel(1024).0,
            webhook,
        }))
    }
}

/// The system acting on its own (links raised, backfill): audited as the
/// scheduler.
pub fn system_caller() -> Caller {
    Caller {
        user: "trawl-scheduler".into(),
        role: Role::Local,
        cases: Vec::new(),
        peer: "scheduler".into(),
    }
}

/// One other case linked to the asking case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseLink {
    /// The other case.
    pub other_case: String,
    /// Its case officers' names (admins' when it has none).
    pub contacts: Vec<String>,
    /// The shared indicators (values the asking case holds), with when each
    /// link was first raised.
    pub shared: Vec<(Indicator, i64)>,
    /// Admins only: the asking case's jobs holding the shared indicators,
    /// and the other case's.
    pub own_jobs: Vec<String>,
    pub other_jobs: Vec<String>,
}

/// One case's sightings of an indicator, as a look-up answers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseSeen {
    pub case: String,
    pub jobs: u32,
    pub first_ms: i64,
    pub last_ms: i64,
    pub contacts: Vec<String>,
}

/// A look-up's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub indicator: Indicator,
    pub common: Option<String>,
    pub seen: Vec<CaseSeen>,
}

pub(crate) fn internal(e: trawl_intel::index::IndexError) -> SchedError {
    match e {
        trawl_intel::index::IndexError::BadId(id) => {
            SchedError::InvalidArgument(format!("bad identifier {id:?}"))
        }
        e => SchedError::Internal(e.to_string()),
    }
}

impl Scheduler {
    /// Indexes a completed job's indicators and audits the links it
    /// raised. Errors are logged: the job is complete whatever happens
    /// here, and the next start indexes it again.
    pub(crate) fn intel_index(&self, rec: &JobRecord, found: &JobIndicators) {
        let Some(intel) = &self.intel else { return };
        if rec.state != JobState::Completed {
            return;
        }
        let case = rec.spec.case_id.as_str();
        match intel.index.add_job(case, &rec.job_id, now_ms(), found) {
            Ok(done) => {
                let mut per_case: BTreeMap<&str, usize> = BTreeMap::new();
                for l in &done.new_links {
                    *per_case.entry(l.other_case.as_str()).or_default() += 1;
                }
                for (other, n) in per_case {
                    self.audit(
                        &system_caller(),
                        "intel.link",
                        other,
                        case,
                        format!(
                            "job {} shares {n} indicator(s) with case {other}",
                            rec.job_id
                        ),
                    );
                }
                if !done.already {
                    tracing::info!(
                        job = %rec.job_id,
                        indicators = done.indicators,
                        links = done.new_links.len(),
                        "indicators indexed"
                    );
                }
                if let Err(e) = self.store.flush() {
                    tracing::error!(job = %rec.job_id, error = %e, "flushing the indicator index");
                }
            }
            Err(e) => {
                tracing::error!(job = %rec.job_id, error = %e, "indexing the job's indicators (retried at the next start)");
            }
        }
    }

    /// Indexes, in the background, the completed jobs the index does not
    /// hold yet (a crash between completion and indexing; a data directory
    /// from before the index), oldest first.
    pub(crate) fn intel_backfill(self: &Arc<Self>) {
        let Some(intel) = &self.intel else { return };
        let jobs = match self.store.jobs() {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "listing jobs to index");
                return;
            }
        };
        let todo: Vec<JobRecord> = jobs
            .into_iter()
            .filter(|j| j.state == JobState::Completed && j.spec.origin.is_empty())
            .filter(|j| !intel.index.is_indexed(&j.job_id).unwrap_or(true))
            .collect();
        if todo.is_empty() {
            return;
        }
        let me = self.clone();
        let work = move || {
            for rec in todo {
                let r = me
                    .results(&rec.job_id)
                    .map_err(|e| e.to_string())
                    .and_then(|p| crate::results::from_pages(vec![p]));
                match r {
                    Ok((_, r)) => {
                        if let Some(intel) = &me.intel {
                            me.intel_index(&rec, &trawl_intel::extract(&r, &intel.cfg));
                        }
                    }
                    Err(e) => {
                        tracing::error!(job = %rec.job_id, error = %e, "reading results to index");
                    }
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(work);
            }
            Err(_) => {
                std::thread::spawn(work);
            }
        }
    }

    /// Alert changes, for watchers (`None`: no index).
    pub fn subscribe_alerts(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<trawl_intel::flash::AlertRecord>> {
        self.intel.as_ref().map(|i| i.alerts.subscribe())
    }

    /// `caller` as the registry describes it now (`None`: revoked or
    /// expired); unchanged on a scheduler without users.
    pub fn refresh_caller(&self, caller: &Caller) -> Option<Caller> {
        match self.authenticator() {
            None => Some(caller.clone()),
            Some(a) => a.refresh(caller),
        }
    }

    /// The names to contact about `case`: its active case officers, else
    /// the admins.
    pub fn case_contacts(&self, case: &str) -> Vec<String> {
        let Some(auth) = self.authenticator() else {
            return Vec::new();
        };
        let reg = auth.registry();
        let now = now_ms();
        let active = |u: &&crate::auth::UserRecord| {
            u.revoked_ms == 0 && (u.expires_ms == 0 || u.expires_ms > now)
        };
        let mut officers: Vec<String> = reg
            .users
            .iter()
            .filter(active)
            .filter(|u| u.role == Role::CaseOfficer && u.cases.iter().any(|c| c == case))
            .map(|u| u.name.clone())
            .collect();
        if officers.is_empty() {
            officers = reg
                .users
                .iter()
                .filter(active)
                .filter(|u| u.role == Role::Admin)
                .map(|u| u.name.clone())
                .collect();
        }
        officers.sort();
        officers
    }

    /// The cases linked to `case` (every case's links for an admin asking
    /// with an empty case). The caller must have been allowed to read
    /// `case`; each other case revealed is audited.
    ///
    /// # Errors
    /// The index off (embedded scans), the database failing.
    pub fn links(
        &self,
        caller: &Caller,
        case: &str,
    ) -> Result<Vec<(String, CaseLink)>, SchedError> {
        let intel = self.intel.as_ref().ok_or_else(|| {
            SchedError::FailedPrecondition("this scheduler keeps no indicator index".into())
        })?;
        let admin = caller.all_cases();
        let asking: Vec<String> = if case.is_empty() {
            if !admin {
                return Err(SchedError::InvalidArgument("case_id is empty".into()));
            }
            intel.index.cases().map_err(internal)?
        } else {
            vec![case.to_string()]
        };
        let mut out = Vec::new();
        for a in &asking {
            for (other, links) in intel.index.links(a).map_err(internal)? {
                let mut shared: Vec<(Indicator, i64)> = links
                    .iter()
                    .map(|l| (l.indicator.clone(), l.first_ms))
                    .collect();
                shared.sort();
                let (mut own_jobs, mut other_jobs) = (Vec::new(), Vec::new());
                if admin {
                    for (i, _) in &shared {
                        for s in intel.index.sightings(i).map_err(internal)? {
                            if s.case == *a {
                                own_jobs.extend(s.jobs);
                            } else if s.case == other {
                                other_jobs.extend(s.jobs);
                            }
                        }
                    }
                    for v in [&mut own_jobs, &mut other_jobs] {
                        v.sort();
                        v.dedup();
                    }
                }
                let link = CaseLink {
                    contacts: self.case_contacts(&other),
                    other_case: other.clone(),
                    shared,
                    own_jobs,
                    other_jobs,
                };
                self.audit(
                    caller,
                    "intel.case_revealed",
                    &other,
                    a,
                    format!(
                        "case {other} shown to a reader of case {a}: {} shared indicator(s)",
                        link.shared.len()
                    ),
                );
                out.push((a.clone(), link));
            }
        }
        Ok(out)
    }

    /// Every case where an indicator was seen (analysts and admins), with
    /// its contacts; audited with the cases it names.
    ///
    /// # Errors
    /// A value that is not an indicator of the kind; the index off; the
    /// database failing.
    pub fn lookup_indicator(
        &self,
        caller: &Caller,
        kind: &str,
        value: &str,
    ) -> Result<Lookup, SchedError> {
        let intel = self.intel.as_ref().ok_or_else(|| {
            SchedError::FailedPrecondition("this scheduler keeps no indicator index".into())
        })?;
        let k = Kind::parse(kind).ok_or_else(|| {
            SchedError::InvalidArgument(format!(
                "unknown indicator kind {kind:?} ({})",
                Kind::ALL.map(Kind::name).join(", ")
            ))
        })?;
        let indicator = trawl_intel::normalize_any(k, value, &intel.cfg)
            .map_err(|e| SchedError::InvalidArgument(e.to_string()))?;
        let common = intel.index.common_reason(&indicator).map_err(internal)?;
        let mut seen = Vec::new();
        for s in intel.index.sightings(&indicator).map_err(internal)? {
            seen.push(CaseSeen {
                contacts: self.case_contacts(&s.case),
                jobs: s.jobs.len() as u32,
                first_ms: s.first_ms,
                last_ms: s.last_ms,
                case: s.case,
            });
        }
        let shown = if indicator.kind == Kind::CcnHmac {
            "a card number (keyed hash)".to_string()
        } else {
            format!("{} {}", indicator.kind.name(), indicator.value)
        };
        self.audit(
            caller,
            "intel.lookup",
            &shown,
            "",
            format!(
                "seen in {} case(s): {}",
                seen.len(),
                seen.iter()
                    .map(|s| s.case.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        Ok(Lookup {
            indicator,
            common,
            seen,
        })
    }
}
