//! Rule sets as managed objects: registered (uploaded text), compiled once
//! with yara-x to check them, stored by name with their BLAKE3 digest.
//! Workers fetch a rule set's sources by digest, check the digest, and
//! compile it themselves (compiled rules are tied to the yara-x version and
//! must not be deserialised from elsewhere).

use crate::core::{Caller, Scheduler};
use crate::error::SchedError;
use std::sync::Arc;
use trawl_analyzers::yara;
use trawl_core::spec::RuleSource;
use trawl_store::{RuleDiagnosticRecord, RuleSetRecord, now_ms};

/// Largest accepted rule set (all sources together).
pub const MAX_RULESET_BYTES: usize = 48 << 20;

fn check_name(name: &str) -> Result<(), SchedError> {
    if name.is_empty() || name.len() > 128 {
        return Err(SchedError::InvalidArgument(
            "rule set name must be 1..128 characters".into(),
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(SchedError::InvalidArgument(format!(
            "rule set name {name:?}: only letters, digits and - _ . are allowed"
        )));
    }
    Ok(())
}

/// Checks the shape of rule sources (count, sizes, names).
fn check_sources(sources: &[RuleSource]) -> Result<(), SchedError> {
    if sources.is_empty() {
        return Err(SchedError::InvalidArgument(
            "a rule set needs at least one source file".into(),
        ));
    }
    let total: usize = sources.iter().map(|s| s.text.len() + s.name.len()).sum();
    if total > MAX_RULESET_BYTES {
        return Err(SchedError::ResourceExhausted(format!(
            "rule set of {total} bytes exceeds {MAX_RULESET_BYTES} bytes"
        )));
    }
    for s in sources {
        if s.name.is_empty() || s.name.len() > 512 {
            return Err(SchedError::InvalidArgument(
                "every source needs a name of 1..512 characters".into(),
            ));
        }
    }
    Ok(())
}

impl Scheduler {
    /// Compiles (off the runtime) and stores a rule set under `name`.
    ///
    /// # Errors
    /// Bad name, empty or oversized sources, nothing compiling, or any
    /// refused rule in strict mode.
    pub async fn add_ruleset(
        self: &Arc<Self>,
        name: &str,
        sources: Vec<RuleSource>,
        strict: bool,
        caller: &Caller,
    ) -> Result<RuleSetRecord, SchedError> {
        check_name(name)?;
        check_sources(&sources)?;
        let srcs = sources.clone();
        let compiled = tokio::task::spawn_blocking(move || yara::compile_cached(&srcs, strict))
            .await
            .map_err(|e| SchedError::Internal(e.to_string()))?
            .map_err(|e| SchedError::InvalidArgument(e.to_string()))?;
        self.store_ruleset(name, sources, strict, &compiled, caller)
    }

    /// Records a compiled rule set (by name, and by digest for workers).
    fn store_ruleset(
        &self,
        name: &str,
        sources: Vec<RuleSource>,
        strict: bool,
        compiled: &yara::CompiledRules,
        caller: &Caller,
    ) -> Result<RuleSetRecord, SchedError> {
        let refused_files = sources
            .iter()
            .filter(|s| {
                compiled
                    .diagnostics()
                    .iter()
                    .any(|d| d.severity == "error" && d.file == s.name && d.rule.is_empty())
            })
            .count() as u32;
        let rec = RuleSetRecord {
            name: name.to_string(),
            digest: compiled.digest().to_string(),
            sources: sources.into_iter().map(|s| (s.name, s.text)).collect(),
            rules: compiled.rule_count() as u32,
            rejected_files: refused_files,
            diagnostics: compiled
                .diagnostics()
                .iter()
                .map(|d| RuleDiagnosticRecord {
                    file: d.file.clone(),
                    line: d.line,
                    column: d.column,
                    severity: d.severity.clone(),
                    message: d.message.clone(),
                    rule: d.rule.clone(),
                })
                .collect(),
            strict,
            created_ms: now_ms(),
            owner: caller.user.clone(),
        };
        self.store.put_ruleset(&rec)?;
        // Also reachable by digest (what workers ask for).
        if rec.name != rec.digest {
            let mut by_digest = rec.clone();
            by_digest.name = rec.digest.clone();
            self.store.put_ruleset(&by_digest)?;
        }
        self.audit(
            caller,
            "rules.add",
            name,
            "",
            format!("digest={} rules={}", rec.digest, rec.rules),
        );
        Ok(rec)
    }

    /// A rule set by name or digest.
    ///
    /// # Errors
    /// Unknown name.
    pub fn ruleset(&self, name: &str) -> Result<RuleSetRecord, SchedError> {
        self.store
            .ruleset(name)?
            .ok_or_else(|| SchedError::NotFound(format!("rule set {name:?}")))
    }

    /// Registered rule sets (by name; digest aliases omitted).
    ///
    /// # Errors
    /// The state database failing.
    pub fn rulesets(&self) -> Result<Vec<RuleSetRecord>, SchedError> {
        Ok(self
            .store
            .rulesets()?
            .into_iter()
            .filter(|r| r.name != r.digest || !r.name.chars().all(|c| c.is_ascii_hexdigit()))
            .collect())
    }

    /// Resolves a job's YARA rules before it is accepted: inline sources are
    /// registered as an anonymous rule set (named by digest) and replaced by
    /// their digest; a named set is looked up. The stored spec then carries
    /// only the digest.
    ///
    /// # Errors
    /// Unknown rule set, rules that do not compile.
    pub(crate) async fn resolve_rules(
        self: &Arc<Self>,
        spec: &mut trawl_core::JobSpec,
        caller: &Caller,
    ) -> Result<(), SchedError> {
        if !spec.analyses.yara {
            return Ok(());
        }
        if !spec.yara.sources.is_empty() {
            let sources = std::mem::take(&mut spec.yara.sources);
            let digest = yara::digest(&sources);
            match self.store.ruleset(&digest)? {
                Some(r) if r.strict == spec.yara.strict || !spec.yara.strict => {}
                _ if spec.yara.strict => {
                    // Strict: the whole set must compile before the job exists.
                    self.add_ruleset(&digest, sources, true, caller).await?;
                }
                _ => {
                    // Not strict: workers compile what each image needs; the
                    // full compilation (for the list of refused rules) runs
                    // in the background and its diagnostics reach the report.
                    check_sources(&sources)?;
                    // Without a full compilation, at least refuse a set in
                    // which nothing parses, and keep its syntax errors.
                    let syntax = yara::syntax_errors(&sources);
                    let parsed_rules: usize = sources
                        .iter()
                        .map(|s| yara::classify_source(&s.text).len())
                        .sum();
                    if parsed_rules == 0 {
                        let why = syntax
                            .first()
                            .map(|d| format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message))
                            .unwrap_or_else(|| "the sources define no rule".into());
                        return Err(SchedError::InvalidArgument(format!(
                            "no YARA rule compiled: {why}"
                        )));
                    }
                    let rec = RuleSetRecord {
                        name: digest.clone(),
                        digest: digest.clone(),
                        sources: sources
                            .iter()
                            .map(|s| (s.name.clone(), s.text.clone()))
                            .collect(),
                        rules: parsed_rules as u32,
                        rejected_files: 0,
                        diagnostics: syntax
                            .iter()
                            .map(|d| RuleDiagnosticRecord {
                                file: d.file.clone(),
                                line: d.line,
                                column: d.column,
                                severity: d.severity.clone(),
                                message: d.message.clone(),
                                rule: d.rule.clone(),
                            })
                            .collect(),
                        strict: false,
                        created_ms: now_ms(),
                        owner: caller.user.clone(),
                    };
                    self.store.put_ruleset(&rec)?;
                    if !self.cfg.background_rule_validation {
                        spec.yara.ruleset_digest = digest;
                        return Ok(());
                    }
                    let me = self.clone();
                    let caller = caller.clone();
                    let name = digest.clone();
                    tokio::task::spawn_blocking(move || {
                        match yara::compile_cached(&sources, false) {
                            Ok(c) => {
                                if let Err(e) = me.store_ruleset(&name, sources, false, &c, &caller)
                                {
                                    tracing::error!(error = %e, "storing rule set diagnostics failed");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "rule set compilation"),
                        }
                    });
                }
            }
            spec.yara.ruleset_digest = digest;
        } else if !spec.yara.ruleset_name.is_empty() {
            let name = &spec.yara.ruleset_name;
            let rec = match self.ruleset(name) {
                // a flash's rules run only in its retrohunts
                Ok(r)
                    if !crate::intel::flash::may_see_flash_rules(caller)
                        && (crate::intel::flash::is_flash_ruleset(&r.name)
                            || self.is_flash_digest(&r.digest)) =>
                {
                    return Err(SchedError::NotFound(format!("rule set {name:?}")));
                }
                r => r?,
            };
            if spec.yara.strict && rec.diagnostics.iter().any(|d| d.severity == "error") {
                return Err(SchedError::InvalidArgument(format!(
                    "strict mode: rule set {:?} has refused rules",
                    rec.name
                )));
            }
            spec.yara.ruleset_digest = rec.digest;
        } else if spec.yara.ruleset_digest.is_empty() {
            return Err(SchedError::InvalidArgument(
                "the yara analysis needs rules (inline sources or a registered rule set)".into(),
            ));
        } else {
            let r = self.ruleset(&spec.yara.ruleset_digest)?;
            if !crate::intel::flash::may_see_flash_rules(caller)
                && (crate::intel::flash::is_flash_ruleset(&r.name)
                    || self.is_flash_digest(&r.digest))
            {
                return Err(SchedError::NotFound(format!(
                    "rule set {:?}",
                    spec.yara.ruleset_digest
                )));
            }
        }
        Ok(())
    }
}
