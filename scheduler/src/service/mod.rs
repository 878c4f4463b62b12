//! The gRPC services: thin adapters from wire messages to [`Scheduler`]
//! calls, one module per service. Who may call what is decided before any
//! handler runs, by one layer ([`authz`]); handlers take the caller from
//! the request ([`Call`]) and check only the case they touch. Wire input
//! is validated here (ids, sizes, enums) and every error maps to a status
//! code in one place ([`crate::SchedError`]'s `From`). Conversions between
//! the wire and the model live in `trawl_proto::convert` and
//! `trawl_store::wire`.

pub mod authz;
mod cluster;
mod evidence;
mod intel;
mod jobs;
mod reports;
mod rules;

pub use authz::{Authz, Need};
pub use cluster::ClusterService;
pub use evidence::EvidenceService;
pub use intel::IntelService;
pub use jobs::JobsService;
pub use reports::ReportsService;
pub use rules::RulesService;

use crate::auth::{Perm, Role};
use crate::core::{Caller, Scheduler};
use futures::Stream;
use std::pin::Pin;
use tonic::{Request, Status};
use trawl_proto::v1;
use trawl_store::JobRecord;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Largest ReadRange request.
const MAX_READ_RANGE: u64 = 1 << 30;
/// Longest a lease request waits for work.
const MAX_LEASE_WAIT_MS: u32 = 5_000;
/// Default results page size (findings per message).
const DEFAULT_PAGE: usize = 20_000;

/// The caller of a request, as the authorisation layer ([`authz`])
/// identified it. A request that did not pass through it is refused.
pub fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("the caller was not authenticated"))
}

/// Refuses, with PERMISSION_DENIED and an audit entry, what `caller` may not
/// do.
pub fn authorize(
    sched: &Scheduler,
    caller: &Caller,
    perm: Perm,
    case: &str,
    target: &str,
) -> Result<(), Status> {
    if caller.may(perm, case) {
        return Ok(());
    }
    let what = if perm.per_case() {
        format!("{} case {case:?}", perm.as_str())
    } else {
        perm.as_str().to_string()
    };
    sched.audit(caller, "denied", target, case, what.clone());
    Err(Status::permission_denied(format!(
        "user {} ({}) may not {what}",
        caller.user, caller.role
    )))
}

/// A job id as the scheduler writes it (`J000042`): ids are accepted in
/// any case (`j000042`).
pub fn canonical_job_id(id: &str) -> String {
    match id.strip_prefix(['j', 'J']) {
        Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => {
            format!("J{rest}")
        }
        _ => id.to_string(),
    }
}

/// A job the caller may `perm`. A job of another case is answered exactly
/// as a job that does not exist (NOT_FOUND, same message: the answer tells
/// neither that the id exists nor its case); the refusal is audited.
pub fn job_for(
    sched: &Scheduler,
    caller: &Caller,
    perm: Perm,
    id: &str,
) -> Result<JobRecord, Status> {
    check_id("job_id", id)?;
    let hidden = || {
        Status::not_found(format!(
            "job {id:?} not found among the jobs you may access"
        ))
    };
    let Ok(job) = sched.job(id) else {
        return Err(hidden());
    };
    if !caller.may(perm, job.spec.case_id.as_str()) {
        sched.audit(
            caller,
            "denied",
            id,
            job.spec.case_id.as_str(),
            format!("{} a job of another case", perm.as_str()),
        );
        return Err(hidden());
    }
    Ok(job)
}

/// The worker id a call acts as: a worker certificate acts only as itself
/// (its name, or `NAME@...`); anything else is refused and audited.
pub(crate) fn acting_worker(
    sched: &Scheduler,
    caller: &Caller,
    requested: &str,
) -> Result<String, Status> {
    check_id("worker_id", requested)?;
    if caller.role == Role::Worker && !crate::core::worker_of_cert(requested, &caller.user) {
        sched.audit(caller, "denied", requested, "", "act as another worker");
        return Err(Status::permission_denied(format!(
            "the certificate of worker {} may not act as worker {requested:?}",
            caller.user
        )));
    }
    Ok(requested.to_string())
}

/// A name given to uploaded evidence: a plain file name, no path.
pub(crate) fn check_upload_name(name: &str) -> Result<(), String> {
    if name.len() > 255 {
        return Err("name longer than 255 bytes".into());
    }
    if name.contains(['/', '\\']) || name == ".." || name == "." || name.starts_with("..") {
        return Err(format!("name {name:?} is a path: give a plain file name"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("name {name:?} contains control characters"));
    }
    Ok(())
}

pub(crate) fn check_id(kind: &'static str, v: &str) -> Result<(), Status> {
    if v.is_empty() {
        return Err(Status::invalid_argument(format!("{kind} is empty")));
    }
    bounded(kind, v, MAX_ID)
}

/// Longest id (job, task, worker, case, rule set) accepted on the wire.
pub(crate) const MAX_ID: usize = 128;
/// Longest free text (a cancel reason, a description) accepted.
pub(crate) const MAX_TEXT: usize = 4096;

/// Refuses a string field longer than `max` bytes, before it is used,
/// stored or audited.
pub fn bounded(field: &'static str, v: &str, max: usize) -> Result<(), Status> {
    if v.len() > max {
        return Err(Status::invalid_argument(format!(
            "{field}: {} bytes, more than the limit of {max}",
            v.len()
        )));
    }
    Ok(())
}

/// The identity and free-text fields of a job specification, bounded
/// before the specification is converted or any of it is audited.
pub(crate) fn check_wire_spec(spec: &v1::JobSpec) -> Result<(), Status> {
    bounded("case_id", &spec.case_id, MAX_ID)?;
    bounded("description", &spec.description, MAX_TEXT)?;
    bounded("evidence_name", &spec.evidence_name, 255)?;
    if let Some(ev) = &spec.evidence {
        use v1::evidence_locator::Source;
        match &ev.source {
            Some(Source::Paths(p)) => {
                if p.paths.len() > 1024 {
                    return Err(Status::invalid_argument(
                        "evidence: more than 1024 segment paths",
                    ));
                }
                for path in &p.paths {
                    bounded("evidence path", path, MAX_TEXT)?;
                }
            }
            Some(Source::UploadDigest(d)) => bounded("evidence upload digest", d, 64)?,
            None => {}
        }
    }
    Ok(())
}

/// A stream fed by a task through a channel.
pub(crate) fn async_stream_job<T, F, Fut>(f: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// A call that passed the authorisation layer: its caller, and the
/// permission its method needs by [`authz::TABLE`].
#[derive(Debug, Clone)]
pub struct Call {
    pub caller: Caller,
    pub perm: Perm,
}

impl Call {
    /// The call of `req`, as the layer admitted it.
    ///
    /// # Errors
    /// A request that did not pass through the layer, or a method whose
    /// table entry names no permission.
    pub fn of<T>(req: &Request<T>) -> Result<Self, Status> {
        let caller = caller(req)?;
        match req.extensions().get::<Need>() {
            Some(Need::Perm(perm) | Need::Named(perm)) => Ok(Self {
                caller,
                perm: *perm,
            }),
            _ => Err(Status::internal(
                "the method has no permission in the table",
            )),
        }
    }

    /// Refuses (PERMISSION_DENIED, audited under `target`) a call on a
    /// case the caller may not act on with the method's permission.
    pub fn case(&self, sched: &Scheduler, case: &str, target: &str) -> Result<(), Status> {
        authorize(sched, &self.caller, self.perm, case, target)
    }

    /// Refuses (PERMISSION_DENIED, audited under `name`) a caller whose
    /// role does not have the method's permission ([`Need::Named`]).
    pub fn named(&self, sched: &Scheduler, name: &str) -> Result<(), Status> {
        authorize(sched, &self.caller, self.perm, "", name)
    }

    /// The job `id` (any case of its `J`), if the caller may act on it with
    /// the method's permission; else NOT_FOUND, as for a job that does not
    /// exist ([`job_for`]).
    pub fn job(&self, sched: &Scheduler, id: &str) -> Result<JobRecord, Status> {
        job_for(sched, &self.caller, self.perm, &canonical_job_id(id))
    }
}

/// Wire form of a job record, with live progress (the dashboard's path to
/// `trawl_store::wire`'s conversion).
pub fn wire_job(j: &JobRecord) -> v1::Job {
    v1::Job::from(j)
}
