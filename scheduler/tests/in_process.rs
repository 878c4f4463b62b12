//! The in-process transport of the embedded scan (issue 17, finding 4):
//! the scheduler served over `tokio::io::duplex` connections answers gRPC
//! like the TCP server, names its callers' peer `in-process` in the audit
//! trail, and refuses new connections once it has stopped.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use trawl_core::CaseId;
use trawl_core::spec::{AnalysisSet, EvidenceRef, JobSpec};
use trawl_proto::v1;
use trawl_scheduler::server::{IN_PROCESS_PEER, in_process, serve_in_process};
use trawl_scheduler::{Scheduler, SchedulerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_calls_are_served_audited_as_in_process_and_end_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.dd");
    std::fs::write(&image, vec![0x5a; 256 << 10]).unwrap();
    let image = image.canonicalize().unwrap();
    let sched = Scheduler::open(SchedulerConfig {
        ephemeral: true,
        evidence_roots: vec![image.clone()],
        ..Default::default()
    })
    .unwrap();
    let (connector, incoming) = in_process();
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve_in_process(sched.clone(), incoming, stop.clone()));

    // Health and a job submission over an in-process channel.
    let ch = connector.channel();
    let status = tonic_health::pb::health_client::HealthClient::new(ch.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "trawl.v1.Jobs".into(),
        })
        .await
        .expect("health over the in-process transport")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let spec = JobSpec::new(
        CaseId::new("case-inproc").unwrap(),
        EvidenceRef::Paths(vec![image.display().to_string()]),
        AnalysisSet::parse("hash").unwrap(),
    );
    let mut jobs = v1::jobs_client::JobsClient::new(ch.clone());
    let job_id = jobs
        .submit_job(v1::SubmitJobRequest {
            spec: Some(v1::JobSpec::from(&spec)),
        })
        .await
        .expect("submit over the in-process transport")
        .into_inner()
        .job_id;
    let listed = jobs
        .list_jobs(v1::ListJobsRequest {
            case_id: "case-inproc".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(
        listed.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
        [job_id.as_str()]
    );

    // The audit trail names the caller's peer.
    let entries = sched.store().audit().entries().unwrap();
    let submit = entries
        .iter()
        .find(|e| e.action == "job.submit" && e.target == job_id)
        .unwrap_or_else(|| panic!("no job.submit entry for {job_id}: {entries:?}"));
    assert_eq!(submit.from, IN_PROCESS_PEER, "{submit:?}");
    assert_eq!(submit.from, "in-process");

    // Stopped: the server returns, and a new connection is refused.
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the in-process server stops when told")
        .unwrap()
        .expect("served without a transport error");
    let refused = v1::jobs_client::JobsClient::new(connector.channel())
        .get_job(v1::GetJobRequest { job_id })
        .await
        .expect_err("a stopped in-process scheduler answers nothing");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused}");
}
