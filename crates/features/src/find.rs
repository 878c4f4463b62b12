//! The `find` scanner: user keywords, like bulk_extractor's `-F FILE`.
//!
//! One keyword per line; empty lines and lines starting with `#` are
//! skipped. A line `/EXPR/` is a regular expression (the `regex` crate's
//! syntax, over bytes), anything else a literal. Both match ASCII case
//! insensitively, as bulk_extractor's find does, or exactly when the job
//! asks for case-sensitive keywords (`--find-case-sensitive`). Literals report every
//! occurrence (overlapping ones too); regular expressions report
//! leftmost-first, non-overlapping matches of at most [`MAX_MATCH`] bytes.

use super::{Hit, Kind};
use crate::FeatureError;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use std::ops::Range;

/// Longest regular-expression match reported, in bytes.
pub const MAX_MATCH: usize = 1024;
/// How far before a buffer region a regular-expression search starts, so
/// that matches do not depend on where the region begins.
const RESYNC: usize = 1024;

/// Compiled keywords.
#[derive(Debug)]
pub struct Finder {
    literals: Option<AhoCorasick>,
    regex: Option<Regex>,
    /// Longest literal, in bytes.
    pub max_literal: usize,
}

impl Finder {
    /// Parses a keyword list.
    ///
    /// # Errors
    /// An invalid regular expression, naming its line.
    pub fn new(text: &str, ignore_case: bool) -> Result<Option<Self>, FeatureError> {
        let mut lits: Vec<Vec<u8>> = Vec::new();
        let mut res: Vec<String> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            if line.len() >= 2 && line.starts_with('/') && line.ends_with('/') {
                let expr = &line[1..line.len() - 1];
                RegexBuilder::new(expr).build().map_err(|e| {
                    FeatureError::Settings(format!("find list line {}: {e}", n + 1))
                })?;
                res.push(format!("(?:{expr})"));
            } else {
                lits.push(line.as_bytes().to_vec());
            }
        }
        if lits.is_empty() && res.is_empty() {
            return Ok(None);
        }
        let max_literal = lits.iter().map(Vec::len).max().unwrap_or(0);
        let literals = if lits.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(ignore_case)
                    .match_kind(MatchKind::Standard)
                    .build(&lits)
                    .map_err(|e| FeatureError::Settings(format!("find list: {e}")))?,
            )
        };
        let regex = if res.is_empty() {
            None
        } else {
            Some(
                RegexBuilder::new(&res.join("|"))
                    .case_insensitive(ignore_case)
                    .unicode(false)
                    .size_limit(64 << 20)
                    .build()
                    .map_err(|e| FeatureError::Settings(format!("find list: {e}")))?,
            )
        };
        Ok(Some(Self {
            literals,
            regex,
            max_literal,
        }))
    }

    /// Reports the matches starting in `own`.
    pub fn scan(&self, buf: &[u8], own: Range<usize>, out: &mut Vec<Hit>) {
        if let Some(ac) = &self.literals {
            let hi = (own.end + self.max_literal).min(buf.len());
            if own.start < hi {
                for m in ac.find_overlapping_iter(&buf[own.start..hi]) {
                    let s = own.start + m.start();
                    if s < own.end {
                        out.push(Hit::new(Kind::Find, s, own.start + m.end()));
                    }
                }
            }
        }
        if let Some(re) = &self.regex {
            let hay = &buf[..(own.end + MAX_MATCH).min(buf.len())];
            let mut pos = own.start.saturating_sub(RESYNC);
            while pos <= hay.len() {
                let Some(m) = re.find_at(hay, pos) else { break };
                if m.start() >= own.end {
                    break;
                }
                if m.start() >= own.start && m.end() > m.start() {
                    out.push(Hit::new(Kind::Find, m.start(), m.end()));
                }
                pos = if m.end() > m.start() {
                    m.end()
                } else {
                    m.end() + 1
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_regexes() {
        let f = Finder::new("# comment\nsecret\n\n/pass(word)?=[a-z]+/\n", true)
            .unwrap()
            .unwrap();
        let s = b"a SECRET and password=hunter and pass=x secretsecret";
        let mut v = Vec::new();
        f.scan(s, 0..s.len(), &mut v);
        let got: Vec<&[u8]> = v.iter().map(|h| &s[h.start..h.end]).collect();
        assert_eq!(
            got,
            [
                b"SECRET".as_slice(),
                b"secret",
                b"secret",
                b"password=hunter",
                b"pass=x"
            ]
        );
        assert!(Finder::new("/(unclosed/", true).is_err());
        assert!(Finder::new("\n# only comments\n", true).unwrap().is_none());
    }

    #[test]
    fn case_sensitive_keywords_match_exactly() {
        let f = Finder::new("Secret\n/Pass=[a-z]+/\n", false)
            .unwrap()
            .unwrap();
        let s = b"SECRET secret Secret pass=x Pass=y PASS=z";
        let mut v = Vec::new();
        f.scan(s, 0..s.len(), &mut v);
        let got: Vec<&[u8]> = v.iter().map(|h| &s[h.start..h.end]).collect();
        assert_eq!(got, [b"Secret".as_slice(), b"Pass=y"]);
    }

    #[test]
    fn ownership_is_by_start() {
        let f = Finder::new("abc\n/x+y/", true).unwrap().unwrap();
        let s = b"..abc..xxxy..";
        let mut v = Vec::new();
        f.scan(s, 0..3, &mut v);
        assert_eq!(v.len(), 1);
        v.clear();
        f.scan(s, 3..7, &mut v);
        assert!(v.is_empty(), "abc starts at 2, xxxy at 7: {v:?}");
        v.clear();
        f.scan(s, 7..8, &mut v);
        assert_eq!(v.len(), 1);
        assert_eq!(&s[v[0].start..v[0].end], b"xxxy");
    }
}
