//! English and French, chosen by the browser's `Accept-Language`: every
//! text of the dashboard ([`TEXTS`]), and numbers, sizes, percentages,
//! dates and durations formatted per language.
//!
//! Pages take their words from [`Lang::t`] (a fixed key) or [`Lang::word`]
//! (a state, role, finding kind... known at run time); a key missing from
//! [`TEXTS`] shows as `⟦key⟧`, which the tests look for (a unit test over
//! the page sources, and the browser test over every page in French).

mod texts;

pub use texts::TEXTS;

use maud::{Markup, html};

/// A language of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    /// The first of English or French the browser asks for (English when
    /// neither).
    pub fn from_accept(header: Option<&str>) -> Self {
        let Some(h) = header else { return Lang::En };
        let mut best = (Lang::En, -1.0f32);
        for part in h.split(',') {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse().ok()))
                .unwrap_or(1.0f32);
            let lang = if tag.starts_with("fr") {
                Some(Lang::Fr)
            } else if tag.starts_with("en") {
                Some(Lang::En)
            } else {
                None
            };
            if let Some(l) = lang
                && q > best.1
            {
                best = (l, q);
            }
        }
        best.0
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    fn lookup(self, key: &str) -> Option<&'static str> {
        TEXTS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, en, fr)| if self == Lang::Fr { *fr } else { *en })
    }

    /// The text of `key` in this language; `⟦key⟧` when missing (the
    /// tests fail on it).
    pub fn t(self, key: &'static str) -> &'static str {
        self.lookup(key).unwrap_or(MISSING)
    }

    /// A word known at run time: `group.value` (a state, role, finding
    /// kind...) in this language. Values the table does not know (a rule
    /// set's namespace, a scanner added later) are shown as they are;
    /// `NAME_stopped` kinds read as the scanner's words plus "stopped".
    pub fn word(self, group: &str, value: &str) -> String {
        if let Some(w) = self.lookup(&format!("{group}.{value}")) {
            return w.to_string();
        }
        if group == "kind"
            && let Some(base) = value.strip_suffix("_stopped")
            && let Some(w) = self.lookup(&format!("kind.{base}"))
        {
            return format!("{w} ({})", self.t("kind.stopped"));
        }
        value.to_string()
    }

    /// A whole number with the language's digit grouping (`12,345` /
    /// `12 345` with a narrow no-break space).
    pub fn int(self, n: u64) -> String {
        let digits = n.to_string();
        let sep = match self {
            Lang::En => ",",
            Lang::Fr => "\u{202f}",
        };
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(sep);
            }
            out.push(c);
        }
        out
    }

    /// A number with `decimals` places (`1,234.5` / `1 234,5`).
    pub fn num(self, v: f64, decimals: usize) -> String {
        if !v.is_finite() {
            return "-".into();
        }
        let neg = v < 0.0;
        let s = format!("{:.*}", decimals, v.abs());
        let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
        let whole = self.int(whole.parse().unwrap_or(0));
        let mark = match self {
            Lang::En => ".",
            Lang::Fr => ",",
        };
        let mut o = String::new();
        if neg {
            o.push('-');
        }
        o.push_str(&whole);
        if !frac.is_empty() {
            o.push_str(mark);
            o.push_str(frac);
        }
        o
    }

    /// A fraction (0..1) as a percentage: `99.1 %` / `99,1 %` (no-break
    /// space before the sign).
    pub fn pct(self, f: f64) -> String {
        format!("{}\u{a0}%", self.num(f * 100.0, 1))
    }

    /// A size in binary units: `320.0 MiB` / `320,0 Mio`.
    pub fn bytes(self, n: u64) -> String {
        const EN: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        const FR: [&str; 6] = ["o", "Kio", "Mio", "Gio", "Tio", "Pio"];
        let units = if self == Lang::Fr { FR } else { EN };
        let mut v = n as f64;
        let mut i = 0;
        while v >= 1024.0 && i + 1 < units.len() {
            v /= 1024.0;
            i += 1;
        }
        if i == 0 {
            format!("{}\u{a0}{}", self.int(n), units[0])
        } else {
            format!("{}\u{a0}{}", self.num(v, 1), units[i])
        }
    }

    /// A rate: `99.1 MiB/s` / `99,1 Mio/s`.
    pub fn rate(self, bytes_per_s: f64) -> String {
        format!("{}/s", self.bytes(bytes_per_s.max(0.0) as u64))
    }

    /// A duration: `1 h 02 min`, `3 min 20 s`, `4.2 s` / `4,2 s`.
    pub fn duration_ms(self, ms: i64) -> String {
        if ms < 0 {
            return "-".into();
        }
        let s = ms / 1000;
        if s >= 86_400 {
            let j = if self == Lang::Fr { "j" } else { "d" };
            format!("{} {j} {:02} h", s / 86_400, (s % 86_400) / 3600)
        } else if s >= 3600 {
            format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
        } else if s >= 60 {
            format!("{} min {:02} s", s / 60, s % 60)
        } else {
            format!("{} s", self.num(ms as f64 / 1000.0, 1))
        }
    }

    /// A time left in seconds (`-` when unknown).
    pub fn eta(self, secs: f64) -> String {
        if !secs.is_finite() || secs <= 0.0 {
            return "-".into();
        }
        self.duration_ms((secs * 1000.0).round() as i64)
    }

    /// A Unix time in ms as a date and time, UTC: `2026-12-06 21:10:00 UTC`
    /// / `06/12/2026 21:10:00 UTC`; `-` for none.
    pub fn datetime(self, ms: i64) -> String {
        if ms <= 0 {
            return "-".into();
        }
        let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms / 1000) else {
            return ms.to_string();
        };
        let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
        let (h, mi, s) = (t.hour(), t.minute(), t.second());
        match self {
            Lang::En => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC"),
            Lang::Fr => format!("{d:02}/{mo:02}/{y:04} {h:02}:{mi:02}:{s:02} UTC"),
        }
    }

    /// A time relative to `now_ms` (`3 s ago` / `il y a 3 s`) as a
    /// `<time>` element with the absolute time on hover.
    pub fn ago(self, ms: i64, now_ms: i64) -> Markup {
        if ms <= 0 {
            return html! { "-" };
        }
        let secs = (now_ms - ms).max(0) / 1000;
        let d = if secs < 60 {
            format!("{secs} s")
        } else {
            self.duration_ms(secs * 1000)
        };
        let rel = match self {
            Lang::En => format!("{d} {}", self.t("s_ago")),
            Lang::Fr => format!("{} {d}", self.t("s_ago")),
        };
        html! { time datetime=(iso(ms)) title=(self.datetime(ms)) { (rel) } }
    }

    /// A month `YYYY-MM` as people read it (`2026-12` / `12/2026`).
    pub fn month(self, m: &str) -> String {
        match (self, m.split_once('-')) {
            (Lang::Fr, Some((y, mo))) => format!("{mo}/{y}"),
            _ => m.to_string(),
        }
    }
}

/// What [`Lang::t`] shows for a key it does not know.
pub const MISSING: &str = "⟦missing translation⟧";

/// A Unix time in ms as RFC 3339 (UTC).
pub fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language() {
        assert_eq!(Lang::from_accept(Some("fr-FR,fr;q=0.9,en;q=0.8")), Lang::Fr);
        assert_eq!(Lang::from_accept(Some("en-GB,fr;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept(Some("de-DE,fr;q=0.7,en;q=0.3")), Lang::Fr);
        assert_eq!(Lang::from_accept(Some("de")), Lang::En);
        assert_eq!(Lang::from_accept(None), Lang::En);
        assert_eq!(Lang::Fr.t("cases"), "Affaires");
    }

    #[test]
    fn numbers_sizes_and_times_per_language() {
        assert_eq!(Lang::En.int(1_234_567), "1,234,567");
        assert_eq!(Lang::Fr.int(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(Lang::En.pct(1.0), "100.0\u{a0}%");
        assert_eq!(Lang::Fr.pct(1.0), "100,0\u{a0}%");
        assert_eq!(Lang::En.bytes(320 << 20), "320.0\u{a0}MiB");
        assert_eq!(Lang::Fr.bytes(320 << 20), "320,0\u{a0}Mio");
        assert_eq!(Lang::Fr.bytes(12), "12\u{a0}o");
        assert_eq!(Lang::Fr.rate(99.1 * 1048576.0), "99,1\u{a0}Mio/s");
        assert_eq!(Lang::En.duration_ms(200_400), "3 min 20 s");
        assert_eq!(Lang::Fr.duration_ms(4_200), "4,2 s");
        assert_eq!(Lang::En.duration_ms(3_725_000), "1 h 02 min");
        assert_eq!(
            Lang::En.datetime(1_700_000_000_000),
            "2023-11-14 22:13:20 UTC"
        );
        assert_eq!(
            Lang::Fr.datetime(1_700_000_000_000),
            "14/11/2023 22:13:20 UTC"
        );
        let a = Lang::Fr
            .ago(1_700_000_000_000, 1_700_000_003_000)
            .into_string();
        assert!(a.contains(">il y a 3 s</time>"), "{a}");
        assert!(a.contains("title=\"14/11/2023 22:13:20 UTC\""), "{a}");
        assert_eq!(Lang::Fr.num(-1234.56, 1), "-1\u{202f}234,6");
        assert_eq!(Lang::Fr.month("2026-12"), "12/2026");
    }

    #[test]
    fn words_known_at_run_time() {
        assert_eq!(Lang::Fr.word("state", "completed"), "terminé");
        assert_eq!(Lang::Fr.word("role", "case_officer"), "officier de dossier");
        assert_eq!(Lang::Fr.word("kind", "email"), "adresses électroniques");
        assert_eq!(
            Lang::Fr.word("kind", "email_stopped"),
            "adresses électroniques (écartés)"
        );
        assert_eq!(Lang::Fr.word("kind", "my_family"), "my_family");
        assert_eq!(Lang::Fr.t("no_such_key"), MISSING);
    }

    /// Every key is unique and has both texts; every French text differs
    /// from the English one unless the word is the same in both languages.
    #[test]
    fn the_table_is_complete() {
        let mut seen = std::collections::HashSet::new();
        for (k, en, fr) in TEXTS {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(!en.is_empty() && !fr.is_empty(), "{k}");
        }
    }

    /// Every key a page asks for is in the table: the sources of the pages
    /// are read for `t("...")` calls and `word("group", ...)` groups.
    #[test]
    fn every_key_used_by_a_page_has_a_translation() {
        let sources = [
            include_str!("../mod.rs"),
            include_str!("../extract.rs"),
            include_str!("../handlers.rs"),
            include_str!("../pages/mod.rs"),
            include_str!("../pages/layout.rs"),
            include_str!("../pages/cases.rs"),
            include_str!("../pages/job.rs"),
            include_str!("../pages/job_charts.rs"),
            include_str!("../pages/pool.rs"),
            include_str!("../pages/indicators.rs"),
            include_str!("../pages/threat.rs"),
            include_str!("../threat.rs"),
            include_str!("../charts.rs"),
            include_str!("../intel_handlers.rs"),
            include_str!("../pages/links.rs"),
            include_str!("../pages/alerts.rs"),
            include_str!("../pages/flashes.rs"),
        ];
        let mut missing = Vec::new();
        let mut used = 0;
        for src in sources {
            for part in src.split(".t(\"").skip(1) {
                let key = part.split('"').next().unwrap_or("");
                used += 1;
                if Lang::En.lookup(key).is_none() {
                    missing.push(key.to_string());
                }
            }
            for part in src.split(".word(\"").skip(1) {
                let group = part.split('"').next().unwrap_or("");
                if !TEXTS
                    .iter()
                    .any(|(k, _, _)| k.starts_with(&format!("{group}.")))
                {
                    missing.push(format!("{group}.*"));
                }
            }
        }
        assert!(used > 50, "only {used} keys found: the scan is broken");
        assert!(missing.is_empty(), "no translation for {missing:?}");
    }
}
