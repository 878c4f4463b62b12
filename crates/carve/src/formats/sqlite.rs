//! SQLite 3 databases: header sanity, size = page size x page count (the
//! in-header page count, valid when the version-valid-for number matches the
//! change counter), page 1's b-tree header checked.

use super::{Cx, Verdict};
use crate::CarveError;
use crate::kinds::SQLITE;
use crate::src::rd;

pub(crate) fn validate(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<108>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    let ps = rd::be16(&h, 16).unwrap_or(0);
    let page = if ps == 1 { 65536u64 } else { u64::from(ps) };
    if !page.is_power_of_two() || !(512..=65536).contains(&page) {
        return Ok(Verdict::Reject("bad page size"));
    }
    let (wv, rv, reserved) = (h[18], h[19], h[20]);
    if !matches!(wv, 1 | 2) || !matches!(rv, 1 | 2) || u64::from(reserved) >= page / 2 {
        return Ok(Verdict::Reject("bad versions"));
    }
    if h[21] != 64 || h[22] != 32 || h[23] != 32 {
        return Ok(Verdict::Reject("bad payload fractions"));
    }
    let change = rd::be32(&h, 24).unwrap_or(0);
    let count = u64::from(rd::be32(&h, 28).unwrap_or(0));
    let freelist_trunk = u64::from(rd::be32(&h, 32).unwrap_or(0));
    let schema_format = rd::be32(&h, 44).unwrap_or(0);
    let encoding = rd::be32(&h, 56).unwrap_or(0);
    let valid_for = rd::be32(&h, 92).unwrap_or(1);
    if schema_format > 4 || encoding > 3 {
        return Ok(Verdict::Reject("bad schema format or encoding"));
    }
    // Page 1's b-tree header follows the 100-byte file header.
    if !matches!(h[100], 0x0D | 0x05) {
        return Ok(Verdict::Reject("page 1 is not a table b-tree page"));
    }
    let cells = u64::from(rd::be16(&h, 103).unwrap_or(0));
    let content = u64::from(rd::be16(&h, 105).unwrap_or(0));
    let content = if content == 0 { 65536 } else { content };
    let hdr = if h[100] == 0x05 { 12 } else { 8 };
    if 100 + hdr + 2 * cells > page || (cells > 0 && content > page) {
        return Ok(Verdict::Reject("bad page 1 header"));
    }
    if count == 0 || change != valid_for {
        return Ok(Verdict::Reject(
            "in-header page count not valid (database written by SQLite < 3.7.0): size unknown",
        ));
    }
    if freelist_trunk > count {
        return Ok(Verdict::Reject("freelist trunk past the last page"));
    }
    let Some(len) = page.checked_mul(count) else {
        return Ok(Verdict::Reject("size overflows"));
    };
    if len > cx.max {
        return Ok(Verdict::Reject("larger than the maximum size"));
    }
    let end = start + len;
    if end > src.size() {
        return Ok(cx.too_long(SQLITE, start, end, "database header"));
    }
    Ok(Verdict::valid(SQLITE, len))
}
