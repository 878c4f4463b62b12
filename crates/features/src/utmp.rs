//! `utmp`: Linux `utmp`/`wtmp` records (bulk_extractor's `scan_utmp`),
//! written to `utmp_carved.txt`.
//!
//! A record is glibc's 384-byte `struct utmp`, checked as
//! bulk_extractor's `check_utmprecord_signature` does:
//! * `ut_type` 1..=8 (`RUN_LVL` .. `DEAD_PROCESS`), read as a 32-bit
//!   integer (a 16-bit type plus two zero padding bytes);
//! * `ut_line` (32 bytes at 8) and `ut_user` (32 at 44): first byte NUL or
//!   printable ASCII; once a NUL appears, only NULs follow;
//! * `ut_host` (256 at 76): first byte NUL, `!` or 35..=126; NUL-padded
//!   likewise;
//! * `tv_sec` (at 340) > 0, `tv_usec` (at 344) in 0..1000000;
//! * the 20 reserved bytes at 364 all zero.
//!
//! Both byte orders are recognised, as bulk_extractor does since it
//! accepted its issue #363's big-endian Linux/SPARC `wtmp`
//! (`src/tests/wtmp-sparc-be`, 100 records): the type, `tv_sec` and
//! `tv_usec` are then read big-endian.
//!
//! Output: bulk_extractor's `scan_utmp` hands each record to its carving
//! recorder `utmp_carved` (`carve_records(sbuf, offset, 384, "utmp")`), whose
//! feature line is the carved file's name relative to the output directory
//! and the record's length: `OFFSET\tutmp_carved/utmp\t384`.
//!
//! Deviations:
//! * bulk_extractor tests offsets 0, 8, 16, ... from the start of each
//!   16 MiB page and skips 384 bytes after a record; the scanner cannot know
//!   absolute alignment in its buffer, so it tests every offset and reports
//!   every valid record (records in a `wtmp` file are 384-byte aligned, so
//!   the results agree on real files);
//! * bulk_extractor writes `<CACHED>` instead of the file name for a record
//!   whose hash it has carved before (an order-dependent, run-wide cache);
//!   trawl writes every record's line the same way and does not write the
//!   carved `utmp` file.

use crate::records::Record;
use std::ops::Range;

/// `sizeof(struct utmp)` on glibc (x86, x86-64 and 32-bit big-endian).
pub(crate) const RECORD: usize = 384;

/// The records of utmp entries starting in `own`.
pub(crate) fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let Some(last) = buf.len().checked_sub(RECORD) else {
        return;
    };
    let end = own.end.min(last + 1);
    let mut pos = own.start;
    while pos < end {
        // cheap type test: bytes 2 and 3 zero, one of bytes 0 and 1 in 1..=8
        // and the other zero
        let b = &buf[pos..pos + 4];
        if b[2] == 0 && b[3] == 0 && (b[0] == 0) != (b[1] == 0) {
            let (t, be) = if b[0] != 0 {
                (b[0], false)
            } else {
                (b[1], true)
            };
            if (1..=8).contains(&t) && valid(&buf[pos..pos + RECORD], be) {
                out.push(Record {
                    recorder: "utmp_carved",
                    pos,
                    feature: b"utmp_carved/utmp".to_vec(),
                    context: b"384".to_vec(),
                });
            }
        }
        pos += 1;
    }
}

/// A NUL-padded string field: after the first NUL, only NULs.
fn nul_padded(f: &[u8]) -> bool {
    match f.iter().position(|&c| c == 0) {
        Some(i) => f[i..].iter().all(|&c| c == 0),
        None => true,
    }
}

/// `check_utmprecord_signature` on a whole record, type already checked.
fn valid(r: &[u8], be: bool) -> bool {
    let i32_at = |o: usize| {
        let b = [r[o], r[o + 1], r[o + 2], r[o + 3]];
        if be {
            i32::from_be_bytes(b)
        } else {
            i32::from_le_bytes(b)
        }
    };
    if r[364..384].iter().any(|&c| c != 0) {
        return false;
    }
    let sec = i32_at(340);
    let usec = i32_at(344);
    if sec <= 0 || !(0..1_000_000).contains(&usec) {
        return false;
    }
    // the first byte as a (signed) char: high-bit bytes are negative
    let printable = |c: u8| c == 0 || (32..=126).contains(&c);
    let line = &r[8..40];
    let user = &r[44..76];
    let host = &r[76..332];
    let h = host[0];
    printable(line[0])
        && nul_padded(line)
        && printable(user[0])
        && nul_padded(user)
        && (h == 0 || h == 33 || (35..=126).contains(&h))
        && nul_padded(host)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One record: type, pid, line, id, user, host, time, in either order.
    pub(crate) fn record(
        be: bool,
        typ: u16,
        line: &str,
        user: &str,
        host: &str,
        sec: i32,
    ) -> Vec<u8> {
        let mut r = vec![0u8; RECORD];
        if be {
            r[0..2].copy_from_slice(&typ.to_be_bytes());
            r[4..8].copy_from_slice(&1234i32.to_be_bytes());
            r[340..344].copy_from_slice(&sec.to_be_bytes());
            r[344..348].copy_from_slice(&5000i32.to_be_bytes());
        } else {
            r[0..2].copy_from_slice(&typ.to_le_bytes());
            r[4..8].copy_from_slice(&1234i32.to_le_bytes());
            r[340..344].copy_from_slice(&sec.to_le_bytes());
            r[344..348].copy_from_slice(&5000i32.to_le_bytes());
        }
        r[8..8 + line.len()].copy_from_slice(line.as_bytes());
        r[40..42].copy_from_slice(b"ts");
        r[44..44 + user.len()].copy_from_slice(user.as_bytes());
        r[76..76 + host.len()].copy_from_slice(host.as_bytes());
        r[348..352].copy_from_slice(&[192, 168, 1, 2]);
        r
    }

    fn run(buf: &[u8]) -> Vec<usize> {
        let mut v = Vec::new();
        scan(buf, 0..buf.len(), &mut v);
        for r in &v {
            assert_eq!(r.recorder, "utmp_carved");
            assert_eq!(r.feature, b"utmp_carved/utmp");
            assert_eq!(r.context, b"384");
        }
        v.iter().map(|r| r.pos).collect()
    }

    #[test]
    fn both_byte_orders() {
        let mut buf = vec![0x20u8; 5];
        buf.extend(record(
            false,
            7,
            "pts/0",
            "alice",
            "10.0.0.1",
            1_600_000_000,
        ));
        buf.extend(record(true, 8, "", "", "2.6.18-5-sparc32", 1_230_000_000));
        buf.extend(record(false, 2, "~", "reboot", "", 1));
        assert_eq!(run(&buf), vec![5, 5 + RECORD, 5 + 2 * RECORD]);
        // the last record needs all 384 bytes
        assert_eq!(run(&buf[..buf.len() - 1]), vec![5, 5 + RECORD]);
    }

    #[test]
    fn rejections() {
        let ok = record(false, 7, "pts/0", "bob", "host", 1_600_000_000);
        assert_eq!(run(&ok), vec![0]);
        let bad = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut r = ok.clone();
            f(&mut r);
            run(&r).is_empty()
        };
        assert!(bad(&|r| r[0] = 0)); // UT_UNKNOWN
        assert!(bad(&|r| r[0] = 9)); // ACCOUNTING
        assert!(bad(&|r| r[2] = 1)); // type beyond 16 bits
        assert!(bad(&|r| r[8] = 0x80)); // line not ASCII
        assert!(bad(&|r| r[8] = b'\t')); // line control char
        assert!(bad(&|r| r[20] = b'x')); // text after the line's NUL
        assert!(bad(&|r| r[44] = 0x7f)); // user DEL
        assert!(bad(&|r| r[76] = b'"')); // host '"'
        assert!(bad(&|r| r[300] = b'x')); // text after the host's NUL
        assert!(bad(&|r| r[340..344].copy_from_slice(&0i32.to_le_bytes())));
        assert!(bad(
            &|r| r[344..348].copy_from_slice(&1_000_000i32.to_le_bytes())
        ));
        assert!(bad(&|r| r[370] = 1)); // reserved
        // accepted: host starting with '!' or '%', a full 32-byte line
        assert!(!bad(&|r| r[76] = b'!'));
        assert!(!bad(&|r| r[8..40].copy_from_slice(&[b'a'; 32])));
    }
}
