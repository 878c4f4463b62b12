//! The Rules service: YARA rule sets.

use super::{Call, MAX_TEXT, check_id};
use crate::core::Scheduler;
use crate::intel::flash::{is_flash_ruleset, may_see_flash_rules};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use trawl_proto::v1;

/// Rule sets.
#[derive(Clone, Debug)]
pub struct RulesService {
    pub sched: Arc<Scheduler>,
}

#[tonic::async_trait]
impl trawl_proto::v1::rules_server::Rules for RulesService {
    async fn add_rule_set(
        &self,
        req: Request<v1::AddRuleSetRequest>,
    ) -> Result<Response<v1::RuleSetInfo>, Status> {
        let call = Call::of(&req)?;
        let caller = call.caller.clone();
        let r = req.into_inner();
        check_id("name", &r.name)?;
        call.named(&self.sched, &r.name)?;
        if is_flash_ruleset(&r.name) {
            return Err(Status::invalid_argument(format!(
                "rule set name {:?}: names starting with \"flash-\" hold alert flashes' rules (publish a flash instead)",
                r.name
            )));
        }
        if r.sources.len() > 100_000 || r.sources.iter().any(|s| s.name.len() > MAX_TEXT) {
            return Err(Status::invalid_argument(
                "sources: more than 100000 files, or a file name longer than 4096 bytes",
            ));
        }
        let sources = r.sources.into_iter().map(Into::into).collect();
        let rec = self
            .sched
            .add_ruleset(&r.name, sources, r.strict, &caller)
            .await?;
        Ok(Response::new(v1::RuleSetInfo::from(&rec)))
    }

    async fn list_rule_sets(
        &self,
        req: Request<v1::ListRuleSetsRequest>,
    ) -> Result<Response<v1::ListRuleSetsResponse>, Status> {
        let who = super::caller(&req)?;
        let sets = self.sched.rulesets()?;
        Ok(Response::new(v1::ListRuleSetsResponse {
            rule_sets: sets
                .iter()
                .filter(|r| may_see_flash_rules(&who) || !is_flash_ruleset(&r.name))
                .map(v1::RuleSetInfo::from)
                .collect(),
        }))
    }

    async fn get_rule_set(
        &self,
        req: Request<v1::GetRuleSetRequest>,
    ) -> Result<Response<v1::RuleSet>, Status> {
        let call = Call::of(&req)?;
        let name = req.into_inner().name;
        check_id("name", &name)?;
        call.named(&self.sched, &name)?;
        let rec = self.sched.ruleset(&name)?;
        // a flash's rules (by name, or by their digest) are restricted
        if !may_see_flash_rules(&call.caller)
            && (is_flash_ruleset(&rec.name) || self.sched.is_flash_digest(&rec.digest))
        {
            return Err(Status::not_found(format!("rule set {name:?} not found")));
        }
        Ok(Response::new(v1::RuleSet::from(&rec)))
    }
}
