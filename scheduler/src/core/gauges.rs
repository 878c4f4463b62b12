//! The metrics' gauges, read from the scheduler's indices at scrape time:
//! one pass over the jobs and one over the workers, never over tasks.

use super::Scheduler;
use crate::metrics::{PriorityLabel, StateLabel};
use trawl_core::spec::Priority;
use trawl_store::{JobState, now_ms};

fn l(s: &str) -> StateLabel {
    StateLabel { state: s.into() }
}

impl Scheduler {
    pub(crate) fn refresh_gauges(&self) {
        let m = &self.metrics;
        let now = now_ms();
        let st = self.state.lock();
        let mut jobs = [0i64; 5];
        let states = [
            JobState::Queued,
            JobState::Running,
            JobState::Completed,
            JobState::Failed,
            JobState::Cancelled,
        ];
        let (mut queued, mut leased, mut waiting, mut done, mut failed) =
            (0i64, 0i64, 0i64, 0i64, 0i64);
        let prios = [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ];
        let mut depth = [0i64; 4];
        for j in st.jobs.values() {
            if let Some(i) = states.iter().position(|s| *s == j.rec.state) {
                jobs[i] += 1;
            }
            done += i64::from(j.rec.progress.tasks_done);
            failed += i64::from(j.rec.progress.tasks_failed);
            if !j.rec.state.is_final() {
                queued += j.queued.len() as i64;
                leased += i64::from(j.leased);
                waiting += i64::from(j.waiting);
                if let Some(i) = prios.iter().position(|p| *p == j.rec.spec.priority) {
                    depth[i] += j.queued.len() as i64;
                }
            }
        }
        let lost_before = now - self.cfg.lease_ms as i64;
        let (mut up, mut lost, mut busy, mut free) = (0i64, 0i64, 0i64, 0i64);
        for w in st.workers.values() {
            if w.rec.last_heartbeat_ms > lost_before {
                up += 1;
                let b = w.running.len() as i64;
                busy += b;
                free += (i64::from(w.rec.slots) - b).max(0);
            } else {
                lost += 1;
            }
        }
        drop(st);
        for (s, n) in states.iter().zip(jobs) {
            m.jobs.get_or_create(&l(s.name())).set(n);
        }
        for (s, n) in [
            ("queued", queued),
            ("leased", leased),
            ("waiting", waiting),
            ("done", done),
            ("failed", failed),
        ] {
            m.tasks.get_or_create(&l(s)).set(n);
        }
        for (p, n) in prios.iter().zip(depth) {
            m.queue_depth
                .get_or_create(&PriorityLabel {
                    priority: p.name().into(),
                })
                .set(n);
        }
        m.worker_slots.get_or_create(&l("busy")).set(busy);
        m.worker_slots.get_or_create(&l("free")).set(free);
        m.workers.get_or_create(&l("up")).set(up);
        m.workers.get_or_create(&l("lost")).set(lost);
    }
}
