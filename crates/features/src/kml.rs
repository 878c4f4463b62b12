//! bulk_extractor's `kml` scanner (`scan_kml.cpp`): KML documents, which
//! bulk_extractor carves to `kml/NNN/PATH.kml` and records in `kml.txt`.
//!
//! # Format (bulk_extractor 2.x carving)
//!
//! One line per document: the position of its `<?xml `, the carved file's
//! name as the feature, and a DFXML `fileobject` as the context
//! (`src/test_be.cpp`, `KML_Samples.kml`):
//!
//! ```text
//! (columns are tab-separated)
//! 0    kml/000/0.kml    <fileobject><filename>kml/000/0.kml</filename><filesize>35919</filesize><hashdigest type='sha1'>cffc78e27ac32414b33d595a0fefcb971eaadaa3</hashdigest></fileobject>
//! ```
//!
//! # Recognition
//!
//! From each `<?xml ` (with the space), the first `<kml ` after it and the
//! first `</kml>` after that; the document runs from `<?xml ` through
//! `</kml>` and must be valid UTF-8. A carved document hides the `<?xml `
//! headers inside it; an invalid one hides nothing (bulk_extractor resumes
//! 6 bytes on).
//!
//! # Deviations
//!
//! * trawl does not carve: no `kml/` directory is written. The file name
//!   bulk_extractor would give is `kml/NNN/` + the forensic path (with `/`
//!   as `_`) + `.kml`; a structure scanner does not know the forensic path
//!   of its buffer, so the scanner writes the placeholder [`POS`]
//!   (`kml/000/{pos}.kml`) and the feature scanner fills in the forensic
//!   path when it records the line. The size and SHA-1 are exact.
//! * bulk_extractor numbers carving directories (`000`, `001`, …) by a
//!   global counter and writes `<CACHED>` for a repeated hash; both depend
//!   on scan order, so trawl always writes `000` and never `<CACHED>`.
//! * A document is at most [`crate::json::MAX_LEN`] (59 KiB) long; which
//!   headers an earlier document hides is decided from 1 KiB back
//!   ([`crate::json::chain`]).

use crate::json::{MAX_LEN, Next, chain, sha1_hex};
use crate::records::{BEFORE, Record};
use memchr::memmem;
use std::ops::Range;

/// Placeholder for the forensic path in carved file names.
pub const POS: &str = "{pos}";

/// The feature and context of a carved object, as bulk_extractor 2.x
/// writes them (file name with [`POS`] for the path).
pub(crate) fn carved(dir: &str, ext: &str, data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let name = format!("{dir}/000/{POS}{ext}");
    let mut ctx = format!(
        "<fileobject><filename>{name}</filename><filesize>{}</filesize><hashdigest type='sha1'>",
        data.len()
    )
    .into_bytes();
    ctx.extend_from_slice(&sha1_hex(data));
    ctx.extend_from_slice(b"</hashdigest></fileobject>");
    (name.into_bytes(), ctx)
}

/// Searches shared by the candidates of one call.
struct Finder {
    kml: Next,
    end: Next,
    /// UTF-8 from `.0` is valid up to `.1`; `.2`: an invalid sequence
    /// starts there (rather than the checked range ending).
    utf8: (usize, usize, bool),
}

impl Finder {
    /// Where the KML document starting at `q` ends (exclusive), if it is
    /// one.
    fn document(&mut self, buf: &[u8], q: usize) -> Option<usize> {
        let lim = q.saturating_add(MAX_LEN).min(buf.len());
        let k = self.kml.find(buf, q, lim, |h| memmem::find(h, b"<kml "))?;
        let e = self.end.find(buf, k, lim, |h| memmem::find(h, b"</kml>"))? + 6;
        // `q` and `e` are ASCII, hence character boundaries of any valid
        // decoding running through them: an earlier check covers this one.
        let (s, v, bad) = self.utf8;
        if s <= q && e <= v {
            return Some(e);
        }
        if s <= q && q <= v && bad {
            return None;
        }
        match std::str::from_utf8(buf.get(q..e)?) {
            Ok(_) => {
                self.utf8 = (q, e, false);
                Some(e)
            }
            Err(err) => {
                self.utf8 = (q, q + err.valid_up_to(), err.error_len().is_some());
                None
            }
        }
    }
}

/// The `kml` structure scanner.
pub fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let own = own.start.min(buf.len())..own.end.min(buf.len());
    if own.is_empty() {
        return;
    }
    let from = own.start.saturating_sub(BEFORE);
    let hay = buf.get(from..(own.end + 5).min(buf.len())).unwrap_or(&[]);
    let cands: Vec<usize> = memmem::find_iter(hay, b"<?xml ")
        .map(|i| from + i)
        .collect();
    if cands.last().is_none_or(|&c| c < own.start) {
        return;
    }
    let mut f = Finder {
        kml: Next::new(5),
        end: Next::new(6),
        utf8: (1, 0, false),
    };
    let found = chain(own, &cands, |q| match f.document(buf, q) {
        Some(e) => (e, Some(e)),
        None => (q + 6, None),
    });
    for (p, e) in found {
        let Some(doc) = buf.get(p..e) else { continue };
        let (feature, context) = carved("kml", ".kml", doc);
        out.push(Record {
            recorder: "kml",
            pos: p,
            feature,
            context,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &[u8] = b"<?xml version=\"1.0\"?>\n<kml xmlns=\"x\"><Placemark/></kml>";

    fn run(buf: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        scan(buf, 0..buf.len(), &mut out);
        out
    }

    #[test]
    fn finds_and_describes_a_document() {
        let mut buf = b"junk ".to_vec();
        buf.extend_from_slice(DOC);
        buf.extend_from_slice(b" trailing");
        let got = run(&buf);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].pos, 5);
        assert_eq!(got[0].feature, b"kml/000/{pos}.kml");
        let ctx = String::from_utf8(got[0].context.clone()).unwrap();
        assert_eq!(
            ctx,
            format!(
                "<fileobject><filename>kml/000/{{pos}}.kml</filename><filesize>{}</filesize><hashdigest type='sha1'>{}</hashdigest></fileobject>",
                DOC.len(),
                String::from_utf8(sha1_hex(DOC)).unwrap()
            )
        );
    }

    #[test]
    fn needs_kml_end_and_utf8() {
        assert!(run(b"<?xml version=\"1.0\"?><kml xmlns=\"x\">").is_empty());
        assert!(run(b"<?xml version=\"1.0\"?><gpx></gpx>").is_empty());
        assert!(run(b"<?xml version=\"1.0\"?><kml>no space</kml>").is_empty());
        assert!(run(b"<?xml version=\"1.0\"?><kml a=\"\xff\"></kml>").is_empty());
    }

    #[test]
    fn inner_header_is_hidden_invalid_is_not() {
        let mut buf = DOC[..30].to_vec();
        buf.extend_from_slice(b"<?xml inner ?>");
        buf.extend_from_slice(&DOC[30..]);
        assert_eq!(run(&buf).len(), 1);
        // An invalid first header hides nothing: the second is carved.
        let mut buf = b"<?xml \xff ".to_vec();
        buf.extend_from_slice(DOC);
        let got = run(&buf);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].pos, 8);
    }
}
