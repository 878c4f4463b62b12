//! Writer of the report's carved output (being written).

use crate::{JobResults, ReportError};
use std::path::Path;

/// Writes this part of the report directory.
pub(crate) fn write(
    _dir: &Path,
    _r: &JobResults,
    _evidence: Option<&dyn trawl_evidence::Evidence>,
) -> Result<(), ReportError> {
    Ok(())
}
