//! `trawl-bench yara` (being written).

use anyhow::{Result, bail};

pub fn run(_args: &[String]) -> Result<()> {
    bail!("trawl-bench yara: not written yet")
}
