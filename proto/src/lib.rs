//! The `trawl.v1` protocol: messages and the Jobs, Rules, Cluster, Evidence and Admin
//! services, generated at build time (no checked-in generated code, no system
//! `protoc`).
//!
//! ```
//! use trawl_proto::v1::{JobSpec, Analysis};
//! let spec = JobSpec { case_id: "C-1".into(), analyses: vec![Analysis::Hash as i32], ..Default::default() };
//! assert_eq!(spec.case_id, "C-1");
//! ```

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod connect;
pub mod convert;
pub mod logging;

pub mod v1 {
    tonic::include_proto!("trawl.v1");
}

/// Encoded `FileDescriptorSet` of the protocol, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("trawl_descriptor");

/// Protocol major version spoken by this build.
pub const PROTOCOL_VERSION: v1::ProtocolVersion = v1::ProtocolVersion::V1;
