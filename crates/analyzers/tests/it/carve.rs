//! Carving tests (being written).
