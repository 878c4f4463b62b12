//! Integration tests of the analyzers (one test binary, one module per analysis).

mod carve;
mod features;
