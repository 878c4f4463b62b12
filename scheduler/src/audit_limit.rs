//! Refusals are audited without letting a flood of them grow the trail.
//!
//! Refused calls (`denied`: an identified caller asked for what its role or
//! cases do not allow; `auth.refused`: no valid credentials) are counted per
//! (source address, actor, kind) in windows of one minute that start at the
//! first refusal. The first `per_minute` of a window are written in full;
//! the rest are only counted, and when the window closes one
//! `denied.aggregated` / `auth.refused.aggregated` entry records how many
//! there were, over which interval, and the last one's target, case and
//! reason. At most [`GLOBAL_PER_MINUTE`] refusals a minute are written in
//! full across all sources. Memory is bounded: at most [`MAX_TRACKED`]
//! (source, actor, kind) windows are tracked; refusals beyond them are
//! counted in one overflow window per kind (actor and source `(many)`).
//!
//! Windows close at the next refusal after their minute, on the reaper's
//! tick (about every second), and all at once when the scheduler shuts
//! down, so the count of a window is lost only if the process dies without
//! a shutdown (`kill -9`, a power cut) within that minute; the refusals
//! written in full before it remain.

use crate::core::Scheduler;
use parking_lot::Mutex;
use std::collections::HashMap;
use trawl_store::{NewAuditEntry, cap_field, now_ms};

/// Length of a window.
pub const WINDOW_MS: i64 = 60_000;
/// Most (source, actor, kind) windows tracked at once.
pub const MAX_TRACKED: usize = 1024;
/// Most refusals written in full per minute, all sources together.
pub const GLOBAL_PER_MINUTE: u32 = 2000;
/// Longest remembered text of the last refusal of a window.
const KEEP_BYTES: usize = 512;

/// One refusal, as the audit call sees it.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    pub peer: &'a str,
    pub actor: &'a str,
    pub role: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub case_id: &'a str,
    pub detail: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: String,
    actor: String,
    action: String,
}

#[derive(Debug)]
struct Window {
    start_ms: i64,
    last_ms: i64,
    written: u32,
    counted: u64,
    role: String,
    target: String,
    case_id: String,
    detail: String,
    /// The overflow window: the last source seen.
    last_from: String,
}

impl Window {
    fn new(now: i64, r: &Refusal) -> Self {
        Self {
            start_ms: now,
            last_ms: now,
            written: 0,
            counted: 0,
            role: cap_field(r.role.into(), 64),
            target: String::new(),
            case_id: String::new(),
            detail: String::new(),
            last_from: String::new(),
        }
    }

    fn count(&mut self, now: i64, r: &Refusal) {
        self.counted += 1;
        self.last_ms = now;
        self.target = cap_field(r.target.into(), KEEP_BYTES);
        self.case_id = cap_field(r.case_id.into(), KEEP_BYTES);
        self.detail = cap_field(r.detail.into(), KEEP_BYTES);
        self.last_from = cap_field(r.peer.into(), 64);
    }
}

#[derive(Debug, Default)]
struct Inner {
    windows: HashMap<Key, Window>,
    /// Per kind, refusals of sources beyond `MAX_TRACKED`.
    overflow: HashMap<String, Window>,
    /// No window closes before this time.
    next_close_ms: i64,
    global_start_ms: i64,
    global_written: u32,
}

/// Decides which refusals are written in full, and aggregates the rest.
#[derive(Debug)]
pub struct RefusalLimiter {
    per_minute: u32,
    inner: Mutex<Inner>,
}

/// The source of a peer `ip:port`: its address (a client reconnecting
/// from another port is the same source).
fn source_of(peer: &str) -> String {
    peer.parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| cap_field(peer.into(), 64))
}

fn aggregate(key: &Key, w: &Window, per_minute: u32) -> NewAuditEntry {
    let many = key.source == "(many)";
    let detail = format!(
        "{} further refusals ({}) {}between {} and {} were counted, not recorded one by one (the first {per_minute} a minute of each source, user and kind are); the last: {}{}{}",
        w.counted,
        key.action,
        if many {
            format!(
                "from sources beyond the {MAX_TRACKED} tracked at once (the last from {}) ",
                w.last_from
            )
        } else {
            String::new()
        },
        crate::text::utc_ms(w.start_ms),
        crate::text::utc_ms(w.last_ms),
        w.detail,
        if w.target.is_empty() {
            String::new()
        } else {
            format!(" (target {})", w.target)
        },
        if w.case_id.is_empty() {
            String::new()
        } else {
            format!(" (case {:?})", w.case_id)
        },
    );
    NewAuditEntry {
        actor: key.actor.clone(),
        role: w.role.clone(),
        action: format!("{}.aggregated", key.action),
        target: w.target.clone(),
        case_id: w.case_id.clone(),
        from: key.source.clone(),
        detail,
    }
}

impl RefusalLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether to write refusal `r` in full, and the aggregate entries of
    /// windows that have closed by `now` (to write first).
    pub fn admit(&self, now: i64, r: &Refusal) -> (bool, Vec<NewAuditEntry>) {
        let mut g = self.inner.lock();
        let closed = self.close(&mut g, now, false);
        if now - g.global_start_ms >= WINDOW_MS {
            g.global_start_ms = now;
            g.global_written = 0;
        }
        let key = Key {
            source: source_of(r.peer),
            actor: cap_field(r.actor.into(), 128),
            action: r.action.into(),
        };
        let global_ok = g.global_written < GLOBAL_PER_MINUTE;
        let per_minute = self.per_minute;
        let g = &mut *g;
        if !g.windows.contains_key(&key) && g.windows.len() < MAX_TRACKED {
            g.windows.insert(key.clone(), Window::new(now, r));
            let close_at = now + WINDOW_MS;
            if g.next_close_ms == 0 || close_at < g.next_close_ms {
                g.next_close_ms = close_at;
            }
        }
        let full = match g.windows.get_mut(&key) {
            Some(w) if w.written < per_minute && global_ok => {
                w.written += 1;
                w.last_ms = now;
                true
            }
            Some(w) => {
                w.count(now, r);
                false
            }
            None => {
                let o = g
                    .overflow
                    .entry(r.action.to_string())
                    .or_insert_with(|| Window::new(now, r));
                o.count(now, r);
                let close_at = o.start_ms + WINDOW_MS;
                if g.next_close_ms == 0 || close_at < g.next_close_ms {
                    g.next_close_ms = close_at;
                }
                false
            }
        };
        if full {
            g.global_written += 1;
        }
        (full, closed)
    }

    /// Aggregate entries of the windows closed by `now` (every window with
    /// `all`, at shutdown); the windows are forgotten.
    pub fn closed(&self, now: i64, all: bool) -> Vec<NewAuditEntry> {
        let mut g = self.inner.lock();
        self.close(&mut g, now, all)
    }

    fn close(&self, g: &mut Inner, now: i64, all: bool) -> Vec<NewAuditEntry> {
        let mut out = Vec::new();
        if !all && (g.next_close_ms == 0 || now < g.next_close_ms) {
            return out;
        }
        let due = |w: &Window| all || now - w.start_ms >= WINDOW_MS;
        let mut next = 0i64;
        g.windows.retain(|k, w| {
            if due(w) {
                if w.counted > 0 {
                    out.push(aggregate(k, w, self.per_minute));
                }
                false
            } else {
                let c = w.start_ms + WINDOW_MS;
                if next == 0 || c < next {
                    next = c;
                }
                true
            }
        });
        g.overflow.retain(|action, w| {
            if due(w) {
                let k = Key {
                    source: "(many)".into(),
                    actor: "(many)".into(),
                    action: action.clone(),
                };
                out.push(aggregate(&k, w, self.per_minute));
                false
            } else {
                let c = w.start_ms + WINDOW_MS;
                if next == 0 || c < next {
                    next = c;
                }
                true
            }
        });
        g.next_close_ms = next;
        out
    }

    /// Windows tracked now (tests).
    pub fn tracked(&self) -> usize {
        self.inner.lock().windows.len()
    }
}

impl Scheduler {
    /// Writes the aggregate entries of refusal windows that have closed
    /// (all of them with `all`, at shutdown).
    pub fn flush_refusal_windows(&self, all: bool) {
        for e in self.refusals.closed(now_ms(), all) {
            self.append_audit(e);
        }
    }

    pub(crate) fn append_audit(&self, e: NewAuditEntry) {
        let action = e.action.clone();
        if let Err(err) = self.store.audit().append(e) {
            tracing::error!(error = %err, action, "audit append failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r<'a>(peer: &'a str, actor: &'a str, case: &'a str) -> Refusal<'a> {
        Refusal {
            peer,
            actor,
            role: "investigator",
            action: "denied",
            target: "jobs.list",
            case_id: case,
            detail: "read case",
        }
    }

    #[test]
    fn the_first_of_a_minute_are_written_the_rest_counted() {
        let l = RefusalLimiter::new(3);
        let t0 = 1_000_000;
        let mut full = 0;
        for i in 0..10 {
            // Another port each time: the same source.
            let peer = format!("10.0.0.1:{}", 40000 + i);
            let (f, closed) = l.admit(t0 + i, &r(&peer, "ivy", "B"));
            assert!(closed.is_empty());
            full += f as u32;
        }
        assert_eq!(full, 3);
        // Another user from the same address has its own allowance.
        assert!(l.admit(t0 + 20, &r("10.0.0.1:1", "otto", "B")).0);
        // Nothing closes before the minute is over.
        assert!(l.closed(t0 + WINDOW_MS - 1, false).is_empty());
        let (f, closed) = l.admit(t0 + WINDOW_MS + 5, &r("10.0.0.1:2", "ivy", "C"));
        assert!(f, "a new window starts");
        assert_eq!(closed.len(), 1, "{closed:?}");
        let a = &closed[0];
        assert_eq!(
            (a.action.as_str(), a.actor.as_str(), a.from.as_str()),
            ("denied.aggregated", "ivy", "10.0.0.1")
        );
        assert!(a.detail.starts_with("7 further refusals"), "{}", a.detail);
        assert_eq!(a.case_id, "B");
        // otto's window had nothing counted: it closes without an entry;
        // at shutdown ivy's new window (nothing counted) closes quietly.
        assert!(l.closed(t0 + 3 * WINDOW_MS, true).is_empty());
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn memory_is_bounded_and_overflow_is_counted() {
        let l = RefusalLimiter::new(1);
        let t0 = 5_000_000;
        let mut full = 0;
        for i in 0..(MAX_TRACKED + 500) {
            let peer = format!("10.{}.{}.{}:1", i >> 16, (i >> 8) & 255, i & 255);
            full += l.admit(t0, &r(&peer, "x", "A")).0 as usize;
        }
        assert_eq!(l.tracked(), MAX_TRACKED);
        assert_eq!(full, MAX_TRACKED);
        let closed = l.closed(t0, true);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].actor, "(many)");
        assert!(closed[0].detail.starts_with("500 further refusals"));
        assert!(
            closed[0].detail.contains("10.0.5.243:1"),
            "{}",
            closed[0].detail
        );
    }

    #[test]
    fn a_huge_field_is_not_kept_whole() {
        let l = RefusalLimiter::new(0);
        let big = "x".repeat(8 << 20);
        l.admit(0, &r("1.2.3.4:5", "ivy", &big));
        let c = l.closed(0, true);
        assert!(c[0].case_id.len() < 1024, "{}", c[0].case_id.len());
    }

    #[test]
    fn the_global_budget_holds_across_sources() {
        let l = RefusalLimiter::new(1000);
        let mut full = 0;
        for i in 0..(GLOBAL_PER_MINUTE + 500) {
            let peer = format!("10.0.0.{}:1", i % 10);
            full += l.admit(7, &r(&peer, "x", "A")).0 as u32;
        }
        assert_eq!(full, GLOBAL_PER_MINUTE);
    }
}
