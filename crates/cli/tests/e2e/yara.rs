//! yara end-to-end tests (being written).
