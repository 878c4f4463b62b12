//! End-to-end tests of the `trawl` binary: real runs on generated fixtures
//! and, when present, on the reference corpora in ../shared/corpora.
//! One test binary (linking wasmtime is expensive), one module per area.

mod cli;
mod cluster;
mod common;
mod dashboard;
mod dashboard_counts;
mod hashing;
mod intel;
mod intel_dashboard;
mod metrics;
mod object_store;
mod security;
mod security_access;
mod security_audit;
mod security_embedded;
mod security_report;
mod threat_report;

mod attrib;
mod carving;
mod features;
mod files;
mod per_file;
mod vdisk;
mod yara;
mod yara_diff;
