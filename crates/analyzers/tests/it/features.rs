//! Feature scanner tests (being written).
