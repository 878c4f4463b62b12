//! Who may call the scheduler, and what they may do.
//!
//! A scheduler whose data directory was initialised (`trawl-scheduler init`)
//! has a private certificate authority and a user registry under
//! `DIR/auth/`:
//!
//! ```text
//! DIR/auth/ca.pem, ca.key          the lab's CA (the key never leaves DIR)
//! DIR/auth/server.pem, server.key  the scheduler's TLS identity, signed by the CA
//! DIR/auth/registry.json           users (role, cases, BLAKE3 of the token, expiry,
//!                                  revocation) and enrolled worker certificates
//!                                  (BLAKE3 fingerprint of the DER)
//! DIR/enroll/NAME/                 a worker's bundle: ca.pem, cert.pem, key.pem
//! ```
//!
//! Every connection is TLS. Workers present their certificate (mutual TLS):
//! it must be signed by the CA *and* enrolled, not revoked. Clients present
//! a bearer token (`authorization: Bearer ...`) bound to a user and a role:
//!
//! | role           | may                                                       |
//! |----------------|-----------------------------------------------------------|
//! | `investigator` | submit, upload, read, cancel jobs of its cases; read rules and the pool |
//! | `case_officer` | read jobs and results of its cases; read rules and the pool |
//! | `analyst`      | read the lab's indicator index, publish and withdraw alert flashes, export flashes; read rules and the pool; no case's jobs |
//! | `admin`        | everything on every case, users, rules, audit; not the worker calls |
//! | `worker`       | lease/report tasks, read evidence ranges, fetch rule sets |
//!
//! Only token hashes are stored; a token is shown once, when it is made.
//! The registry is a file so that `trawl-scheduler user add|revoke` works
//! while the scheduler runs (sled is locked by the running process); the
//! scheduler rereads it when it changes, and audits the changes it sees.
//!
//! The module is split by concern: [`registry`] (the users and worker
//! certificates of `registry.json`, its locking, and the differences the
//! scheduler audits), [`ca`] (the lab CA, leaf certificates, `init` and
//! worker enrolment) and [`authenticator`] (tokens and client certificates
//! to a [`Caller`], the TLS acceptors). What each RPC needs is decided in
//! one place, [`crate::service::authz`].

pub mod authenticator;
pub mod ca;
pub mod registry;

pub use crate::core::Caller;
pub use authenticator::{Authenticator, Refusal};
pub use ca::{InitReport, enroll_worker, init};
pub use registry::{
    AuthPaths, Registry, UserRecord, WorkerCertRecord, add_user, changes, is_initialised, registry,
    revoke_user, revoke_worker,
};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Default lifetime of a token: 90 days.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 90 * 24 * 3600;

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Investigator,
    CaseOfficer,
    /// Reads the lab's indicator index and publishes alert flashes; sees
    /// no case's jobs.
    Analyst,
    Admin,
    /// An enrolled worker node (mutual TLS).
    Worker,
    /// The unauthenticated loopback caller of an uninitialised scheduler.
    Local,
}

impl Role {
    /// The role named `s` (`investigator`, `case_officer`/`case-officer`,
    /// `admin`); workers are enrolled, not added as users.
    ///
    /// # Errors
    /// Unknown names.
    pub fn parse_user_role(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "investigator" => Ok(Role::Investigator),
            "case_officer" | "officer" => Ok(Role::CaseOfficer),
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            _ => bail!("unknown role {s:?} (investigator, case_officer, analyst, admin)"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Investigator => "investigator",
            Role::CaseOfficer => "case_officer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Worker => "worker",
            Role::Local => "local",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a call does, for the access check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Submit a job or upload evidence to a case.
    Submit,
    /// Read a job of a case: status, tasks, progress, results.
    Read,
    /// Cancel a job of a case.
    Cancel,
    /// List and fetch rule sets.
    ReadRules,
    /// Add rule sets.
    ManageRules,
    /// See the worker pool.
    ReadPool,
    /// Worker calls: register, lease, report, read evidence ranges.
    Work,
    /// Users and the audit trail.
    Administer,
    /// Look indicators up in the lab's index, across cases.
    ReadIndex,
    /// Publish and withdraw alert flashes.
    PublishFlash,
    /// Export a case's indicators (STIX, MISP) for sharing.
    Export,
}

impl Perm {
    pub fn as_str(self) -> &'static str {
        match self {
            Perm::Submit => "submit to",
            Perm::Read => "read",
            Perm::Cancel => "cancel jobs of",
            Perm::ReadRules => "read rule sets",
            Perm::ManageRules => "manage rule sets",
            Perm::ReadPool => "see the worker pool",
            Perm::Work => "make worker calls",
            Perm::Administer => "administer users and the audit trail",
            Perm::ReadIndex => "read the lab's indicator index",
            Perm::PublishFlash => "publish alert flashes",
            Perm::Export => "export the indicators of",
        }
    }

    /// Whether the permission is about one case.
    pub fn per_case(self) -> bool {
        matches!(
            self,
            Perm::Submit | Perm::Read | Perm::Cancel | Perm::Export
        )
    }
}

impl Caller {
    /// Whether this caller may do `perm` (on `case` for per-case
    /// permissions).
    pub fn may(&self, perm: Perm, case: &str) -> bool {
        let own = || self.cases.iter().any(|c| c == case);
        match self.role {
            Role::Local => true,
            Role::Admin => perm != Perm::Work,
            Role::Worker => matches!(perm, Perm::Work | Perm::ReadRules),
            Role::Investigator => match perm {
                Perm::Submit | Perm::Read | Perm::Cancel => own(),
                Perm::ReadRules | Perm::ReadPool => true,
                _ => false,
            },
            Role::CaseOfficer => match perm {
                Perm::Read | Perm::Export => own(),
                Perm::ReadRules | Perm::ReadPool => true,
                _ => false,
            },
            Role::Analyst => matches!(
                perm,
                Perm::ReadIndex | Perm::PublishFlash | Perm::ReadRules | Perm::ReadPool
            ),
        }
    }

    /// Whether the caller sees every case.
    pub fn all_cases(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_permissions() {
        let c = |role, cases: &[&str]| Caller {
            user: "u".into(),
            role,
            cases: cases.iter().map(|s| s.to_string()).collect(),
            peer: String::new(),
        };
        let inv = c(Role::Investigator, &["A"]);
        assert!(inv.may(Perm::Submit, "A") && !inv.may(Perm::Submit, "B"));
        assert!(inv.may(Perm::Cancel, "A") && !inv.may(Perm::ManageRules, ""));
        let off = c(Role::CaseOfficer, &["A"]);
        assert!(off.may(Perm::Read, "A") && !off.may(Perm::Read, "B"));
        assert!(!off.may(Perm::Submit, "A") && !off.may(Perm::Cancel, "A"));
        let adm = c(Role::Admin, &[]);
        assert!(
            adm.may(Perm::Read, "Z") && adm.may(Perm::Administer, "") && !adm.may(Perm::Work, "")
        );
        assert!(off.may(Perm::Export, "A") && !off.may(Perm::Export, "B"));
        assert!(!inv.may(Perm::Export, "A") && !inv.may(Perm::ReadIndex, ""));
        assert!(!off.may(Perm::ReadIndex, "") && !off.may(Perm::PublishFlash, ""));
        let ana = c(Role::Analyst, &[]);
        assert!(ana.may(Perm::ReadIndex, "") && ana.may(Perm::PublishFlash, ""));
        assert!(!ana.may(Perm::Read, "A") && !ana.may(Perm::Export, "A"));
        assert!(!ana.may(Perm::Administer, "") && !ana.may(Perm::Submit, "A"));
        assert!(adm.may(Perm::Export, "A") && adm.may(Perm::PublishFlash, ""));
        let w = c(Role::Worker, &[]);
        assert!(w.may(Perm::Work, "") && !w.may(Perm::Read, "A") && !w.may(Perm::Submit, "A"));
    }
}
