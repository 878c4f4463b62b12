//! bulk_extractor's `vcard` scanner (`scan_vcard.cpp`): vCards, which
//! bulk_extractor carves to `vcard/NNN/PATH.vcf` and records in
//! `vcard.txt`.
//!
//! # Format (bulk_extractor 2.x carving)
//!
//! One line per card: the position of its `BEGIN:VCARD`, the carved file's
//! name as the feature, a DFXML `fileobject` as the context
//! (`tests/data_check.txt`, `Data/John Jakes.vcf`, whose context it cuts
//! to `<fileobject>...`):
//!
//! ```text
//! (columns are tab-separated)
//! 0    vcard/000/0.vcf    <fileobject><filename>vcard/000/0.vcf</filename><filesize>4748</filesize><hashdigest type='sha1'>…</hashdigest></fileobject>
//! ```
//!
//! # Recognition
//!
//! From each `BEGIN:VCARD\r`, the first `END:VCARD\r` after it; every byte
//! in between must be at least a space or be TAB, CR or LF (bytes ≥ 0x80
//! pass). The carved card runs from `BEGIN` through `END:VCARD\r\n` (11
//! bytes from `END`). A carved card hides the `BEGIN:VCARD\r` inside it and
//! one starting right after its `END:VCARD\r\n`: bulk_extractor's loop
//! resumes 12 bytes after `END` (`i = end + 11; continue;` then `i++`), so
//! of back-to-back cards it carves every other one — reproduced.
//!
//! # Deviations
//!
//! * No carving; the file name is filled in with the forensic path as for kml; always
//!   directory `000`, never `<CACHED>` (see [`crate::kml`]).
//! * bulk_extractor gives up on the rest of its 16 MiB page at the first
//!   card with a control byte; that depends on where pages begin, so trawl
//!   goes on to the next `BEGIN:VCARD` (it may report cards bulk_extractor
//!   misses, never the other way round).
//! * A card is at most [`crate::json::MAX_LEN`] (59 KiB) long; which cards
//!   an earlier one hides is decided from 1 KiB back.

use crate::json::{MAX_LEN, Next, chain};
use crate::kml::carved;
use crate::records::{BEFORE, Record};
use memchr::memmem;
use std::ops::Range;

const BEGIN: &[u8] = b"BEGIN:VCARD\r";
const END: &[u8] = b"END:VCARD\r";
/// `END:VCARD\r\n`.
const END_LEN: usize = 11;

/// Where the card starting at `q` ends (exclusive) and where the search
/// resumes, if it is one.
fn card(buf: &[u8], q: usize, end: &mut Next, ctl: &mut Next) -> Option<(usize, usize)> {
    let lim = q.saturating_add(MAX_LEN).min(buf.len());
    let e = end.find(buf, q, lim, |h| memmem::find(h, END))?;
    let bad = |b: u8| b < b' ' && !matches!(b, b'\r' | b'\n' | b'\t');
    if ctl
        .find(buf, q, e, |h| h.iter().position(|&b| bad(b)))
        .is_some()
    {
        return None;
    }
    Some(((e + END_LEN).min(lim), e + END_LEN + 1))
}

/// The `vcard` structure scanner.
pub fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let own = own.start.min(buf.len())..own.end.min(buf.len());
    if own.is_empty() {
        return;
    }
    let from = own.start.saturating_sub(BEFORE);
    let hay = buf
        .get(from..(own.end + BEGIN.len() - 1).min(buf.len()))
        .unwrap_or(&[]);
    let cands: Vec<usize> = memmem::find_iter(hay, BEGIN).map(|i| from + i).collect();
    if cands.last().is_none_or(|&c| c < own.start) {
        return;
    }
    let (mut end, mut ctl) = (Next::new(END.len()), Next::new(1));
    let found = chain(own, &cands, |q| match card(buf, q, &mut end, &mut ctl) {
        Some((end, resume)) => (resume, Some(end)),
        None => (q + 1, None),
    });
    for (p, e) in found {
        let Some(data) = buf.get(p..e) else { continue };
        let (feature, context) = carved("vcard", ".vcf", data);
        out.push(Record {
            recorder: "vcard",
            pos: p,
            feature,
            context,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &[u8] = b"BEGIN:VCARD\r\nVERSION:2.1\r\nN:Doe;Jane\r\nEND:VCARD\r\n";

    fn run(buf: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        scan(buf, 0..buf.len(), &mut out);
        out
    }

    #[test]
    fn carves_through_end_crlf() {
        let mut buf = b"xx".to_vec();
        buf.extend_from_slice(CARD);
        buf.push(b'\n');
        buf.extend_from_slice(CARD);
        let got = run(&buf);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].pos, got[1].pos), (2, 3 + CARD.len()));
        assert_eq!(got[0].feature, b"vcard/000/{pos}.vcf");
        let ctx = String::from_utf8(got[0].context.clone()).unwrap();
        assert!(ctx.contains(&format!("<filesize>{}</filesize>", CARD.len())));
        assert!(ctx.starts_with("<fileobject><filename>vcard/000/{pos}.vcf</filename>"));
    }

    #[test]
    fn rejects_control_bytes_and_missing_end() {
        assert!(run(b"BEGIN:VCARD\r\nN:a\x01b\r\nEND:VCARD\r\n").is_empty());
        assert!(run(b"BEGIN:VCARD\r\nN:ab\r\n").is_empty());
        assert!(run(b"BEGIN:VCARD\nN:ab\nEND:VCARD\n").is_empty());
        // UTF-8 (bytes >= 0x80) passes.
        assert_eq!(
            run("BEGIN:VCARD\r\nN:Jos\u{e9}\r\nEND:VCARD\r\n".as_bytes()).len(),
            1
        );
    }

    #[test]
    fn back_to_back_card_is_hidden() {
        // bulk_extractor resumes 12 bytes after END (its loop's `i++` after
        // `i = end + 11; continue`): a card right after END:VCARD\r\n is
        // skipped.
        let mut buf = CARD.to_vec();
        buf.extend_from_slice(CARD);
        buf.extend_from_slice(CARD);
        let got = run(&buf);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].pos, got[1].pos), (0, 2 * CARD.len()));
    }

    #[test]
    fn nested_begin_is_hidden() {
        let buf = b"BEGIN:VCARD\r\nN:a\r\nBEGIN:VCARD\r\nN:b\r\nEND:VCARD\r\n";
        let got = run(buf);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].pos, 0);
        assert!(
            String::from_utf8_lossy(&got[0].context)
                .contains(&format!("<filesize>{}</filesize>", buf.len()))
        );
    }
}
