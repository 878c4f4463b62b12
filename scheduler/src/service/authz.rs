//! Authorisation as one layer in front of every trawl service.
//!
//! [`Authz`] wraps each gRPC service (tower, on the HTTP request, before
//! the message is decoded). For every call it
//!
//! 1. authenticates once: on an initialised scheduler a bearer token or an
//!    enrolled, unrevoked worker certificate (refusals: UNAUTHENTICATED,
//!    audited as `auth.refused`), otherwise the local caller;
//! 2. looks the method up in [`TABLE`] (method path → what it needs): a
//!    method that is not there is refused (UNIMPLEMENTED, as tonic answers
//!    an unknown method) before any handler runs;
//! 3. checks a permission that is not about one case (rule sets, the pool,
//!    worker calls, administration) right there: PERMISSION_DENIED and a
//!    `denied` audit entry naming the method's action;
//! 4. puts the [`Caller`] and the method's [`Need`] in the request's
//!    extensions, where handlers take them ([`super::Call`]).
//!
//! A per-case permission (submit, read, cancel) depends on the case the
//! call touches, known only once its message is decoded: the handler
//! checks it with one call ([`super::Call::case`] for a case named in the
//! request, [`super::Call::job`] for a job, which also hides jobs of other
//! cases as NOT_FOUND), with the permission taken from this table.

use crate::auth::Perm;
#[cfg(test)]
use crate::auth::Role;
use crate::core::{Caller, Scheduler};
use crate::server::{IN_PROCESS_PEER, InProcessPeer};
use futures::future::{Either, Ready, ready};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::Status;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// What a method needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any authenticated caller (reflection).
    Authenticated,
    /// A permission. One that is not per case is checked by the layer; a
    /// per-case one by the handler, on the case the call touches.
    Perm(Perm),
    /// A permission checked by the handler because a refusal is audited
    /// under the name the request carries (the rule set or user the caller
    /// tried to add, read or revoke), which the layer cannot see.
    Named(Perm),
}

/// One method: its gRPC path, what it needs, and the target its refusal
/// is audited under.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    pub path: &'static str,
    pub need: Need,
    pub action: &'static str,
}

const fn m(path: &'static str, need: Need, action: &'static str) -> Method {
    Method { path, need, action }
}

use Need::{Authenticated, Named as N, Perm as P};

/// Every method served behind the layer. `ReadRange` needs `Read` of the
/// job's case from clients; a worker certificate is served instead the
/// ranges of the tasks it holds a lease on (checked against the lease by
/// the handler, refusals audited).
pub const TABLE: &[Method] = &[
    m("/trawl.v1.Jobs/SubmitJob", P(Perm::Submit), "job.submit"),
    m("/trawl.v1.Jobs/GetJob", P(Perm::Read), "job.get"),
    m("/trawl.v1.Jobs/ListJobs", P(Perm::Read), "jobs.list"),
    m("/trawl.v1.Jobs/WatchJob", P(Perm::Read), "job.watch"),
    m("/trawl.v1.Jobs/CancelJob", P(Perm::Cancel), "job.cancel"),
    m("/trawl.v1.Jobs/GetResults", P(Perm::Read), "results.get"),
    m("/trawl.v1.Jobs/ListTasks", P(Perm::Read), "tasks.list"),
    m(
        "/trawl.v1.Rules/AddRuleSet",
        N(Perm::ManageRules),
        "rules.add",
    ),
    m(
        "/trawl.v1.Rules/ListRuleSets",
        P(Perm::ReadRules),
        "rules.list",
    ),
    m(
        "/trawl.v1.Rules/GetRuleSet",
        N(Perm::ReadRules),
        "rules.get",
    ),
    m(
        "/trawl.v1.Cluster/Register",
        P(Perm::Work),
        "cluster.register",
    ),
    m(
        "/trawl.v1.Cluster/Heartbeat",
        P(Perm::Work),
        "cluster.heartbeat",
    ),
    m(
        "/trawl.v1.Cluster/LeaseTasks",
        P(Perm::Work),
        "cluster.lease_tasks",
    ),
    m(
        "/trawl.v1.Cluster/ReportTask",
        P(Perm::Work),
        "cluster.report_task",
    ),
    m(
        "/trawl.v1.Cluster/ReleaseTasks",
        P(Perm::Work),
        "cluster.release_tasks",
    ),
    m(
        "/trawl.v1.Cluster/ListWorkers",
        P(Perm::ReadPool),
        "workers.list",
    ),
    m(
        "/trawl.v1.Evidence/UploadEvidence",
        P(Perm::Submit),
        "evidence.upload",
    ),
    m(
        "/trawl.v1.Evidence/UploadStatus",
        P(Perm::Submit),
        "evidence.status",
    ),
    m(
        "/trawl.v1.Evidence/ReadRange",
        P(Perm::Read),
        "evidence.read",
    ),
    m(
        "/trawl.v1.Admin/ListUsers",
        P(Perm::Administer),
        "users.list",
    ),
    m("/trawl.v1.Admin/AddUser", N(Perm::Administer), "users.add"),
    m(
        "/trawl.v1.Admin/RevokeUser",
        N(Perm::Administer),
        "users.revoke",
    ),
    m(
        "/trawl.v1.Admin/ListAudit",
        P(Perm::Administer),
        "audit.list",
    ),
    m(
        "/trawl.v1.Admin/VerifyAudit",
        P(Perm::Administer),
        "audit.verify",
    ),
    m("/trawl.v1.Intel/ListLinks", P(Perm::Read), "links.list"),
    m(
        "/trawl.v1.Intel/LookupIndicator",
        P(Perm::ReadIndex),
        "index.lookup",
    ),
    m(
        "/trawl.v1.Intel/PublishFlash",
        P(Perm::PublishFlash),
        "flash.publish",
    ),
    m(
        "/trawl.v1.Intel/ListFlashes",
        P(Perm::PublishFlash),
        "flash.list",
    ),
    m(
        "/trawl.v1.Intel/WithdrawFlash",
        P(Perm::PublishFlash),
        "flash.withdraw",
    ),
    // Alerts: every caller, filtered to what it may see by the handler.
    m("/trawl.v1.Intel/ListAlerts", Authenticated, "alerts.list"),
    m("/trawl.v1.Intel/WatchAlerts", Authenticated, "alerts.watch"),
    m("/trawl.v1.Intel/UpdateAlert", Authenticated, "alert.update"),
    m("/trawl.v1.Intel/Export", P(Perm::Export), "export"),
    // The threat report: every caller, its figures filtered to what it may
    // read by the handler.
    m(
        "/trawl.v1.Reports/GetThreatReport",
        Authenticated,
        "report.threat",
    ),
    // Reflection describes the API: to authenticated callers only.
    m(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Authenticated,
        "reflection",
    ),
];

/// The table's entry for a method path.
pub fn method(path: &str) -> Option<&'static Method> {
    TABLE.iter().find(|m| m.path == path)
}

/// A refusal by the layer: the status, and the audit entry it makes
/// (`None` when nothing is audited: an unknown method).
#[derive(Debug)]
pub struct Denial {
    pub status: Status,
    /// (target, detail) of the `denied` entry.
    pub audit: Option<(&'static str, String)>,
}

/// Whether `caller` may call `path`, by the table alone: the method's entry,
/// or the refusal. Per-case permissions pass (the handler checks the case).
///
/// # Errors
/// An unknown method; a permission the caller's role does not have.
pub fn check(path: &str, caller: &Caller) -> Result<&'static Method, Denial> {
    let Some(m) = method(path) else {
        let shown: String = path.chars().take(200).collect();
        return Err(Denial {
            status: Status::unimplemented(format!("unknown method {shown:?}")),
            audit: None,
        });
    };
    match m.need {
        Need::Perm(p) if !p.per_case() && !caller.may(p, "") => {
            let what = p.as_str().to_string();
            Err(Denial {
                status: Status::permission_denied(format!(
                    "user {} ({}) may not {what}",
                    caller.user, caller.role
                )),
                audit: Some((m.action, what)),
            })
        }
        _ => Ok(m),
    }
}

/// The peer of a request, as the audit trail names it.
fn peer_of(ext: &http::Extensions) -> String {
    let addr = ext
        .get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        });
    match addr {
        Some(a) => a.to_string(),
        None if ext.get::<InProcessPeer>().is_some() => IN_PROCESS_PEER.into(),
        None => "unknown".into(),
    }
}

/// Authenticates a request: on an initialised scheduler a bearer token or
/// an enrolled worker certificate (refusals are audited), otherwise the
/// local caller.
fn authenticate(
    sched: &Scheduler,
    headers: &http::HeaderMap,
    ext: &http::Extensions,
) -> Result<Caller, Status> {
    let peer = peer_of(ext);
    let Some(a) = sched.authenticator() else {
        return Ok(Caller::local(peer));
    };
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let certs = ext
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|i| i.peer_certs());
    a.authenticate(authorization, certs.as_deref().map(|c| c.as_slice()), &peer)
        .map_err(|r| {
            sched.audit_refusal(&r.who, &peer, &r.reason);
            Status::unauthenticated(r.reason)
        })
}

/// Authenticates and authorises one call (see the module's steps).
///
/// # Errors
/// The status the call is refused with.
pub fn admit(
    sched: &Scheduler,
    path: &str,
    headers: &http::HeaderMap,
    ext: &http::Extensions,
) -> Result<(Caller, Need), Status> {
    let caller = authenticate(sched, headers, ext)?;
    match check(path, &caller) {
        Ok(m) => Ok((caller, m.need)),
        Err(d) => {
            if let Some((target, detail)) = d.audit {
                sched.audit(&caller, "denied", target, "", detail);
            }
            Err(d.status)
        }
    }
}

/// The layer around one service (see the module).
#[derive(Clone)]
pub struct Authz<S> {
    inner: S,
    sched: Arc<Scheduler>,
}

impl<S> Authz<S> {
    pub fn new(sched: Arc<Scheduler>, inner: S) -> Self {
        Self { inner, sched }
    }
}

impl<S: NamedService> NamedService for Authz<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Authz<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Either<Ready<Result<Self::Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match admit(
            &self.sched,
            req.uri().path(),
            req.headers(),
            req.extensions(),
        ) {
            Ok((caller, need)) => {
                req.extensions_mut().insert(caller);
                req.extensions_mut().insert(need);
                Either::Right(self.inner.call(req))
            }
            Err(status) => Either::Left(ready(Ok(status.into_http()))),
        }
    }
}

/// Whether `role` is one the layer lets through for `need` (used by the
/// table's tests; per-case permissions are the handlers').
#[cfg(test)]
fn passes(role: Role, need: Need) -> bool {
    let c = Caller {
        user: "u".into(),
        role,
        cases: vec!["A".into()],
        peer: String::new(),
    };
    match need {
        Need::Authenticated | Need::Named(_) => true,
        Need::Perm(p) => p.per_case() || c.may(p, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Every method of every service of `trawl.v1`, as gRPC paths.
    fn proto_methods() -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(trawl_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut out = Vec::new();
        for f in &set.file {
            let pkg = f.package();
            for s in &f.service {
                for m in &s.method {
                    out.push(format!("/{pkg}.{}/{}", s.name(), m.name()));
                }
            }
        }
        out
    }

    #[test]
    fn every_rpc_of_the_proto_has_one_entry() {
        let methods = proto_methods();
        assert!(methods.len() >= 24, "{methods:?}");
        for p in &methods {
            assert!(method(p).is_some(), "{p} is not in the table");
        }
        // Nothing in the table that the proto (or reflection) does not have.
        for m in TABLE {
            assert!(
                methods.iter().any(|p| p == m.path) || m.path.starts_with("/grpc.reflection."),
                "{} is not a method of the proto",
                m.path
            );
            assert_eq!(
                TABLE.iter().filter(|n| n.path == m.path).count(),
                1,
                "{} twice",
                m.path
            );
        }
    }

    #[test]
    fn an_unknown_method_is_refused() {
        let admin = Caller {
            user: "root".into(),
            role: Role::Admin,
            cases: Vec::new(),
            peer: String::new(),
        };
        for p in [
            "/trawl.v1.Jobs/DropJob",
            "/trawl.v1.Admin/",
            "",
            "/grpc.health.v1.Health/Check",
            "/trawl.v1.jobs/GetJob",
        ] {
            let d = check(p, &admin).unwrap_err();
            assert_eq!(d.status.code(), tonic::Code::Unimplemented, "{p}");
            assert!(d.audit.is_none());
        }
        // Even the local caller, who may do everything else.
        let local = Caller::local("p");
        assert!(check("/trawl.v1.Jobs/Nope", &local).is_err());
        let long = format!("/trawl.v1.Jobs/{}", "x".repeat(10_000));
        assert!(check(&long, &local).unwrap_err().status.message().len() < 300);
    }

    #[test]
    fn the_layer_refuses_what_a_role_may_never_do() {
        let who = |role| Caller {
            user: "u".into(),
            role,
            cases: vec!["A".into()],
            peer: String::new(),
        };
        let refused = |path: &str, role| {
            let d = check(path, &who(role)).unwrap_err();
            assert_eq!(d.status.code(), tonic::Code::PermissionDenied, "{path}");
            d
        };
        let d = refused("/trawl.v1.Cluster/Register", Role::Admin);
        assert_eq!(d.audit.as_ref().unwrap().0, "cluster.register");
        assert_eq!(
            d.status.message(),
            "user u (admin) may not make worker calls"
        );
        refused("/trawl.v1.Admin/ListAudit", Role::Investigator);
        refused("/trawl.v1.Cluster/ListWorkers", Role::Worker);
        // Named methods reach their handler, which refuses them audited
        // under the name in the request.
        assert!(check("/trawl.v1.Rules/AddRuleSet", &who(Role::CaseOfficer)).is_ok());
        assert!(check("/trawl.v1.Admin/RevokeUser", &who(Role::Investigator)).is_ok());
        assert!(check("/trawl.v1.Rules/GetRuleSet", &who(Role::Worker)).is_ok());
        assert!(check("/trawl.v1.Cluster/LeaseTasks", &who(Role::Worker)).is_ok());
        assert!(check("/trawl.v1.Admin/AddUser", &who(Role::Admin)).is_ok());
    }

    #[test]
    fn per_case_methods_reach_their_handler() {
        // The case is in the message: a worker asking for a job is told
        // by the handler that it does not exist, not refused here.
        for m in TABLE {
            if let Need::Perm(p) = m.need
                && p.per_case()
            {
                assert!(passes(Role::Worker, m.need), "{}", m.path);
                assert!(check(m.path, &Caller::local("p")).is_ok());
            }
        }
        assert!(passes(Role::Investigator, Need::Authenticated));
        assert!(!passes(Role::Investigator, Need::Perm(Perm::Administer)));
    }
}
