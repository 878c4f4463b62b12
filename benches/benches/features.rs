//! features micro-benchmarks (being written).
fn main() {}
