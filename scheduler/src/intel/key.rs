//! The lab's intelligence key: 32 random bytes (hex, mode 0600) under
//! which card numbers are indexed as HMAC-SHA256, never in clear. Like the
//! audit key it lies outside the data directory (default: `DATA.intel-key`
//! beside it, made at the first start), so a copy of the data cannot
//! reverse the hashes by trying every card number.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use trawl_store::AuditKey;

/// Where the key of `data` lives when none is configured.
pub fn default_path(data: &Path) -> PathBuf {
    let audit = crate::audit_key::default_key_path(data);
    let name = audit
        .file_name()
        .map(|n| n.to_string_lossy().replace(".audit-key", ".intel-key"))
        .unwrap_or_else(|| "trawl-data.intel-key".into());
    audit.with_file_name(name)
}

/// The key's bytes: read from `configured` (or the default place), made
/// there first when missing.
///
/// # Errors
/// A key inside the data directory, readable by others, or not a key; the
/// file unwritable.
pub fn load_or_create(data: &Path, configured: Option<&Path>) -> Result<Vec<u8>> {
    let path = configured
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_path(data));
    if !path.exists() {
        crate::audit_key::check_outside(&path, data)
            .with_context(|| format!("intelligence key {}", path.display()))?;
        AuditKey::create(&path).map_err(|e| anyhow::anyhow!("intelligence key: {e}"))?;
        tracing::warn!(key = %path.display(), "made the lab's intelligence key (card numbers are indexed under it); keep it with the audit key");
    }
    crate::audit_key::check_outside(&path, data)
        .with_context(|| format!("intelligence key {}", path.display()))?;
    // the same file format and mode rules as the audit key
    AuditKey::load(&path).map_err(|e| anyhow::anyhow!("intelligence key: {e}"))?;
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    hex::decode(text.trim()).with_context(|| format!("intelligence key {}", path.display()))
}
