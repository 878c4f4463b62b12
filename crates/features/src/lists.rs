//! Stop lists and alert lists (bulk_extractor's `-s`/`-w` and `-r`
//! word-and-context lists).
//!
//! One entry per line; empty lines and `#` comments are skipped.
//! * `feature` — matches that feature exactly (after escaping, as it is
//!   written in the feature file);
//! * `feature<TAB>context` — that feature only in that context;
//! * `offset<TAB>feature<TAB>context` — a line copied from a feature file;
//! * a line holding `*`, `[`, `(` or `?` (bulk_extractor's rule) is a
//!   regular expression, searched case-insensitively in the feature.
//!
//! Contexts compare as bulk_extractor does: the parts before and after the
//! feature must agree on their overlap (the shorter one is a suffix of the
//! longer one before the feature, a prefix after it).

use crate::FeatureError;
use regex::{RegexSet, RegexSetBuilder};
use std::collections::HashMap;

/// A parsed stop or alert list.
#[derive(Debug, Default)]
pub struct WordList {
    /// feature -> contexts (None: any context)
    words: HashMap<String, Vec<Option<String>>>,
    patterns: Option<RegexSet>,
}

fn split_ctx<'a>(feature: &str, ctx: &'a str) -> Option<(&'a str, &'a str)> {
    let p = ctx.find(feature)?;
    Some((&ctx[..p], &ctx[p + feature.len()..]))
}

fn ctx_match(feature: &str, want: &str, got: &str) -> bool {
    if want == got {
        return true;
    }
    match (split_ctx(feature, want), split_ctx(feature, got)) {
        (Some((wb, wa)), Some((gb, ga))) => {
            (wb.ends_with(gb) || gb.ends_with(wb)) && (wa.starts_with(ga) || ga.starts_with(wa))
        }
        _ => false,
    }
}

impl WordList {
    /// Parses a list; `what` names it in errors.
    ///
    /// # Errors
    /// An invalid regular expression, naming its line.
    pub fn parse(text: &str, what: &str) -> Result<Self, FeatureError> {
        let mut words: HashMap<String, Vec<Option<String>>> = HashMap::new();
        let mut pats = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let (f, c) = match fields.len() {
                1 => (fields[0], None),
                2 => (fields[0], Some(fields[1])),
                _ => (fields[1], Some(fields[2])),
            };
            if c.is_none() && f.contains(['*', '[', '(', '?']) {
                regex::RegexBuilder::new(f)
                    .build()
                    .map_err(|e| FeatureError::Settings(format!("{what} line {}: {e}", n + 1)))?;
                pats.push(f.to_string());
                continue;
            }
            words
                .entry(f.to_string())
                .or_default()
                .push(c.map(str::to_string));
        }
        let patterns = if pats.is_empty() {
            None
        } else {
            Some(
                RegexSetBuilder::new(&pats)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| FeatureError::Settings(format!("{what}: {e}")))?,
            )
        };
        Ok(Self { words, patterns })
    }

    /// Whether the list has no entry.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.patterns.is_none()
    }

    /// Whether an escaped feature in its escaped context is on the list.
    pub fn matches(&self, feature: &str, context: &str) -> bool {
        if let Some(ctxs) = self.words.get(feature)
            && ctxs.iter().any(|c| match c {
                None => true,
                Some(want) => ctx_match(feature, want, context),
            })
        {
            return true;
        }
        self.patterns.as_ref().is_some_and(|p| p.is_match(feature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let l = WordList::parse(
            "# stop\nnoreply@example.com\nbob@x.com\tto: bob@x.com now\n12\tann@y.org\tsee ann@y.org\n.*@spam\\.test\n",
            "stop list",
        )
        .unwrap();
        assert!(l.matches("noreply@example.com", "anything"));
        assert!(!l.matches("Noreply@example.com", "anything"));
        assert!(l.matches("bob@x.com", "to: bob@x.com now"));
        assert!(l.matches("bob@x.com", "o: bob@x.com no"));
        assert!(!l.matches("bob@x.com", "cc: bob@x.com now"));
        assert!(l.matches("ann@y.org", "xx see ann@y.org\\012"));
        assert!(l.matches("eve@SPAM.test", ""));
        assert!(!l.matches("eve@ham.test", ""));
        assert!(WordList::parse("a(b", "stop list").is_err());
        assert!(WordList::parse("\n#x\n", "stop list").unwrap().is_empty());
    }
}
