//! An interval index in two parts. The intervals that do not overlap one
//! another (on a file system, nearly every byte run) are kept as three
//! sorted arrays and found by one binary search. The rest (deleted entries
//! over allocated clusters, resident data inside `$MFT`, a run spanning
//! others) go into an implicit interval tree, in the layout of Heng Li's
//! cgranges: the intervals sorted by start in one array, a complete binary tree laid over
//! the array's indices (index `i` sits at the level given by the number of
//! trailing one bits of `i`; its children are `i ± 2^(level-1)`), each node
//! keeping the largest end in its subtree. A query visits O(log n + hits)
//! nodes whatever the overlaps between intervals (nested runs, a run that
//! spans a whole volume); building is one sort and one linear pass. No
//! pointers: 32 bytes per interval.

/// One interval and its subtree's largest end.
#[derive(Clone, Copy, Debug)]
struct Node {
    start: u64,
    /// Exclusive.
    end: u64,
    /// The largest `end` in this node's subtree.
    max: u64,
    value: u32,
}

/// Disjoint starts per block of the two-level search.
const BLOCK: usize = 32;

/// Half-open intervals `[start, end)` with a `u32` value each, queried for
/// the intervals that contain a point or overlap a range.
#[derive(Clone, Debug, Default)]
pub struct IntervalIndex {
    /// The disjoint part: sorted by start, and so by end.
    starts: Vec<u64>,
    /// Every [`BLOCK`]th start: a binary search over this small array (in
    /// cache) and then over one block replaces most of the cache misses of
    /// a search over `starts`.
    top: Vec<u64>,
    ends: Vec<u64>,
    values: Vec<u32>,
    /// The intervals that overlap one of the disjoint part.
    tree: Tree,
}

impl IntervalIndex {
    /// Builds the index from `(start, end, value)` triples (`end`
    /// exclusive; empty intervals are dropped).
    pub fn new(mut items: Vec<(u64, u64, u32)>) -> Self {
        items.retain(|&(s, e, _)| e > s);
        items.sort_unstable();
        let mut ix = Self::default();
        let mut rest = Vec::new();
        for (s, e, v) in items {
            if ix.ends.last().is_none_or(|&last| s >= last) {
                ix.starts.push(s);
                ix.ends.push(e);
                ix.values.push(v);
            } else {
                rest.push((s, e, v));
            }
        }
        ix.top = ix.starts.iter().step_by(BLOCK).copied().collect();
        ix.tree = Tree::new(rest);
        ix
    }

    /// The number of disjoint intervals whose start is at most `pos`.
    fn starts_up_to(&self, pos: u64) -> usize {
        let b = self.top.partition_point(|&s| s <= pos);
        if b == 0 {
            return 0;
        }
        let lo = (b - 1) * BLOCK;
        let hi = (lo + BLOCK).min(self.starts.len());
        lo + self.starts[lo..hi].partition_point(|&s| s <= pos)
    }

    /// Number of (non-empty) intervals.
    pub fn len(&self) -> usize {
        self.starts.len() + self.tree.nodes.len()
    }

    /// Whether there is no interval.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `hit(start, end, value)` for every interval that overlaps
    /// `[start, end)`.
    pub fn overlapping(&self, start: u64, end: u64, mut hit: impl FnMut(u64, u64, u32)) {
        if end <= start {
            return;
        }
        let mut i = self.ends.partition_point(|&e| e <= start);
        while i < self.starts.len() && self.starts[i] < end {
            hit(self.starts[i], self.ends[i], self.values[i]);
            i += 1;
        }
        self.tree.overlapping(start, end, hit);
    }

    /// Calls `hit(start, end, value)` for every interval that contains
    /// `pos`.
    pub fn containing(&self, pos: u64, mut hit: impl FnMut(u64, u64, u32)) {
        let i = self.starts_up_to(pos);
        if i > 0 && pos < self.ends[i - 1] {
            hit(self.starts[i - 1], self.ends[i - 1], self.values[i - 1]);
        }
        self.tree.overlapping(pos, pos.saturating_add(1), hit);
    }
}

/// The implicit interval tree.
#[derive(Clone, Debug, Default)]
struct Tree {
    nodes: Vec<Node>,
    /// Level of the root; `None` when empty.
    root_level: Option<u32>,
    /// The largest end of all.
    max_end: u64,
}

impl Tree {
    /// `items` sorted.
    fn new(items: Vec<(u64, u64, u32)>) -> Self {
        let mut nodes: Vec<Node> = items
            .into_iter()
            .map(|(start, end, value)| Node {
                start,
                end,
                max: end,
                value,
            })
            .collect();
        let root_level = build(&mut nodes);
        let max_end = nodes.iter().map(|n| n.end).max().unwrap_or(0);
        Self {
            nodes,
            root_level,
            max_end,
        }
    }

    fn overlapping(&self, start: u64, end: u64, mut hit: impl FnMut(u64, u64, u32)) {
        let Some(root) = self.root_level else { return };
        if end <= start || start >= self.max_end || end <= self.nodes[0].start {
            return;
        }
        let a = &self.nodes;
        let n = a.len();
        // (node index << 8 | level << 1 | left subtree done); the depth is
        // at most 64 levels with two entries each.
        let mut stack = [0u64; 130];
        let mut t = 1usize;
        let entry =
            |x: usize, k: u32, done: bool| ((x as u64) << 8) | u64::from(k << 1) | u64::from(done);
        stack[0] = entry((1usize << root) - 1, root, false);
        while t > 0 {
            t -= 1;
            let (x, k, left_done) = (
                (stack[t] >> 8) as usize,
                ((stack[t] >> 1) & 0x7f) as u32,
                stack[t] & 1 == 1,
            );
            if k <= 3 {
                // A small subtree: every node in it, in index order.
                let i0 = (x >> k) << k;
                let i1 = (i0 + (1usize << (k + 1)) - 1).min(n);
                for node in &a[i0.min(n)..i1] {
                    if node.start >= end {
                        break;
                    }
                    if start < node.end {
                        hit(node.start, node.end, node.value);
                    }
                }
            } else if !left_done {
                stack[t] = entry(x, k, true);
                t += 1;
                let y = x - (1usize << (k - 1));
                // The left child may lie past the array yet have
                // descendants inside it.
                if y >= n || a[y].max > start {
                    stack[t] = entry(y, k - 1, false);
                    t += 1;
                }
            } else if x < n && a[x].start < end {
                if start < a[x].end {
                    hit(a[x].start, a[x].end, a[x].value);
                }
                stack[t] = entry(x + (1usize << (k - 1)), k - 1, false);
                t += 1;
            }
        }
    }
}

/// Sets every node's subtree maximum; returns the root's level.
fn build(a: &mut [Node]) -> Option<u32> {
    let n = a.len();
    if n == 0 {
        return None;
    }
    // Level 0: the even indices, leaves.
    let mut last_i = 0usize;
    let mut last = 0u64;
    for i in (0..n).step_by(2) {
        last_i = i;
        a[i].max = a[i].end;
        last = a[i].max;
    }
    let mut k = 1u32;
    while k < usize::BITS - 1 && (1usize << k) <= n {
        let x = 1usize << (k - 1);
        let i0 = (x << 1) - 1;
        let step = x << 2;
        for i in (i0..n).step_by(step) {
            let left = a[i - x].max;
            // A right child past the array stands for the last subtree
            // that exists.
            let right = if i + x < n { a[i + x].max } else { last };
            a[i].max = a[i].end.max(left).max(right);
        }
        last_i = if (last_i >> k) & 1 == 1 {
            last_i - x
        } else {
            last_i + x
        };
        if last_i < n && a[last_i].max > last {
            last = a[last_i].max;
        }
        k += 1;
    }
    Some(k - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(items: &[(u64, u64, u32)], s: u64, e: u64) -> Vec<(u64, u64, u32)> {
        let mut v: Vec<_> = items
            .iter()
            .copied()
            .filter(|&(a, b, _)| b > a && a < e && s < b)
            .collect();
        v.sort_unstable();
        v
    }

    fn query(ix: &IntervalIndex, s: u64, e: u64) -> Vec<(u64, u64, u32)> {
        let mut v = Vec::new();
        ix.overlapping(s, e, |a, b, x| v.push((a, b, x)));
        v.sort_unstable();
        v
    }

    #[test]
    fn empty_and_single() {
        let ix = IntervalIndex::new(vec![]);
        assert!(query(&ix, 0, u64::MAX).is_empty());
        let mut none = true;
        ix.containing(5, |_, _, _| none = false);
        assert!(none);
        let ix = IntervalIndex::new(vec![(10, 20, 7), (5, 5, 1)]);
        assert_eq!(ix.len(), 1);
        assert_eq!(query(&ix, 19, 20), vec![(10, 20, 7)]);
        assert!(query(&ix, 20, 30).is_empty());
        assert!(query(&ix, 0, 10).is_empty());
        let mut hits = Vec::new();
        ix.containing(10, |_, _, v| hits.push(v));
        assert_eq!(hits, vec![7]);
    }

    #[test]
    fn one_long_interval_over_many_short_ones() {
        // A run spanning everything (as a volume-sized run would) must not
        // hide the short ones, nor they it.
        let mut items: Vec<(u64, u64, u32)> = (0..10_000u32)
            .map(|i| (u64::from(i) * 100, u64::from(i) * 100 + 50, i))
            .collect();
        items.push((0, 1_000_000, 99_999));
        let ix = IntervalIndex::new(items.clone());
        for p in [0u64, 49, 50, 99, 123_456, 999_949, 999_999, 1_000_000] {
            assert_eq!(query(&ix, p, p + 1), brute(&items, p, p + 1), "at {p}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]
        /// Mostly disjoint runs (as a file system's), with a few over them:
        /// many blocks of the two-level search.
        #[test]
        fn mostly_disjoint_equals_brute_force(
            runs in proptest::collection::vec((0u64..50, 1u64..60), 0..3000),
            over in proptest::collection::vec((0u64..200_000, 1u64..5_000), 0..20),
            queries in proptest::collection::vec(0u64..200_000, 1..200),
        ) {
            let mut items = Vec::new();
            let mut pos = 0u64;
            for (i, (gap, len)) in runs.into_iter().enumerate() {
                pos += gap;
                items.push((pos, pos + len, i as u32));
                pos += len;
            }
            items.extend(over.into_iter().map(|(s, l)| (s, s + l, 1_000_000)));
            let ix = IntervalIndex::new(items.clone());
            for q in queries {
                let mut at = Vec::new();
                ix.containing(q, |a, b, x| at.push((a, b, x)));
                at.sort_unstable();
                prop_assert_eq!(at, brute(&items, q, q + 1));
                prop_assert_eq!(query(&ix, q, q + 700), brute(&items, q, q + 700));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn equals_brute_force(
            items in proptest::collection::vec((0u64..2000, 0u64..300, any::<u32>()), 0..300),
            queries in proptest::collection::vec((0u64..2400, 1u64..200), 1..40),
        ) {
            let items: Vec<(u64, u64, u32)> = items.into_iter().map(|(s, l, v)| (s, s + l, v)).collect();
            let ix = IntervalIndex::new(items.clone());
            for (s, l) in queries {
                prop_assert_eq!(query(&ix, s, s + l), brute(&items, s, s + l));
                let mut at = Vec::new();
                ix.containing(s, |a, b, x| at.push((a, b, x)));
                at.sort_unstable();
                prop_assert_eq!(at, brute(&items, s, s + 1));
            }
        }
    }
}
