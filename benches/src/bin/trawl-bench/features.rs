//! `trawl-bench features` (being written).

use anyhow::{Result, bail};

pub fn run(_args: &[String]) -> Result<()> {
    bail!("trawl-bench features: not written yet")
}
