//! `trawl-bench carve` (being written).

use anyhow::{Result, bail};

pub fn run(_args: &[String]) -> Result<()> {
    bail!("trawl-bench carve: not written yet")
}
