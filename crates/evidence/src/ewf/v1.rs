//! EWF version 1 segment files (E01, S01): a 13-byte file header, then a
//! chain of sections, each starting with a 76-byte descriptor (type, offset
//! of the next section, size, Adler-32 checksum).

use super::meta::{self, DateStyle};
use super::{
    Builder, End, Loc, MAX_META_COMPRESSED, MAX_META_INFLATED, MAX_SECTIONS, MAX_TABLE_ENTRIES,
    Media, Reason, SegFile, V1_SIGNATURE, adler32, corrupt, inflate_meta, le16, le32, le64,
    truncated, wrong_segment_number,
};
use crate::{AcquisitionError, EvidenceError};

const FILE_HEADER: u64 = 13;
const DESCRIPTOR: u64 = 76;
const VOLUME_E01: usize = 1052;
const VOLUME_S01: usize = 94;

/// One section of a segment file.
#[derive(Debug, Clone)]
pub(super) struct Section {
    pub kind: String,
    /// Offset of the section descriptor.
    pub offset: u64,
    /// Offset just past the section (the next section's offset).
    pub end: u64,
}

impl Section {
    fn data(&self) -> u64 {
        self.offset + DESCRIPTOR
    }

    fn data_len(&self) -> u64 {
        self.end.saturating_sub(self.data())
    }

    fn is_last(&self) -> bool {
        self.kind == "next" || self.kind == "done"
    }
}

/// Walks the section chain of a v1 segment file.
pub(super) fn walk(seg: &SegFile) -> Result<Vec<Section>, EvidenceError> {
    let mut sections = Vec::new();
    let mut off = FILE_HEADER;
    loop {
        if sections.len() >= MAX_SECTIONS {
            return Err(corrupt(
                &seg.path,
                off,
                format!("more than {MAX_SECTIONS} sections"),
            ));
        }
        if off == seg.size {
            return Err(truncated(
                &seg.path,
                off,
                "segment file ends without a 'next' or 'done' section",
            ));
        }
        let d = seg.read_vec(off, DESCRIPTOR, "section descriptor")?;
        let want = le32(&d, 72);
        let got = adler32(&d[..72]);
        if want != got {
            return Err(corrupt(
                &seg.path,
                off,
                format!(
                    "section descriptor checksum mismatch (stored {want:#010x}, computed {got:#010x})"
                ),
            ));
        }
        let name_len = d[..16].iter().position(|&b| b == 0).unwrap_or(16);
        let kind: String = d[..name_len].iter().map(|&b| char::from(b)).collect();
        let next = le64(&d, 16);
        let size = le64(&d, 24);
        let mut section = Section {
            kind,
            offset: off,
            end: next,
        };
        if section.is_last() {
            section.end = off + DESCRIPTOR;
            sections.push(section);
            return Ok(sections);
        }
        if next <= off || next - off < DESCRIPTOR {
            return Err(corrupt(
                &seg.path,
                off,
                format!(
                    "'{}' section's next-section offset {next} does not move past the section (a loop or a corrupt chain)",
                    section.kind
                ),
            ));
        }
        if next > seg.size {
            return Err(truncated(
                &seg.path,
                off,
                format!(
                    "'{}' section runs to offset {next}, past the end of the file ({} bytes)",
                    section.kind, seg.size
                ),
            ));
        }
        if size != 0 && size != next - off {
            return Err(corrupt(
                &seg.path,
                off,
                format!(
                    "'{}' section's size {size} disagrees with its next-section offset {next}",
                    section.kind
                ),
            ));
        }
        sections.push(section);
        off = next;
    }
}

/// Volume (or disk/data) section values.
#[derive(Debug, Clone)]
struct Volume {
    media: Media,
    smart: bool,
    media_type: Option<u8>,
    media_flags: Option<u8>,
    compression_level: Option<u8>,
    error_granularity: Option<u32>,
    guid: Option<[u8; 16]>,
}

/// Reads a volume, disk or data section. `Ok(None)` when the checksum does
/// not match and `strict` is off.
fn read_volume(
    b: &mut Builder,
    si: usize,
    s: &Section,
    strict: bool,
) -> Result<Option<Volume>, EvidenceError> {
    let seg = &b.segs[si];
    let len = s.data_len();
    let (size, smart) = if len >= VOLUME_E01 as u64 {
        (VOLUME_E01, false)
    } else if len >= VOLUME_S01 as u64 {
        (VOLUME_S01, true)
    } else {
        return Err(corrupt(
            &seg.path,
            s.offset,
            format!(
                "'{}' section holds {len} bytes, too few for volume data",
                s.kind
            ),
        ));
    };
    let d = seg.read_vec(s.data(), size as u64, "volume data")?;
    let want = le32(&d, size - 4);
    let got = adler32(&d[..size - 4]);
    if want != got {
        let msg = format!(
            "'{}' section data checksum mismatch (stored {want:#010x}, computed {got:#010x})",
            s.kind
        );
        if strict {
            return Err(corrupt(&seg.path, s.data(), msg));
        }
        let path = seg.path.display().to_string();
        b.warn(format!(
            "{path} at offset {}: {msg}; section ignored",
            s.data()
        ));
        return Ok(None);
    }
    let seg = &b.segs[si];
    let v = if smart {
        Volume {
            media: Media::new(
                seg,
                s.data(),
                u64::from(le32(&d, 8)),
                u64::from(le32(&d, 12)),
                u64::from(le32(&d, 16)),
            )?,
            smart: true,
            media_type: None,
            media_flags: None,
            compression_level: None,
            error_granularity: None,
            guid: None,
        }
    } else {
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&d[64..80]);
        Volume {
            media: Media::new(
                seg,
                s.data(),
                u64::from(le32(&d, 8)),
                u64::from(le32(&d, 12)),
                le64(&d, 16),
            )?,
            smart: false,
            media_type: Some(d[0]),
            media_flags: Some(d[36]),
            compression_level: Some(d[52]),
            error_granularity: Some(le32(&d, 56)),
            guid: Some(guid),
        }
    };
    Ok(Some(v))
}

fn apply_volume(b: &mut Builder, v: &Volume) {
    b.media = Some(v.media);
    b.smart = v.smart;
    let f = &mut b.facts;
    f.insert(
        "ewf_format".into(),
        if v.smart { "ewf-s01" } else { "ewf-e01" }.into(),
    );
    f.insert("compression".into(), "deflate".into());
    if let Some(t) = v.media_type {
        let name = match t {
            0x00 => "removable".to_string(),
            0x01 => "fixed".to_string(),
            0x03 => "optical".to_string(),
            0x0e => "logical".to_string(),
            0x10 => "memory".to_string(),
            other => format!("unknown ({other:#04x})"),
        };
        f.insert("media_type".into(), name);
    }
    if let Some(flags) = v.media_flags {
        f.insert(
            "is_physical".into(),
            if flags & 0x02 != 0 { "yes" } else { "no" }.into(),
        );
        if flags & 0x04 != 0 {
            f.insert("write_blocker".into(), "fastbloc".into());
        } else if flags & 0x08 != 0 {
            f.insert("write_blocker".into(), "tableau".into());
        }
    }
    if let Some(level) = v.compression_level {
        let name = match level {
            0 => "none",
            1 => "fast",
            2 => "best",
            _ => "unknown",
        };
        f.insert("compression_level".into(), name.into());
    }
    if let Some(g) = v.error_granularity.filter(|&g| g != 0) {
        f.insert("error_granularity".into(), g.to_string());
    }
    if b.set_identifier.is_none() {
        b.set_identifier = v.guid;
    }
}

/// A parsed table or table2 section.
#[derive(Debug)]
struct Table {
    base: u64,
    entries: Vec<u32>,
    /// File offset of the first entry.
    entries_offset: u64,
    /// The entries match their checksum (always true for SMART tables,
    /// which have none).
    entries_ok: bool,
}

fn read_table(seg: &SegFile, s: &Section, smart: bool) -> Result<Table, EvidenceError> {
    let len = s.data_len();
    if len < 24 {
        return Err(corrupt(
            &seg.path,
            s.offset,
            format!(
                "'{}' section holds {len} bytes, too few for a table header",
                s.kind
            ),
        ));
    }
    let h = seg.read_vec(s.data(), 24, "table header")?;
    let want = le32(&h, 20);
    let got = adler32(&h[..20]);
    if want != got {
        return Err(corrupt(
            &seg.path,
            s.data(),
            format!(
                "'{}' header checksum mismatch (stored {want:#010x}, computed {got:#010x})",
                s.kind
            ),
        ));
    }
    let n = u64::from(le32(&h, 0));
    let base = le64(&h, 8);
    let footer = if smart { 0 } else { 4 };
    if n > MAX_TABLE_ENTRIES || 24 + n * 4 + footer > len {
        return Err(corrupt(
            &seg.path,
            s.data(),
            format!(
                "'{}' lists {n} entries, more than its {len}-byte section can hold",
                s.kind
            ),
        ));
    }
    if base > i64::MAX as u64 {
        return Err(corrupt(
            &seg.path,
            s.data() + 8,
            format!("'{}' base offset {base} is out of range", s.kind),
        ));
    }
    let entries_offset = s.data() + 24;
    let raw = seg.read_vec(entries_offset, n * 4 + footer, "table entries")?;
    let body = &raw[..(n * 4) as usize];
    let entries_ok = smart || adler32(body) == le32(&raw, body.len());
    let entries = body.chunks_exact(4).map(|c| le32(c, 0)).collect();
    Ok(Table {
        base,
        entries,
        entries_offset,
        entries_ok,
    })
}

/// Adds the chunks of `t` (in segment `si`) to the index.
fn add_table(b: &mut Builder, si: usize, sections: &[Section], t: &Table) {
    let seg_size = b.segs[si].size;
    let max_stored = b.media.map_or(0, |m| m.max_stored());
    let n = t.entries.len();
    let mut overflow = false;
    for i in 0..n {
        let entry_offset = t.entries_offset + 4 * i as u64;
        if !t.entries_ok {
            b.index.push(
                si as u32,
                entry_offset,
                4,
                Loc::Corrupt(Reason::EntriesChecksum),
            );
            continue;
        }
        let raw = t.entries[i];
        let (compressed, cur) = if overflow {
            (false, raw)
        } else {
            (raw >> 31 == 1, raw & 0x7fff_ffff)
        };
        let loc = (|| {
            let Some(offset) = t.base.checked_add(u64::from(cur)) else {
                return Loc::Corrupt(Reason::OffsetOverflow);
            };
            let size = if i + 1 < n {
                let next_raw = t.entries[i + 1];
                let next = if overflow {
                    next_raw
                } else {
                    next_raw & 0x7fff_ffff
                };
                if next >= cur {
                    u64::from(next - cur)
                } else if !overflow && next_raw >= cur {
                    // EnCase before 6.7 let offsets in segment files over
                    // 2 GiB run into the compression bit.
                    u64::from(next_raw - cur)
                } else {
                    return Loc::Corrupt(Reason::OutOfOrder);
                }
            } else {
                // The last chunk runs to the end of the section holding it
                // (the sectors section, or the table itself in SMART and
                // EnCase 1 files).
                match sections
                    .iter()
                    .find(|s| !s.is_last() && s.data() <= offset && offset < s.end)
                {
                    Some(s) => s.end - offset,
                    None => return Loc::Corrupt(Reason::OutsideSections),
                }
            };
            if size == 0 {
                return Loc::Corrupt(Reason::ZeroSize);
            }
            if size > max_stored {
                return Loc::Corrupt(Reason::TooLarge);
            }
            if offset.checked_add(size).is_none_or(|e| e > seg_size) {
                return Loc::Corrupt(Reason::PastEnd);
            }
            Loc::Data {
                offset,
                size: size as u32,
                compressed,
                checksum: !compressed,
            }
        })();
        if let Loc::Data { size, .. } = loc
            && !overflow
            && u64::from(cur) + u64::from(size) > i32::MAX as u64
        {
            overflow = true;
        }
        b.index.push(si as u32, entry_offset, 4, loc);
    }
}

/// Inflates a header, header2 or xheader section; `None` (with a warning)
/// when it cannot be read.
fn read_header_section(b: &mut Builder, si: usize, s: &Section) -> Option<Vec<u8>> {
    let seg = &b.segs[si];
    let len = s.data_len();
    let res = if len > MAX_META_COMPRESSED {
        Err(format!("{len} bytes is too large for a header"))
    } else {
        seg.read_vec(s.data(), len, "header data")
            .map_err(|e| e.to_string())
            .and_then(|d| inflate_meta(&d, MAX_META_INFLATED))
    };
    match res {
        Ok(v) => Some(v),
        Err(e) => {
            let path = seg.path.display().to_string();
            b.warn(format!(
                "{path} at offset {}: unreadable '{}' section: {e}",
                s.offset, s.kind
            ));
            None
        }
    }
}

fn read_hash(b: &mut Builder, si: usize, s: &Section) -> Result<(), EvidenceError> {
    let seg = &b.segs[si];
    let (need, sum_at) = if s.kind == "digest" {
        (80, 76)
    } else {
        (36, 32)
    };
    if s.data_len() < need {
        let path = seg.path.display().to_string();
        b.warn(format!(
            "{path} at offset {}: '{}' section is too short",
            s.offset, s.kind
        ));
        return Ok(());
    }
    let d = seg.read_vec(s.data(), need, "hash data")?;
    let want = le32(&d, sum_at as usize);
    let got = adler32(&d[..sum_at as usize]);
    let source = format!("'{}' section of {}", s.kind, seg.path.display());
    if want != got {
        b.warn(format!(
            "{source} at offset {}: checksum mismatch (stored {want:#010x}, computed {got:#010x}); stored hash ignored",
            s.data()
        ));
        return Ok(());
    }
    b.set_md5(&d[..16], &source);
    if s.kind == "digest" {
        b.set_sha1(&d[16..36], &source);
    }
    Ok(())
}

fn read_error2(b: &mut Builder, si: usize, s: &Section) -> Result<(), EvidenceError> {
    let seg = &b.segs[si];
    let path = seg.path.display().to_string();
    let len = s.data_len();
    if len < 520 {
        b.warn(format!(
            "{path} at offset {}: 'error2' section is too short",
            s.offset
        ));
        return Ok(());
    }
    let h = seg.read_vec(s.data(), 520, "error2 header")?;
    let want = le32(&h, 516);
    let got = adler32(&h[..516]);
    if want != got {
        b.warn(format!(
            "{path} at offset {}: 'error2' header checksum mismatch; acquisition errors unknown",
            s.data()
        ));
        return Ok(());
    }
    let n = u64::from(le32(&h, 0));
    if 520 + n * 8 + 4 > len {
        b.warn(format!(
            "{path} at offset {}: 'error2' lists {n} entries, more than the section holds; acquisition errors unknown",
            s.data()
        ));
        return Ok(());
    }
    let e = seg.read_vec(s.data() + 520, n * 8 + 4, "error2 entries")?;
    let body = &e[..(n * 8) as usize];
    if adler32(body) != le32(&e, body.len()) {
        b.warn(format!(
            "{path} at offset {}: 'error2' entries checksum mismatch; acquisition errors unknown",
            s.data() + 520
        ));
        return Ok(());
    }
    for c in body.chunks_exact(8) {
        b.acquisition_errors.push(AcquisitionError {
            first_sector: u64::from(le32(c, 0)),
            sector_count: u64::from(le32(c, 4)),
        });
    }
    Ok(())
}

/// Parses v1 segment file `si`, which must carry segment number `number`.
pub(super) fn parse_segment(b: &mut Builder, si: usize, number: u32) -> Result<End, EvidenceError> {
    let seg = &b.segs[si];
    let head = seg.read_vec(0, FILE_HEADER, "file header")?;
    if !head.starts_with(V1_SIGNATURE) {
        return Err(EvidenceError::UnknownFormat {
            path: seg.path.clone(),
            reason: "not an EWF version 1 segment, unlike the first segment of the set".into(),
        });
    }
    let found = u32::from(le16(&head, 9));
    if found != number {
        return Err(wrong_segment_number(seg, 9, found, number));
    }
    let sections = walk(seg)?;
    let mut failed_table: Option<(EvidenceError, Option<Table>)> = None;
    for (k, s) in sections.iter().enumerate() {
        match s.kind.as_str() {
            "header" | "header2" | "xheader" => {
                let (done, style) = match s.kind.as_str() {
                    "header" => (!b.header.is_empty(), DateStyle::Fields),
                    "header2" => (!b.header2.is_empty(), DateStyle::Epoch),
                    _ => (!b.xheader.is_empty(), DateStyle::Epoch),
                };
                if done {
                    continue;
                }
                let Some(bytes) = read_header_section(b, si, s) else {
                    continue;
                };
                match s.kind.as_str() {
                    "header" => b.header = meta::v1_values(&meta::decode_narrow(&bytes), style),
                    "header2" => b.header2 = meta::v1_values(&meta::decode_utf16(&bytes), style),
                    _ => {
                        b.xheader = meta::xml_values(&meta::decode_narrow(&bytes));
                    }
                }
            }
            "volume" | "disk" => {
                if b.media.is_none()
                    && let Some(v) = read_volume(b, si, s, true)?
                {
                    apply_volume(b, &v);
                }
            }
            "data" => match b.media {
                None => {
                    if let Some(v) = read_volume(b, si, s, true)? {
                        apply_volume(b, &v);
                    }
                }
                Some(m) => {
                    // Logicube products write data sections with a wrong
                    // checksum: only compare intact ones.
                    let v = match read_volume(b, si, s, false) {
                        Ok(v) => v,
                        Err(e) => {
                            b.warn(format!("{e}; data section ignored"));
                            None
                        }
                    };
                    if let Some(v) = v {
                        let guid_differs = matches!(
                            (v.guid, b.set_identifier),
                            (Some(a), Some(g)) if a != g && a != [0; 16] && g != [0; 16]
                        );
                        if v.media != m || guid_differs {
                            return Err(corrupt(
                                &b.segs[si].path,
                                s.offset,
                                "data section describes other media than the first segment's volume section (segments of different images?)",
                            ));
                        }
                    }
                }
            },
            "table" | "table2" => {
                if b.media.is_none() {
                    return Err(corrupt(
                        &b.segs[si].path,
                        s.offset,
                        format!("'{}' section comes before any volume section", s.kind),
                    ));
                }
                let smart = b.smart;
                let followed_by_table2 =
                    s.kind == "table" && sections.get(k + 1).is_some_and(|n| n.kind == "table2");
                if s.kind == "table2" && failed_table.is_none() {
                    // Mirror of an intact table: nothing to add.
                    continue;
                }
                let parsed = read_table(&b.segs[si], s, smart);
                let intact = matches!(&parsed, Ok(t) if t.entries_ok);
                if intact {
                    if let Some((e, _)) = failed_table.take() {
                        b.warn(format!("{e}; used the table2 copy"));
                    }
                    if let Ok(t) = parsed {
                        add_table(b, si, &sections, &t);
                    }
                    continue;
                }
                let (err, header_ok) = match parsed {
                    Ok(t) => (
                        corrupt(
                            &b.segs[si].path,
                            t.entries_offset,
                            format!("'{}' entries checksum mismatch", s.kind),
                        ),
                        Some(t),
                    ),
                    Err(e) => (e, None),
                };
                if s.kind == "table" && followed_by_table2 {
                    failed_table = Some((err, header_ok));
                    continue;
                }
                // No intact copy: keep the first error; if a header could be
                // read, its chunks are known but unusable.
                let (first_err, first_table) = match failed_table.take() {
                    Some((e, t)) => (e, t.or(header_ok)),
                    None => (err, header_ok),
                };
                match first_table {
                    Some(t) => {
                        b.warn(format!("{first_err}; its chunks cannot be read"));
                        add_table(b, si, &sections, &t);
                    }
                    None => return Err(first_err),
                }
            }
            "hash" | "digest" => read_hash(b, si, s)?,
            "error2" => read_error2(b, si, s)?,
            "xhash" => {
                if let Some(bytes) = read_header_section(b, si, s) {
                    let x = meta::xml_values(&meta::decode_narrow(&bytes));
                    let source = format!("'xhash' section of {}", b.segs[si].path.display());
                    for (tag, v) in x {
                        let Ok(bytes) = hex::decode(&v) else { continue };
                        match (tag.to_ascii_lowercase().as_str(), bytes.len()) {
                            ("md5", 16) => b.set_md5(&bytes, &source),
                            ("sha1", 20) => b.set_sha1(&bytes, &source),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let last = sections.last().map_or("", |s| s.kind.as_str());
    Ok(if last == "done" { End::Done } else { End::Next })
}
