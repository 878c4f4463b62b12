//! The shard plan and the ownership rule of the exactness contract.
//!
//! An image of `size` bytes is cut into shards of `shard_size` bytes (a power
//! of two); the last one may be shorter. Shard `i` owns `[start, end)` and
//! scans `[start, scan_end)` with `scan_end = min(end + margin, size)`.
//! A finding belongs to the shard that holds its first byte: a shard drops
//! every finding that starts at or past `end`, so each finding is reported
//! exactly once whatever the shard size.

use crate::CoreError;
use serde::{Deserialize, Serialize};

/// Default shard size: 64 MiB.
pub const DEFAULT_SHARD_SIZE: u64 = 64 << 20;
/// Default margin read past a shard's end: 1 MiB.
pub const DEFAULT_MARGIN: u64 = 1 << 20;
/// Smallest shard size (one BLAKE3 chunk).
pub const MIN_SHARD_SIZE: u64 = 1 << 10;
/// Largest shard size.
pub const MAX_SHARD_SIZE: u64 = 1 << 30;
/// Largest margin.
pub const MAX_MARGIN: u64 = 256 << 20;

/// How an image is cut into shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlan {
    pub image_size: u64,
    pub shard_size: u64,
    pub margin: u64,
}

/// One shard: owns `[start, end)`, scans `[start, scan_end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub start: u64,
    pub end: u64,
    pub scan_end: u64,
}

impl Shard {
    /// Bytes owned by the shard.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// True for a zero-length shard (never produced by a plan).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    /// Bytes scanned (owned plus margin).
    pub fn scan_len(&self) -> u64 {
        self.scan_end - self.start
    }
    /// Whether a finding whose first byte is at image offset `offset` belongs
    /// to this shard.
    pub fn owns(&self, offset: u64) -> bool {
        offset >= self.start && offset < self.end
    }
}

impl ShardPlan {
    /// Builds a plan.
    ///
    /// # Errors
    /// A shard size that is not a power of two in `[1 KiB, 1 GiB]`, or a
    /// margin above 256 MiB.
    pub fn new(image_size: u64, shard_size: u64, margin: u64) -> Result<Self, CoreError> {
        if !shard_size.is_power_of_two() || !(MIN_SHARD_SIZE..=MAX_SHARD_SIZE).contains(&shard_size)
        {
            return Err(CoreError::ShardSize(shard_size));
        }
        if margin > MAX_MARGIN {
            return Err(CoreError::Margin(margin));
        }
        Ok(Self {
            image_size,
            shard_size,
            margin,
        })
    }

    /// Number of shards (0 for an empty image).
    pub fn len(&self) -> u32 {
        self.image_size.div_ceil(self.shard_size) as u32
    }

    /// True when the image is empty.
    pub fn is_empty(&self) -> bool {
        self.image_size == 0
    }

    /// Shard `index`, or `None` past the last one.
    pub fn shard(&self, index: u32) -> Option<Shard> {
        if index >= self.len() {
            return None;
        }
        let start = u64::from(index) * self.shard_size;
        let end = (start + self.shard_size).min(self.image_size);
        let scan_end = end.saturating_add(self.margin).min(self.image_size);
        Some(Shard {
            index,
            start,
            end,
            scan_end,
        })
    }

    /// Every shard in order.
    pub fn shards(&self) -> impl Iterator<Item = Shard> + '_ {
        (0..self.len()).filter_map(|i| self.shard(i))
    }

    /// The index of the shard owning image offset `offset`.
    pub fn owner(&self, offset: u64) -> Option<u32> {
        (offset < self.image_size).then(|| (offset / self.shard_size) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_sizes() {
        assert!(ShardPlan::new(10, 1000, 0).is_err());
        assert!(ShardPlan::new(10, 512, 0).is_err());
        assert!(ShardPlan::new(10, 2 << 30, 0).is_err());
        assert!(ShardPlan::new(10, 1024, MAX_MARGIN + 1).is_err());
        let p = ShardPlan::new(0, 1024, 0).unwrap();
        assert_eq!(p.len(), 0);
        assert!(p.shard(0).is_none());
        assert_eq!(p.owner(0), None);
    }

    proptest! {
        #[test]
        fn shards_tile_the_image(size in 0u64..1_000_000, exp in 10u32..20, margin in 0u64..5000) {
            let plan = ShardPlan::new(size, 1 << exp, margin).unwrap();
            let mut next = 0;
            for s in plan.shards() {
                prop_assert_eq!(s.start, next);
                prop_assert!(s.end > s.start);
                prop_assert!(s.scan_end >= s.end && s.scan_end <= size);
                prop_assert_eq!(s.scan_end, (s.end + margin).min(size));
                next = s.end;
            }
            prop_assert_eq!(next, size);
            if size > 0 {
                for off in [0, size / 2, size - 1] {
                    let i = plan.owner(off).unwrap();
                    prop_assert!(plan.shard(i).unwrap().owns(off));
                }
            }
        }
    }
}
