//! The Intel service: cross-case links and indicator look-ups.

use super::{BoxStream, Call, MAX_ID, MAX_TEXT, bounded, caller};
use crate::core::Scheduler;
use crate::intel::flash::{FlashInput, MAX_FLASH_INDICATORS, RetroProgress};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use trawl_intel::flash::{AlertRecord, AlertState, AlertWhat, FlashRecord, FlashState};
use trawl_proto::v1;

/// The lab's memory.
#[derive(Clone, Debug)]
pub struct IntelService {
    pub sched: Arc<Scheduler>,
}

fn wire_indicator(i: &trawl_intel::Indicator) -> v1::Indicator {
    v1::Indicator {
        kind: i.kind.name().into(),
        value: i.value.clone(),
    }
}

/// Wire form of an alert, with its case's contacts.
pub fn wire_alert(sched: &Scheduler, a: &AlertRecord) -> v1::Alert {
    let (state_by, reason, state_ms) = match &a.state {
        AlertState::New => (String::new(), String::new(), 0),
        AlertState::Seen { by, ms } => (by.clone(), String::new(), *ms),
        AlertState::Dismissed { by, ms, reason } => (by.clone(), reason.clone(), *ms),
    };
    let (kind, indicator, rules, hits) = match &a.what {
        AlertWhat::Indicator {
            indicator_kind,
            value,
        } => (
            "indicator",
            Some(v1::Indicator {
                kind: indicator_kind.clone(),
                value: value.clone(),
            }),
            Vec::new(),
            1,
        ),
        AlertWhat::Rule { rules, hits } => ("rule", None, rules.clone(), *hits),
    };
    v1::Alert {
        alert_id: a.id.clone(),
        seq: a.seq,
        case_id: a.case.clone(),
        flash_id: a.flash.clone(),
        flash_title: a.flash_title.clone(),
        tlp: a.tlp.name().into(),
        job_id: a.job.clone(),
        kind: kind.into(),
        indicator,
        rules,
        hits,
        state: a.state.name().into(),
        state_by,
        reason,
        created_unix_ms: a.created_ms,
        state_unix_ms: state_ms,
        contacts: sched.case_contacts(&a.case),
    }
}

fn wire_flash(f: &FlashRecord, p: &RetroProgress) -> v1::Flash {
    v1::Flash {
        flash_id: f.id.clone(),
        title: f.title.clone(),
        tlp: f.tlp.name().into(),
        state: if f.active() { "active" } else { "withdrawn" }.into(),
        publisher: f.publisher.clone(),
        published_unix_ms: f.published_ms,
        indicators: f
            .indicators
            .iter()
            .map(|(k, v)| v1::Indicator {
                kind: k.clone(),
                value: v.clone(),
            })
            .collect(),
        ruleset: f.ruleset.clone().unwrap_or_default(),
        retro: Some(v1::RetroProgress {
            jobs: p.jobs,
            running: p.running,
            done: p.done,
            failed: p.failed,
            hits: p.hits,
            bytes_scanned: p.bytes,
        }),
        description: f.description.clone(),
        withdrawn_reason: match &f.state {
            FlashState::Withdrawn { reason, .. } => reason.clone(),
            FlashState::Active => String::new(),
        },
        ..Default::default()
    }
}

#[tonic::async_trait]
impl v1::intel_server::Intel for IntelService {
    type WatchAlertsStream = BoxStream<v1::Alert>;
    type ExportStream = BoxStream<v1::ExportFile>;

    async fn export(
        &self,
        req: Request<v1::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        use crate::intel::export::{Format, Scope};
        use v1::export_request::Scope as W;
        let call = Call::of(&req)?;
        let r = req.into_inner();
        bounded("tlp", &r.tlp, MAX_ID)?;
        bounded("format", &r.format, MAX_ID)?;
        let scope = match r.scope {
            Some(W::CaseId(c)) => {
                super::check_id("case_id", &c)?;
                Scope::Case(c)
            }
            Some(W::JobId(j)) => {
                super::check_id("job_id", &j)?;
                Scope::Job(super::canonical_job_id(&j))
            }
            Some(W::FlashId(f)) => {
                super::check_id("flash_id", &f)?;
                Scope::Flash(f)
            }
            None => {
                return Err(Status::invalid_argument(
                    "an export needs a case, a job or a flash",
                ));
            }
        };
        let format = Format::parse(&r.format).ok_or_else(|| {
            Status::invalid_argument(format!("format {:?}: stix, misp or misp-feed", r.format))
        })?;
        let sched = self.sched.clone();
        let caller = call.caller.clone();
        let out = tokio::task::spawn_blocking(move || {
            sched.export(&caller, &scope, format, &r.tlp, r.include_common)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        let n = out.files.len();
        let msgs: Vec<v1::ExportFile> = out
            .files
            .into_iter()
            .enumerate()
            .map(|(i, (path, content, sha256))| {
                let last = i + 1 == n;
                v1::ExportFile {
                    path,
                    content,
                    sha256,
                    last,
                    digest: if last {
                        out.digest.clone()
                    } else {
                        String::new()
                    },
                    objects: out.objects as u32,
                    withheld: out.withheld as u32,
                    not_in_format: out.not_in_format as u32,
                }
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(
            msgs.into_iter().map(Ok),
        ))))
    }

    async fn publish_flash(
        &self,
        req: Request<v1::PublishFlashRequest>,
    ) -> Result<Response<v1::Flash>, Status> {
        let call = Call::of(&req)?;
        let r = req.into_inner();
        bounded("title", &r.title, crate::intel::flash::MAX_TITLE)?;
        bounded("description", &r.description, MAX_TEXT)?;
        bounded("tlp", &r.tlp, MAX_ID)?;
        if r.indicators.len() > MAX_FLASH_INDICATORS {
            return Err(Status::invalid_argument(format!(
                "more than {MAX_FLASH_INDICATORS} indicators"
            )));
        }
        for i in &r.indicators {
            bounded("indicator kind", &i.kind, MAX_ID)?;
            bounded("indicator value", &i.value, MAX_TEXT)?;
        }
        if r.rules.len() > 10_000 || r.rules.iter().any(|s| s.name.len() > MAX_TEXT) {
            return Err(Status::invalid_argument(
                "rules: more than 10000 files, or a file name longer than 4096 bytes",
            ));
        }
        let input = FlashInput {
            title: r.title,
            description: r.description,
            tlp: r.tlp,
            indicators: r
                .indicators
                .into_iter()
                .map(|i| (i.kind, i.value))
                .collect(),
            rules: r.rules.into_iter().map(Into::into).collect(),
            no_retrohunt: r.no_retrohunt,
        };
        let p = self.sched.publish_flash(&call.caller, input).await?;
        let mut w = wire_flash(&p.flash, &RetroProgress::default());
        w.rejected = p.rejected;
        w.past_alerts = p.past.iter().map(|a| wire_alert(&self.sched, a)).collect();
        w.retro_jobs = p.retro_jobs;
        w.gone = p
            .gone
            .into_iter()
            .map(|(j, why)| format!("{j}: {why}"))
            .collect();
        Ok(Response::new(w))
    }

    async fn list_flashes(
        &self,
        _req: Request<v1::ListFlashesRequest>,
    ) -> Result<Response<v1::ListFlashesResponse>, Status> {
        let list = self.sched.flashes()?;
        Ok(Response::new(v1::ListFlashesResponse {
            flashes: list.iter().map(|(f, p)| wire_flash(f, p)).collect(),
        }))
    }

    async fn withdraw_flash(
        &self,
        req: Request<v1::WithdrawFlashRequest>,
    ) -> Result<Response<v1::Flash>, Status> {
        let call = Call::of(&req)?;
        let r = req.into_inner();
        bounded("flash_id", &r.flash_id, MAX_ID)?;
        bounded("reason", &r.reason, MAX_TEXT)?;
        let f = self
            .sched
            .withdraw_flash(&call.caller, &r.flash_id, &r.reason)?;
        Ok(Response::new(wire_flash(&f, &RetroProgress::default())))
    }

    async fn list_alerts(
        &self,
        req: Request<v1::ListAlertsRequest>,
    ) -> Result<Response<v1::ListAlertsResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        bounded("case_id", &r.case_id, MAX_ID)?;
        bounded("state", &r.state, MAX_ID)?;
        let limit = if r.limit == 0 {
            10_000
        } else {
            r.limit.min(100_000)
        } as usize;
        let list = self
            .sched
            .alerts(&who, &r.case_id, &r.state, r.from_seq, limit)?;
        Ok(Response::new(v1::ListAlertsResponse {
            alerts: list.iter().map(|a| wire_alert(&self.sched, a)).collect(),
        }))
    }

    async fn watch_alerts(
        &self,
        req: Request<v1::WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        bounded("case_id", &r.case_id, MAX_ID)?;
        let Some(mut rx) = self.sched.subscribe_alerts() else {
            return Err(Status::failed_precondition(
                "this scheduler keeps no indicator index",
            ));
        };
        // subscribed first, then the stored alerts: none falls between
        let past = self
            .sched
            .alerts(&who, &r.case_id, "", r.from_seq, 100_000)?;
        let sched = self.sched.clone();
        let case = r.case_id;
        Ok(Response::new(super::async_stream_job(
            move |tx| async move {
                let mut last = 0u64;
                for a in past {
                    last = last.max(a.seq);
                    if tx.send(Ok(wire_alert(&sched, &a))).await.is_err() {
                        return;
                    }
                }
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    let a = tokio::select! {
                        a = rx.recv() => a,
                        _ = tick.tick() => {
                            // the caller's rights are rechecked as time passes
                            if sched.refresh_caller(&who).is_none() {
                                let _ = tx.send(Err(Status::permission_denied("the token was revoked or expired"))).await;
                                return;
                            }
                            continue;
                        }
                    };
                    match a {
                        Ok(a) => {
                            // a changed alert comes again; a new one only once
                            if a.state == AlertState::New && a.seq <= last {
                                continue;
                            }
                            last = last.max(a.seq);
                            let Some(now) = sched.refresh_caller(&who) else {
                                let _ = tx
                                    .send(Err(Status::permission_denied(
                                        "the token was revoked or expired",
                                    )))
                                    .await;
                                return;
                            };
                            if (!case.is_empty() && a.case != case)
                                || !sched.may_see_alert(&now, &a)
                            {
                                continue;
                            }
                            if tx.send(Ok(wire_alert(&sched, &a))).await.is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let _ = tx
                            .send(Err(Status::resource_exhausted(
                                "alerts came faster than this watch read them: watch again from the last seq",
                            )))
                            .await;
                            return;
                        }
                        Err(_) => return,
                    }
                }
            },
        )))
    }

    async fn update_alert(
        &self,
        req: Request<v1::UpdateAlertRequest>,
    ) -> Result<Response<v1::Alert>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        bounded("alert_id", &r.alert_id, MAX_ID)?;
        bounded("state", &r.state, MAX_ID)?;
        bounded("reason", &r.reason, MAX_TEXT)?;
        let a = self
            .sched
            .update_alert(&who, &r.alert_id, &r.state, &r.reason)?;
        Ok(Response::new(wire_alert(&self.sched, &a)))
    }

    async fn list_links(
        &self,
        req: Request<v1::ListLinksRequest>,
    ) -> Result<Response<v1::ListLinksResponse>, Status> {
        let call = Call::of(&req)?;
        let case = req.into_inner().case_id;
        bounded("case_id", &case, MAX_ID)?;
        call.case(&self.sched, &case, &case)?;
        let sched = self.sched.clone();
        let caller = call.caller.clone();
        let found = tokio::task::spawn_blocking(move || sched.links(&caller, &case))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        let mut links = Vec::new();
        for (asking, l) in found {
            for (ind, first) in &l.shared {
                links.push(v1::Link {
                    indicator: Some(wire_indicator(ind)),
                    case_id: asking.clone(),
                    other_case: l.other_case.clone(),
                    contacts: l.contacts.clone(),
                    first_linked_unix_ms: *first,
                    own_jobs: l.own_jobs.clone(),
                    other_jobs: l.other_jobs.clone(),
                });
            }
        }
        Ok(Response::new(v1::ListLinksResponse { links }))
    }

    async fn lookup_indicator(
        &self,
        req: Request<v1::LookupIndicatorRequest>,
    ) -> Result<Response<v1::LookupIndicatorResponse>, Status> {
        let call = Call::of(&req)?;
        let i = req
            .into_inner()
            .indicator
            .ok_or_else(|| Status::invalid_argument("indicator is missing"))?;
        bounded("indicator kind", &i.kind, MAX_ID)?;
        bounded("indicator value", &i.value, MAX_TEXT)?;
        let sched = self.sched.clone();
        let caller = call.caller.clone();
        let l =
            tokio::task::spawn_blocking(move || sched.lookup_indicator(&caller, &i.kind, &i.value))
                .await
                .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(v1::LookupIndicatorResponse {
            normalised: Some(wire_indicator(&l.indicator)),
            common: l.common.is_some(),
            common_reason: l.common.unwrap_or_default(),
            sightings: l
                .seen
                .into_iter()
                .map(|s| v1::Sighting {
                    case_id: s.case,
                    jobs: s.jobs,
                    first_unix_ms: s.first_ms,
                    last_unix_ms: s.last_ms,
                    contacts: s.contacts,
                })
                .collect(),
        }))
    }
}
