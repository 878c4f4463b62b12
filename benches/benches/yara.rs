//! yara micro-benchmarks (being written).
fn main() {}
