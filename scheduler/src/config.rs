//! Scheduler configuration: flags, `TRAWL_*` environment variables and an
//! optional TOML file, in that order of precedence.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything a scheduler needs to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    /// Data directory: sled state, the evidence store.
    pub data_dir: PathBuf,
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Web dashboard address (HTTPS; needs an initialised data directory).
    pub http: Option<SocketAddr>,
    /// Prometheus metrics address (plain HTTP `GET /metrics`).
    pub metrics_listen: Option<SocketAddr>,
    /// Plaintext gRPC health address (`grpc.health.v1` only, for
    /// Kubernetes probes, which cannot present a client certificate to
    /// the TLS port).
    pub health_listen: Option<SocketAddr>,
    /// A lease lasts this long without a heartbeat.
    pub lease_ms: u64,
    /// Workers heartbeat this often.
    pub heartbeat_ms: u64,
    /// A task failing this many times is quarantined.
    pub max_attempts: u32,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Largest gRPC message, in bytes (task results can be large).
    pub max_message_bytes: usize,
    /// Server-side evidence paths must lie under one of these roots (a
    /// folder or a single file), symbolic links followed, and never in the
    /// data directory. None configured: server paths are refused and only
    /// uploads are possible.
    pub evidence_roots: Vec<PathBuf>,
    /// Roots open to one case only (case id to roots), on top of
    /// `evidence_roots`.
    pub case_evidence_roots: std::collections::BTreeMap<String, Vec<PathBuf>>,
    /// Smallest shard size a job may ask for (bounds the task count).
    pub min_shard_size: u64,
    /// Most tasks one job may create (a job needing more fails with the
    /// shard size that would fit).
    pub max_tasks_per_job: u64,
    /// Most evidence bytes one user may have in unfinished jobs (0: no
    /// limit).
    pub max_queued_bytes_per_user: u64,
    /// The audit trail's HMAC key, kept outside the data directory
    /// (default: `DATA.audit-key` beside the data directory, made by
    /// `trawl-scheduler init`). Required for an initialised data directory.
    pub audit_key_file: Option<PathBuf>,
    /// Refusals (denied calls, failed authentication) written to the audit
    /// trail in full per source address, user and kind each minute; the
    /// rest are counted into one `*.aggregated` entry per minute.
    pub audit_refusals_per_minute: u32,
    /// Keep the sled database in memory only (embedded scans, tests).
    pub ephemeral: bool,
    /// Compile inline YARA sources in full in the background to list every
    /// refused rule (off in embedded scans, where workers report the rules
    /// refused among those the image could match, and the cores are shared).
    pub background_rule_validation: bool,
    /// Keep each finished job's merged results in memory until
    /// [`crate::Scheduler::take_results`] takes them (the embedded scan,
    /// which writes the report in the same process, skips encoding them
    /// into the database and decoding them back from the wire); they are
    /// then not stored merged, and `results` merges the tasks' results on
    /// demand. Off for a standing scheduler.
    pub hand_over_results: bool,
    /// The lab's memory: the indicator index, links, flashes (`[intel]`).
    pub intel: IntelSettings,
    /// Object storage (`[object_store]`): `object_store` configuration
    /// keys (`aws_endpoint`, `aws_region`, `aws_access_key_id`,
    /// `aws_secret_access_key`, `aws_allow_http`, `google_…`, `azure_…`)
    /// on top of the `AWS_*`/`GOOGLE_*`/`AZURE_*` environment. Evidence
    /// roots such as `s3://bucket/prefix/` allow objects; credentials are
    /// never logged or stored in records.
    pub object_store: trawl_objstore::Settings,
    /// Keep complete uploads in object storage under this prefix
    /// (`s3://bucket/prefix/`) rather than in the data directory; nodes
    /// with the prefix among their evidence roots read them by ranges.
    pub upload_store: Option<String>,
}

/// The lab's memory (`[intel]` in the TOML configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IntelSettings {
    /// Index the indicators of every completed job (off: no index, no
    /// links, no flashes on new jobs).
    pub enabled: bool,
    /// The lab's stop list: one indicator per line (`KIND VALUE`, or a
    /// bare value whose kind is guessed), `#` comments. Listed indicators
    /// are kept but never link cases.
    pub stop_list: Option<PathBuf>,
    /// An indicator seen in more than this share of all cases is common...
    pub common_share: f64,
    /// ...when that is more than this many cases.
    pub common_min_cases: u64,
    /// The key card numbers are indexed under (HMAC-SHA256), outside the
    /// data directory (default: `DATA.intel-key` beside it, made at the
    /// first start).
    pub key_file: Option<PathBuf>,
    /// The lab's name, as exports and reports give it.
    pub lab_name: String,
    /// The lab's messaging: every new alert is POSTed there as JSON,
    /// signed (HMAC-SHA256). `http://` or `https://`.
    pub webhook_url: Option<String>,
    /// The webhook's HMAC secret (a file outside the data directory).
    pub webhook_secret_file: Option<PathBuf>,
    /// The CA (PEM) of an `https://` webhook receiver.
    pub webhook_ca: Option<PathBuf>,
    /// Alerts of flashes marked above this TLP go without their details.
    pub webhook_max_tlp: String,
}

impl Default for IntelSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            stop_list: None,
            common_share: 0.05,
            common_min_cases: 20,
            key_file: None,
            lab_name: "trawl lab".into(),
            webhook_url: None,
            webhook_secret_file: None,
            webhook_ca: None,
            webhook_max_tlp: "amber".into(),
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("trawl-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http: None,
            metrics_listen: None,
            health_listen: None,
            lease_ms: 30_000,
            heartbeat_ms: 2_000,
            max_attempts: 3,
            max_upload_bytes: 16 << 40,
            max_message_bytes: 1 << 30,
            evidence_roots: Vec::new(),
            case_evidence_roots: Default::default(),
            object_store: Default::default(),
            upload_store: None,
            min_shard_size: 64 << 10,
            max_tasks_per_job: 65_536,
            max_queued_bytes_per_user: 64 << 40,
            audit_key_file: None,
            audit_refusals_per_minute: 60,
            ephemeral: false,
            background_rule_validation: true,
            hand_over_results: false,
            intel: IntelSettings::default(),
        }
    }
}

impl SchedulerConfig {
    /// Reads a TOML configuration file.
    ///
    /// # Errors
    /// Unreadable file or invalid TOML, naming the file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Lease duration.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}
