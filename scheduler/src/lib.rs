//! The trawl scheduler: accepts jobs, plans them into shard tasks, leases
//! tasks to workers over gRPC, merges their results, and keeps every state
//! change in sled so a restart loses nothing.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use trawl_scheduler::{SchedulerConfig, run};
//! let cfg = SchedulerConfig { data_dir: "/var/lib/trawl".into(), ..Default::default() };
//! run(cfg, tokio_util::sync::CancellationToken::new()).await
//! # }
//! ```

pub mod admin;
pub mod audit_key;
pub mod audit_limit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod core;
pub mod error;
pub mod evidence_store;
pub mod intel;
pub mod machine;
pub mod metrics;
mod plan;
pub mod result_check;
pub mod results;
pub mod rules;
pub mod server;
pub mod service;
pub mod text;
pub mod web;

pub use config::SchedulerConfig;
pub use core::{Caller, Scheduler};
pub use error::SchedError;
pub use server::{run, serve};
