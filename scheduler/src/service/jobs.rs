//! The Jobs service: submit, follow, cancel and read jobs.

use super::{
    BoxStream, Call, DEFAULT_PAGE, MAX_ID, MAX_TEXT, async_stream_job, bounded, check_wire_spec,
};
use crate::core::Scheduler;
use crate::error::SchedError;
use crate::results;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use trawl_core::JobSpec;
use trawl_proto::convert::job_state_name;
use trawl_proto::v1::{self, jobs_server::Jobs};
use trawl_store::JobState;

/// Client-facing service.
#[derive(Clone, Debug)]
pub struct JobsService {
    pub sched: Arc<Scheduler>,
}

#[tonic::async_trait]
impl Jobs for JobsService {
    async fn submit_job(
        &self,
        req: Request<v1::SubmitJobRequest>,
    ) -> Result<Response<v1::SubmitJobResponse>, Status> {
        let call = Call::of(&req)?;
        let caller = &call.caller;
        let spec = req
            .into_inner()
            .spec
            .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
        check_wire_spec(&spec)?;
        let spec = JobSpec::try_from(&spec).map_err(|e| Status::invalid_argument(e.to_string()))?;
        call.case(&self.sched, spec.case_id.as_str(), "job.submit")?;
        if let trawl_core::spec::EvidenceRef::Upload(d) = &spec.evidence
            && !caller.all_cases()
        {
            let d = d.to_ascii_lowercase();
            let owned = self
                .sched
                .store()
                .evidence(&d)
                .map_err(SchedError::from)?
                .is_some_and(|e| e.belongs_to(spec.case_id.as_str()));
            if !owned {
                self.sched.audit(
                    caller,
                    "denied",
                    &d,
                    spec.case_id.as_str(),
                    "upload of another case",
                );
                return Err(Status::permission_denied(format!(
                    "upload {d} does not belong to case {:?}",
                    spec.case_id.as_str()
                )));
            }
        }
        let case = spec.case_id.as_str().to_string();
        let rec = match self.sched.submit(spec, caller).await {
            Ok(r) => r,
            Err(e) => {
                if matches!(e, SchedError::PermissionDenied(_)) {
                    self.sched
                        .audit(caller, "denied", "job.submit", &case, e.to_string());
                }
                return Err(e.into());
            }
        };
        Ok(Response::new(v1::SubmitJobResponse {
            job_id: rec.job_id.to_string(),
            job: Some(v1::Job::from(&rec)),
        }))
    }

    async fn get_job(&self, req: Request<v1::GetJobRequest>) -> Result<Response<v1::Job>, Status> {
        let job = Call::of(&req)?.job(&self.sched, &req.get_ref().job_id)?;
        Ok(Response::new(v1::Job::from(&job)))
    }

    async fn list_jobs(
        &self,
        req: Request<v1::ListJobsRequest>,
    ) -> Result<Response<v1::ListJobsResponse>, Status> {
        let call = Call::of(&req)?;
        let r = req.into_inner();
        bounded("case_id", &r.case_id, MAX_ID)?;
        bounded("submitter", &r.submitter, MAX_ID)?;
        if !r.case_id.is_empty() {
            call.case(&self.sched, &r.case_id, "jobs.list")?;
        }
        let state = match v1::JobState::try_from(r.state) {
            Ok(s) => JobState::try_from(s).ok(),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "state: unknown value {}",
                    r.state
                )));
            }
        };
        let mut jobs = self.sched.list_jobs(
            (!r.case_id.is_empty()).then_some(r.case_id.as_str()),
            state,
            (!r.submitter.is_empty()).then_some(r.submitter.as_str()),
            0,
        );
        // Only the cases the caller may read.
        jobs.retain(|j| call.caller.may(call.perm, j.spec.case_id.as_str()));
        if r.limit > 0 {
            jobs.truncate(r.limit as usize);
        }
        Ok(Response::new(v1::ListJobsResponse {
            jobs: jobs.iter().map(v1::Job::from).collect(),
        }))
    }

    type WatchJobStream = BoxStream<v1::JobEvent>;

    async fn watch_job(
        &self,
        req: Request<v1::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let call = Call::of(&req)?;
        let first = call.job(&self.sched, &req.get_ref().job_id)?;
        let id = first.job_id.clone();
        let Call { caller, perm } = call;
        let mut rx = self.sched.subscribe();
        let sched = self.sched.clone();
        let stream = async_stream_job(move |tx| async move {
            let mut last_version = first.version;
            let done = first.state.is_final();
            if tx
                .send(Ok(v1::JobEvent {
                    job: Some(v1::Job::from(&first)),
                    message: job_state_name(v1::JobState::from(first.state) as i32).into(),
                }))
                .await
                .is_err()
                || done
            {
                return;
            }
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                let msg = tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(c) if c.job_id == id => c.message,
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => "progress".to_string(),
                        Err(_) => return,
                    },
                    _ = tick.tick() => "progress".to_string(),
                };
                let Ok(j) = sched.job(&id) else { return };
                // A token revoked (or expired, or moved off the case) since
                // the stream opened ends it.
                if !sched.still_may(&caller, perm, j.spec.case_id.as_str()) {
                    let _ = tx
                        .send(Err(Status::unauthenticated(
                            "credentials revoked or expired: the stream is closed",
                        )))
                        .await;
                    return;
                }
                if j.version == last_version && msg == "progress" && !j.state.is_final() {
                    // Periodic tick: still send, so throughput and ETA move.
                }
                last_version = j.version;
                let fin = j.state.is_final();
                // The last event names the job's end, whatever woke the
                // stream (a task's report may find the job already ended).
                let message = if fin {
                    job_state_name(v1::JobState::from(j.state) as i32).into()
                } else {
                    msg
                };
                if tx
                    .send(Ok(v1::JobEvent {
                        job: Some(v1::Job::from(&j)),
                        message,
                    }))
                    .await
                    .is_err()
                    || fin
                {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn cancel_job(
        &self,
        req: Request<v1::CancelJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let call = Call::of(&req)?;
        let r = req.into_inner();
        bounded("reason", &r.reason, MAX_TEXT)?;
        let job = call.job(&self.sched, &r.job_id)?;
        Ok(Response::new(v1::Job::from(&self.sched.cancel(
            &job.job_id,
            &r.reason,
            &call.caller,
        )?)))
    }

    async fn list_tasks(
        &self,
        req: Request<v1::ListTasksRequest>,
    ) -> Result<Response<v1::ListTasksResponse>, Status> {
        let job = Call::of(&req)?.job(&self.sched, &req.get_ref().job_id)?;
        Ok(Response::new(self.tasks(&job.job_id)?))
    }

    type GetResultsStream = BoxStream<v1::ResultsPage>;

    async fn get_results(
        &self,
        req: Request<v1::GetResultsRequest>,
    ) -> Result<Response<Self::GetResultsStream>, Status> {
        let call = Call::of(&req)?;
        let r = req.into_inner();
        let job = call.job(&self.sched, &r.job_id)?;
        let sched = self.sched.clone();
        let id = job.job_id.clone();
        let mut page = tokio::task::spawn_blocking(move || sched.results(&id))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        page.job = Some(v1::Job::from(&job));
        self.sched.audit(
            &call.caller,
            "results.get",
            &job.job_id,
            job.spec.case_id.as_str(),
            "",
        );
        let size = if r.page_size == 0 {
            DEFAULT_PAGE
        } else {
            r.page_size as usize
        };
        let pages = results::split_pages(page, size);
        Ok(Response::new(Box::pin(tokio_stream::iter(
            pages.into_iter().map(Ok),
        ))))
    }
}

impl JobsService {
    fn tasks(&self, job_id: &str) -> Result<v1::ListTasksResponse, Status> {
        self.sched.job(job_id)?;
        let tasks = self
            .sched
            .tasks_of(job_id)
            .into_iter()
            .map(v1::TaskStatus::from)
            .collect();
        Ok(v1::ListTasksResponse { tasks })
    }
}
