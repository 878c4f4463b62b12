//! The Reports service: the threat report of a period, as files.

use super::{BoxStream, MAX_ID, bounded, caller};
use crate::core::Scheduler;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use trawl_proto::v1;

/// Reports over the lab's figures.
#[derive(Clone, Debug)]
pub struct ReportsService {
    pub sched: Arc<Scheduler>,
}

#[tonic::async_trait]
impl v1::reports_server::Reports for ReportsService {
    type GetThreatReportStream = BoxStream<v1::ReportFile>;

    /// Any signed-in caller: the figures are those of the cases it may
    /// read (see [`crate::web::threat_report`]).
    async fn get_threat_report(
        &self,
        req: Request<v1::ThreatReportRequest>,
    ) -> Result<Response<Self::GetThreatReportStream>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        bounded("from", &r.from, MAX_ID)?;
        bounded("to", &r.to, MAX_ID)?;
        bounded("lang", &r.lang, MAX_ID)?;
        let sched = self.sched.clone();
        let files = tokio::task::spawn_blocking(move || {
            crate::web::threat_report(&sched, &who, &r.from, &r.to, &r.lang)
        })
        .await
        .map_err(|e| Status::internal(format!("rendering the report: {e}")))??;
        let stream = futures::stream::iter(
            files
                .into_iter()
                .map(|(path, content)| Ok(v1::ReportFile { path, content })),
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
