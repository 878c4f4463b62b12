//! Newtype ids. Every id is a short printable token so it is safe in paths,
//! logs and sled keys.

use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;

const MAX_ID_LEN: usize = 128;

fn validate(kind: &'static str, value: &str) -> Result<(), CoreError> {
    let err = |reason| CoreError::InvalidId {
        kind,
        value: value.chars().take(200).collect(),
        reason,
    };
    if value.is_empty() {
        return Err(err("empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(err("longer than 128 bytes"));
    }
    if value == "." || value == ".." {
        return Err(err("reserved name"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@'))
    {
        return Err(err("only letters, digits and - _ . : @ are allowed"));
    }
    Ok(())
}

macro_rules! id_type {
    ($name:ident, $kind:literal) => {
        #[doc = concat!("A ", $kind, ".")]
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            ///
            /// # Errors
            /// Empty, too long, or with characters outside `[A-Za-z0-9-_.:@]`.
            pub fn new(value: impl Into<String>) -> Result<Self, CoreError> {
                let value = value.into();
                validate($kind, &value)?;
                Ok(Self(value))
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = CoreError;
            fn try_from(v: String) -> Result<Self, CoreError> {
                Self::new(v)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        /// Maps keyed by the id are looked up by `&str` (the derived
        /// `Hash`/`Eq` are the inner string's, as `Borrow` requires).
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = CoreError;
            fn from_str(s: &str) -> Result<Self, CoreError> {
                Self::new(s)
            }
        }
    };
}

id_type!(JobId, "job id");
id_type!(CaseId, "case id");
id_type!(WorkerId, "worker id");
id_type!(TaskId, "task id");

impl TaskId {
    /// The task id of shard `index` of `job`.
    pub fn shard(job: &JobId, index: u32) -> TaskId {
        TaskId(format!("{job}:s{index:06}"))
    }
    /// The task id of the sequential stream-hash task of `job`.
    pub fn stream(job: &JobId) -> TaskId {
        TaskId(format!("{job}:stream"))
    }
    /// The task id of the whole-image YARA task of `job`.
    pub fn yara_whole(job: &JobId) -> TaskId {
        TaskId(format!("{job}:yara-whole"))
    }
    /// The task id of the carved-files YARA task `index` of `job`.
    pub fn yara_carved(job: &JobId, index: u32) -> TaskId {
        TaskId(format!("{job}:yara-carved{index:04}"))
    }
    /// The task id of the file-hashing task `index` of `job`.
    pub fn fs_hash(job: &JobId, index: u32) -> TaskId {
        TaskId(format!("{job}:files{index:05}"))
    }
    /// The job this task belongs to.
    pub fn job(&self) -> Option<JobId> {
        let (job, _) = self.0.rsplit_once(':')?;
        JobId::new(job).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_validate() {
        assert!(JobId::new("J-2026-0001").is_ok());
        assert!(JobId::new("").is_err());
        assert!(JobId::new("../etc").is_err());
        assert!(CaseId::new("case 1").is_err());
        assert!(CaseId::new("x".repeat(129)).is_err());
        let j = JobId::new("job-1").unwrap();
        let t = TaskId::shard(&j, 7);
        assert_eq!(t.as_str(), "job-1:s000007");
        assert_eq!(t.job().unwrap(), j);
        assert_eq!(TaskId::stream(&j).job().unwrap(), j);
    }
}
