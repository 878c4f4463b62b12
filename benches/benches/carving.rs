//! carving micro-benchmarks (being written).
fn main() {}
