//! The Admin service: users and tokens, the audit trail.

use crate::auth::{self, Role};
use crate::core::Scheduler;
use crate::service::{Call, caller};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use trawl_proto::v1::{self, admin_server::Admin};

/// Users and the audit trail (admin role).
#[derive(Clone, Debug)]
pub struct AdminService {
    pub sched: Arc<Scheduler>,
}

/// A user on the wire.
pub fn wire_user(u: &auth::UserRecord) -> v1::User {
    v1::User {
        name: u.name.clone(),
        role: u.role.to_string(),
        cases: u.cases.clone(),
        created_unix_ms: u.created_ms,
        expires_unix_ms: u.expires_ms,
        revoked_unix_ms: u.revoked_ms,
    }
}

/// An audit entry on the wire (`trawl_store::wire`'s conversion).
pub fn wire_entry(e: trawl_store::AuditEntry) -> v1::AuditEntry {
    e.into()
}

/// Most entries in one ListAudit page.
pub const MAX_AUDIT_PAGE: usize = 10_000;
/// A ListAudit page stops at about this many bytes of entries (clients
/// decode 4 MiB messages by default).
pub const MAX_AUDIT_PAGE_BYTES: usize = 1 << 20;

/// One page of the audit trail and where the next one starts (0: none),
/// capped at `limit` (0: 1000) entries and [`MAX_AUDIT_PAGE_BYTES`].
///
/// # Errors
/// The store failing or an undecodable entry.
pub fn audit_page(
    log: &trawl_store::AuditLog,
    from_seq: u64,
    limit: u32,
    case_id: &str,
) -> Result<v1::ListAuditResponse, trawl_store::AuditError> {
    let limit = if limit == 0 {
        1000
    } else {
        (limit as usize).min(MAX_AUDIT_PAGE)
    };
    let (entries, more) = log.page(from_seq, limit, MAX_AUDIT_PAGE_BYTES, case_id)?;
    let next_seq = match entries.last() {
        Some(e) if more => e.seq + 1,
        _ => 0,
    };
    Ok(v1::ListAuditResponse {
        entries: entries.into_iter().map(wire_entry).collect(),
        next_seq,
    })
}

impl AdminService {
    /// The data directory of an initialised scheduler (users live there).
    fn data(&self) -> Result<&std::path::Path, Status> {
        if self.sched.authenticator().is_none() {
            return Err(Status::failed_precondition(
                "this scheduler was not initialised (`trawl-scheduler init`): it has no users",
            ));
        }
        Ok(&self.sched.config().data_dir)
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_users(
        &self,
        _req: Request<v1::ListUsersRequest>,
    ) -> Result<Response<v1::ListUsersResponse>, Status> {
        let data = self.data()?;
        let reg = auth::registry(data).map_err(|e| Status::internal(format!("{e:#}")))?;
        Ok(Response::new(v1::ListUsersResponse {
            users: reg.users.iter().map(wire_user).collect(),
        }))
    }

    async fn add_user(
        &self,
        req: Request<v1::AddUserRequest>,
    ) -> Result<Response<v1::AddUserResponse>, Status> {
        let call = Call::of(&req)?;
        let caller = call.caller.clone();
        let r = req.into_inner();
        crate::service::bounded("name", &r.name, 128)?;
        call.named(&self.sched, &r.name)?;
        let data = self.data()?.to_path_buf();
        // Audit changes made outside (trawl-scheduler user ...) first, so
        // the quiet snapshot after this change does not swallow them.
        self.sched.sync_registry(true);
        let role =
            Role::parse_user_role(&r.role).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let ttl = if r.ttl_seconds == 0 {
            auth::DEFAULT_TOKEN_TTL_SECS
        } else {
            r.ttl_seconds
        };
        let (user, token) = auth::add_user(&data, &r.name, role, &r.cases, ttl).map_err(|e| {
            let m = format!("{e:#}");
            if m.contains("already exists") {
                Status::already_exists(m)
            } else {
                Status::invalid_argument(m)
            }
        })?;
        self.sched.audit(
            &caller,
            "user.add",
            &user.name,
            "",
            format!("role={} cases={:?}", user.role, user.cases),
        );
        self.sched.sync_registry(false);
        Ok(Response::new(v1::AddUserResponse {
            user: Some(wire_user(&user)),
            token,
        }))
    }

    async fn revoke_user(
        &self,
        req: Request<v1::RevokeUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        let call = Call::of(&req)?;
        let caller = call.caller.clone();
        let r = req.into_inner();
        crate::service::bounded("name", &r.name, 128)?;
        call.named(&self.sched, &r.name)?;
        let data = self.data()?.to_path_buf();
        self.sched.sync_registry(true);
        let user =
            auth::revoke_user(&data, &r.name).map_err(|e| Status::not_found(format!("{e:#}")))?;
        self.sched
            .audit(&caller, "user.revoke", &user.name, "", String::new());
        self.sched.sync_registry(false);
        Ok(Response::new(wire_user(&user)))
    }

    async fn list_audit(
        &self,
        req: Request<v1::ListAuditRequest>,
    ) -> Result<Response<v1::ListAuditResponse>, Status> {
        let r = req.into_inner();
        let page = audit_page(self.sched.store().audit(), r.from_seq, r.limit, &r.case_id)
            .map_err(|e| Status::data_loss(e.to_string()))?;
        Ok(Response::new(page))
    }

    async fn verify_audit(
        &self,
        req: Request<v1::VerifyAuditRequest>,
    ) -> Result<Response<v1::VerifyAuditResponse>, Status> {
        let caller = caller(&req)?;
        let store = self.sched.store();
        let (anchor, key) = match store.anchoring() {
            Some((a, k)) => (Some(a), k),
            None => (None, None),
        };
        let out = crate::audit_key::verify_log(store.audit(), anchor, key)
            .map_err(|e| Status::internal(e.to_string()))?;
        self.sched.audit(
            &caller,
            "audit.verify",
            "audit",
            "",
            if out.ok {
                format!(
                    "ok, {} entries, anchored head {}",
                    out.entries, out.anchored_seq
                )
            } else if out.broken_seq > 0 {
                format!("broken at entry {}: {}", out.broken_seq, out.problem)
            } else {
                format!("not verified: {}", out.problem)
            },
        );
        Ok(Response::new(out))
    }
}
