//! The trawl worker: registers with a scheduler, heartbeats on its own
//! timer, leases as many tasks as it has free slots, reads each shard plus
//! its margin once (memory-mapped when the evidence path is local, streamed
//! from the scheduler otherwise), runs the requested analyses on its rayon
//! pool, and reports results. Reports are idempotent on the scheduler side,
//! so a retried or duplicated report never duplicates findings. On shutdown
//! it drains: running tasks get a grace period, then unfinished leases are
//! handed back.

pub mod cli;
mod exec;
pub mod observe;
pub mod remote;
mod worker;

pub use worker::{WorkerConfig, hostname as hostname_of_this_node, run};
