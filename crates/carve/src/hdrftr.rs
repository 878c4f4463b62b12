//! Header/footer carving for custom (configuration) types, Scalpel's and
//! Foremost's semantics: FORWARD (first footer, included), REVERSE (last
//! footer within the maximum size, included), NEXT (up to the first footer,
//! excluded; the maximum size without one), ASCII (printable text), and no
//! footer (the maximum size).

use super::config::{Custom, Mode, Pat, anchor, matches};
use super::src::Src;
use crate::CarveError;
use aho_corasick::AhoCorasick;

/// A compiled footer: its longest literal run for the search, the rest
/// checked around each hit.
#[derive(Debug)]
pub(crate) struct Footer {
    pat: Pat,
    case_sensitive: bool,
    anchor_off: usize,
    anchor_len: usize,
    ac: AhoCorasick,
}

impl Footer {
    pub(crate) fn new(pat: &Pat, case_sensitive: bool) -> Result<Self, String> {
        let (off, lit) = anchor(pat);
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(!case_sensitive)
            .build([&lit])
            .map_err(|e| e.to_string())?;
        Ok(Self {
            pat: pat.clone(),
            case_sensitive,
            anchor_off: off,
            anchor_len: lit.len(),
            ac,
        })
    }

    /// Footer starts `q` with `from <= q` and `q + len <= to`: the first,
    /// or the last when `last`.
    fn search(&self, src: &Src, from: u64, to: u64, last: bool) -> Result<Option<u64>, CarveError> {
        let flen = self.pat.len() as u64;
        if to < from + flen {
            return Ok(None);
        }
        let a_from = from + self.anchor_off as u64;
        let a_to = to - flen + self.anchor_off as u64 + self.anchor_len as u64;
        let mut found: Option<u64> = None;
        let mut carry: Vec<u8> = Vec::new();
        let mut carry_at = a_from;
        let k = self.anchor_len.saturating_sub(1);
        let mut hit = |a: u64| -> Result<bool, CarveError> {
            let Some(q) = a.checked_sub(self.anchor_off as u64) else {
                return Ok(false);
            };
            if q < from || q + flen > to {
                return Ok(false);
            }
            let b = src.view(q, flen)?;
            if matches(&self.pat, &b, self.case_sensitive) {
                found = Some(q);
                return Ok(!last);
            }
            Ok(false)
        };
        let mut err: Option<CarveError> = None;
        src.each_chunk(a_from, a_to, 4 << 20, |off, c| {
            let mut stop = false;
            if !carry.is_empty() {
                let mut j = std::mem::take(&mut carry);
                j.extend_from_slice(&c[..c.len().min(k)]);
                for m in self.ac.find_overlapping_iter(&j) {
                    let a = carry_at + m.start() as u64;
                    if a + self.anchor_len as u64 > off {
                        match hit(a) {
                            Ok(true) => stop = true,
                            Ok(false) => {}
                            Err(e) => {
                                err = Some(e);
                                stop = true;
                            }
                        }
                        if stop {
                            break;
                        }
                    }
                }
            }
            if !stop {
                for m in self.ac.find_overlapping_iter(c) {
                    match hit(off + m.start() as u64) {
                        Ok(true) => stop = true,
                        Ok(false) => {}
                        Err(e) => {
                            err = Some(e);
                            stop = true;
                        }
                    }
                    if stop {
                        break;
                    }
                }
            }
            if stop {
                return Some(());
            }
            let keep = c.len().min(k);
            carry.clear();
            carry.extend_from_slice(&c[c.len() - keep..]);
            carry_at = off + (c.len() - keep) as u64;
            None
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        Ok(found)
    }
}

/// The length carved for `c` at `start`, or why nothing is carved.
pub(crate) fn carve(
    src: &Src,
    c: &Custom,
    footer: Option<&Footer>,
    start: u64,
) -> Result<Result<(u64, String), &'static str>, CarveError> {
    let limit = start.saturating_add(c.max_size).min(src.size());
    let hlen = c.header.len() as u64;
    if start + hlen > limit {
        return Ok(Err("header past the end of the image"));
    }
    let Some(f) = footer else {
        if c.mode == Mode::Ascii {
            let mut end = start + hlen;
            src.each_chunk(end, limit, 1 << 20, |off, b| {
                match b.iter().position(|&x| {
                    !(x.is_ascii_graphic() || matches!(x, b' ' | b'\t' | b'\r' | b'\n'))
                }) {
                    Some(i) => {
                        end = off + i as u64;
                        Some(())
                    }
                    None => {
                        end = off + b.len() as u64;
                        None
                    }
                }
            })?;
            return Ok(Ok((end - start, "printable text from the header".into())));
        }
        let note = if limit - start < c.max_size {
            "no footer defined: carved to the end of the image"
        } else {
            "no footer defined: maximum size carved"
        };
        return Ok(Ok((limit - start, note.into())));
    };
    let flen = f.pat.len() as u64;
    Ok(match c.mode {
        Mode::Forward | Mode::Ascii => match f.search(src, start + hlen, limit, false)? {
            Some(q) => Ok((q + flen - start, "header to the first footer".into())),
            None => Err("no footer within the maximum size"),
        },
        Mode::Reverse => match f.search(src, start + hlen, limit, true)? {
            Some(q) => Ok((
                q + flen - start,
                "header to the last footer (REVERSE)".into(),
            )),
            None => Err("no footer within the maximum size"),
        },
        Mode::Next => match f.search(src, start + hlen, limit, false)? {
            Some(q) => Ok((q - start, "header up to the next footer (NEXT)".into())),
            None => Ok((
                limit - start,
                "no footer within the maximum size: maximum size carved (NEXT)".into(),
            )),
        },
    })
}
