//! SQLite 3 database headers (bulk_extractor's `scan_sqlite`).
//!
//! bulk_extractor looks for `SQLite format 3\0`, reads the page size (big
//! endian u16 at +16, `1` meaning 65536; it must be a power of two from 512
//! to 65536) and the database size in pages (big endian u32 at +28, at
//! least 1, the size in bytes computed in 32 bits and non-zero), and carves
//! `page size * pages` bytes from the header on through its
//! `sqlite_carved` recorder. A carve writes one `sqlite_carved.txt` line:
//! the carved file's name as the feature and a DFXML `<fileobject>` with
//! the size and SHA-1 of the carved bytes as the context.
//!
//! trawl does not carve files, so it writes the line bulk_extractor writes
//! for a carve whose file is not written (its de-duplication case): the
//! feature `<CACHED>` and the `<fileobject>` without `<filename>`
//! (tab-separated):
//!
//! ```text
//! 1000  <CACHED>  <fileobject><filesize>8192</filesize><hashdigest type='sha1'>…</hashdigest></fileobject>
//! ```
//!
//! Deviations: bulk_extractor names the carved file
//! `sqlite_carved/NNN/<forensic path>.sqlite3` and puts that name in the
//! feature and a `<filename>` element; a structure scanner does not know
//! the forensic path, and trawl writes no file. The carved extent is
//! `page size * pages` bytes clamped to the bytes a scanner may read
//! ([`records::WINDOW`](super::records::WINDOW), 60 KiB): bulk_extractor
//! clamps to the end of its own 16 MiB page plus margin, and passes
//! `begin + size` as the length (so a database not at the start of its
//! page is carved with trailing bytes); for a database up to 60 KiB at the
//! start of a file both agree. bulk_extractor skips the headers lying inside
//! a database it just carved (and the 512 bytes after a header with a bad
//! page size) and scans no buffer shorter than 512 bytes; trawl reports
//! every valid header on its own.

use super::records::{Record, window};
use std::ops::Range;

const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The database size in bytes the header at `h` declares, as bulk_extractor
/// computes it, or `None` when it would not carve.
fn db_size(h: &[u8]) -> Option<u32> {
    let ps = u32::from(u16::from_be_bytes([*h.get(16)?, *h.get(17)?]));
    let ps = if ps == 1 { 65536 } else { ps };
    if !(ps.is_power_of_two() && (512..=65536).contains(&ps)) {
        return None;
    }
    let pages = u32::from_be_bytes([*h.get(28)?, *h.get(29)?, *h.get(30)?, *h.get(31)?]);
    let size = ps.wrapping_mul(pages);
    (pages >= 1 && size > 0).then_some(size)
}

/// The scanner: `sqlite_carved` records for headers starting in `own`.
pub fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let end = own.end.min(buf.len());
    if own.start >= end {
        return;
    }
    let hay = &buf[own.start..(end + MAGIC.len() - 1).min(buf.len())];
    for i in memchr::memmem::find_iter(hay, MAGIC) {
        let pos = own.start + i;
        let (w, at) = window(buf, pos);
        let h = &w[at..];
        let Some(size) = db_size(h) else { continue };
        let n = (size as usize).min(h.len());
        let data = &h[..n];
        let mut ctx =
            format!("<fileobject><filesize>{n}</filesize><hashdigest type='sha1'>").into_bytes();
        for b in sha1(data) {
            ctx.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        ctx.extend_from_slice(b"</hashdigest></fileobject>");
        out.push(Record {
            recorder: "sqlite_carved",
            pos,
            feature: b"<CACHED>".to_vec(),
            context: ctx,
        });
    }
}

/// SHA-1 (FIPS 180-4), bulk_extractor's default carving hash.
pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                _ => (b ^ c ^ d, 0xca62_c1d6u32),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut o = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        o[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha1_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    fn header(page: u16, pages: u32) -> Vec<u8> {
        let mut h = vec![0u8; 100];
        h[..16].copy_from_slice(MAGIC);
        h[16..18].copy_from_slice(&page.to_be_bytes());
        h[28..32].copy_from_slice(&pages.to_be_bytes());
        h
    }

    #[test]
    fn header_rules() {
        assert_eq!(db_size(&header(4096, 2)), Some(8192));
        assert_eq!(db_size(&header(1, 3)), Some(3 * 65536));
        assert_eq!(db_size(&header(1, 65536)), None); // 2^32 wraps to 0
        assert_eq!(db_size(&header(256, 2)), None);
        assert_eq!(db_size(&header(1000, 2)), None);
        assert_eq!(db_size(&header(4096, 0)), None);
        assert_eq!(db_size(&header(4096, 1)[..30]), None);
    }

    #[test]
    fn record_line() {
        let mut db = header(512, 2);
        db.resize(1024, 7);
        let mut buf = vec![0xEEu8; 33];
        buf.extend_from_slice(&db);
        buf.extend_from_slice(&[1, 2, 3]);
        let mut out = Vec::new();
        scan(&buf, 0..buf.len(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].pos, 33);
        assert_eq!(out[0].feature, b"<CACHED>");
        let want = format!(
            "<fileobject><filesize>1024</filesize><hashdigest type='sha1'>{}</hashdigest></fileobject>",
            hex(&sha1(&db))
        );
        assert_eq!(out[0].context, want.as_bytes());
        let mut out = Vec::new();
        scan(&buf, 34..buf.len(), &mut out);
        assert!(out.is_empty());
        // truncated: clamped to what is there
        let mut out = Vec::new();
        scan(&buf[..300], 0..300, &mut out);
        assert!(String::from_utf8_lossy(&out[0].context).contains("<filesize>267</filesize>"));
    }
}
