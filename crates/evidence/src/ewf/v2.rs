//! EWF version 2 segment files (Ex01): a 32-byte file header, then
//! sections whose 64-byte descriptors come at their ends and point back to
//! the previous section, so a segment is read from its end backwards.

use super::meta;
use super::{
    Builder, End, Loc, MAX_META_COMPRESSED, MAX_META_INFLATED, MAX_SECTIONS, MAX_TABLE_ENTRIES,
    Media, Reason, SegFile, V2_SIGNATURE, adler32, corrupt, inflate_meta, le16, le32, le64,
    truncated, wrong_segment_number,
};
use crate::{AcquisitionError, EvidenceError};

const FILE_HEADER: u64 = 32;
const DESCRIPTOR: u64 = 64;

const DEVICE_INFORMATION: u32 = 0x01;
const CASE_DATA: u32 = 0x02;
const SECTOR_TABLE: u32 = 0x04;
const ERROR_TABLE: u32 = 0x05;
const MD5_HASH: u32 = 0x08;
const SHA1_HASH: u32 = 0x09;
const ENCRYPTION_KEYS: u32 = 0x0b;
const NEXT: u32 = 0x0d;
const DONE: u32 = 0x0f;

const DATA_ENCRYPTED: u32 = 0x02;

const CHUNK_COMPRESSED: u32 = 0x01;
const CHUNK_CHECKSUM: u32 = 0x02;
const CHUNK_PATTERN_FILL: u32 = 0x04;

/// One section of a v2 segment file.
#[derive(Debug, Clone)]
struct Section {
    kind: u32,
    flags: u32,
    /// Offset of the section's data (its start).
    start: u64,
    data_size: u64,
    /// Offset of the section descriptor (the section's end).
    descriptor: u64,
}

fn walk(seg: &SegFile) -> Result<Vec<Section>, EvidenceError> {
    if seg.size < FILE_HEADER + DESCRIPTOR {
        return Err(truncated(
            &seg.path,
            seg.size,
            "segment file is too short to hold a file header and a section",
        ));
    }
    let mut sections = Vec::new();
    let mut off = seg.size - DESCRIPTOR;
    loop {
        if sections.len() >= MAX_SECTIONS {
            return Err(corrupt(
                &seg.path,
                off,
                format!("more than {MAX_SECTIONS} sections"),
            ));
        }
        let d = seg.read_vec(off, DESCRIPTOR, "section descriptor")?;
        let want = le32(&d, 60);
        let got = adler32(&d[..60]);
        if want != got {
            let hint = if sections.is_empty() {
                " (the segment file should end with a section descriptor: truncated?)"
            } else {
                ""
            };
            return Err(corrupt(
                &seg.path,
                off,
                format!(
                    "section descriptor checksum mismatch (stored {want:#010x}, computed {got:#010x}){hint}"
                ),
            ));
        }
        let kind = le32(&d, 0);
        let flags = le32(&d, 4);
        let previous = le64(&d, 8);
        let data_size = le64(&d, 16);
        let descriptor_size = le32(&d, 24);
        let padding = u64::from(le32(&d, 28));
        if u64::from(descriptor_size) != DESCRIPTOR {
            return Err(corrupt(
                &seg.path,
                off,
                format!("section descriptor size is {descriptor_size}, expected {DESCRIPTOR}"),
            ));
        }
        let start = if previous == 0 {
            FILE_HEADER
        } else {
            if previous < FILE_HEADER || previous >= off || off - previous < DESCRIPTOR {
                return Err(corrupt(
                    &seg.path,
                    off,
                    format!(
                        "previous-section offset {previous} does not point back before this section (a loop or a corrupt chain)"
                    ),
                ));
            }
            previous + DESCRIPTOR
        };
        if data_size > off - start || padding > data_size {
            return Err(corrupt(
                &seg.path,
                off,
                format!(
                    "section data size {data_size} (padding {padding}) does not fit the {} bytes before the descriptor",
                    off - start
                ),
            ));
        }
        sections.push(Section {
            kind,
            flags,
            start,
            data_size,
            descriptor: off,
        });
        if previous == 0 {
            break;
        }
        off = previous;
    }
    sections.reverse();
    Ok(sections)
}

/// Reads a serialized-object section (device information, case data): a
/// UTF-16 string, compressed with the segment's compression method.
fn read_serialized(seg: &SegFile, s: &Section, compression: u16) -> Result<String, String> {
    if s.data_size > MAX_META_COMPRESSED {
        return Err(format!("{} bytes is too large", s.data_size));
    }
    let data = seg
        .read_vec(s.start, s.data_size, "section data")
        .map_err(|e| e.to_string())?;
    let text = match compression {
        0 if data.starts_with(&[0xff, 0xfe]) || data.starts_with(&[0xfe, 0xff]) => data,
        0 | 1 => inflate_meta(&data, MAX_META_INFLATED)?,
        other => return Err(format!("compression method {other} is not supported")),
    };
    Ok(meta::decode_utf16(&text))
}

/// Builds the media geometry once device information and case data give it.
fn media_from_raw(b: &mut Builder, seg_index: usize, offset: u64) -> Result<(), EvidenceError> {
    if b.media.is_some() {
        return Ok(());
    }
    let seg = &b.segs[seg_index];
    let num = |k: &str| b.raw.get(k).and_then(|v| v.trim().parse::<u64>().ok());
    let Some(sectors) = num("ts") else {
        return Err(corrupt(
            &seg.path,
            offset,
            "no readable device information gives the number of sectors before the first sector table",
        ));
    };
    let bps = num("bp");
    let spc = num("sb");
    let media = Media::new(seg, offset, spc.unwrap_or(64), bps.unwrap_or(512), sectors)?;
    if bps.is_none() {
        b.warn("device information gives no bytes per sector; assumed 512".into());
    }
    if spc.is_none() {
        b.warn("case data gives no sectors per chunk; assumed 64".into());
    }
    b.media = Some(media);
    Ok(())
}

fn read_sector_table(b: &mut Builder, si: usize, s: &Section) -> Result<(), EvidenceError> {
    media_from_raw(b, si, s.descriptor)?;
    let max_stored = b.media.map_or(0, |m| m.max_stored());
    let seg = &b.segs[si];
    if s.data_size < 48 {
        return Err(corrupt(
            &seg.path,
            s.start,
            format!(
                "sector table section holds {} bytes, too few for a table",
                s.data_size
            ),
        ));
    }
    let h = seg.read_vec(s.start, 32, "sector table header")?;
    let want = le32(&h, 16);
    let got = adler32(&h[..16]);
    if want != got {
        return Err(corrupt(
            &seg.path,
            s.start,
            format!(
                "sector table header checksum mismatch (stored {want:#010x}, computed {got:#010x})"
            ),
        ));
    }
    let first = le64(&h, 0);
    let n = u64::from(le32(&h, 8));
    if n > MAX_TABLE_ENTRIES || 32 + n * 16 + 16 > s.data_size {
        return Err(corrupt(
            &seg.path,
            s.start,
            format!(
                "sector table lists {n} entries, more than its {}-byte section can hold",
                s.data_size
            ),
        ));
    }
    if first != b.index.len() {
        return Err(corrupt(
            &seg.path,
            s.start,
            format!(
                "sector table starts at chunk {first}, but {} chunks precede it (tables missing or out of order)",
                b.index.len()
            ),
        ));
    }
    let raw = seg.read_vec(s.start + 32, n * 16 + 4, "sector table entries")?;
    let body = &raw[..(n * 16) as usize];
    let entries_ok = adler32(body) == le32(&raw, body.len());
    let seg_size = seg.size;
    if !entries_ok {
        let path = seg.path.display().to_string();
        b.warn(format!(
            "{path} at offset {}: sector table entries checksum mismatch; its {n} chunks cannot be read",
            s.start + 32
        ));
    }
    for (i, e) in body.chunks_exact(16).enumerate() {
        let entry_offset = s.start + 32 + 16 * i as u64;
        let offset = le64(e, 0);
        let size = u64::from(le32(e, 8));
        let flags = le32(e, 12);
        let loc = if !entries_ok {
            Loc::Corrupt(Reason::EntriesChecksum)
        } else if flags & CHUNK_COMPRESSED != 0 && flags & CHUNK_PATTERN_FILL != 0 {
            Loc::Pattern(offset)
        } else if size == 0 {
            Loc::Corrupt(Reason::ZeroSize)
        } else if size > max_stored {
            Loc::Corrupt(Reason::TooLarge)
        } else if offset.checked_add(size).is_none_or(|end| end > seg_size) {
            Loc::Corrupt(Reason::PastEnd)
        } else {
            let compressed = flags & CHUNK_COMPRESSED != 0;
            Loc::Data {
                offset,
                size: size as u32,
                compressed,
                checksum: !compressed && flags & CHUNK_CHECKSUM != 0,
            }
        };
        b.index.push(si as u32, entry_offset, 16, loc);
    }
    Ok(())
}

fn read_error_table(b: &mut Builder, si: usize, s: &Section) -> Result<(), EvidenceError> {
    let seg = &b.segs[si];
    let path = seg.path.display().to_string();
    if s.data_size < 36 {
        b.warn(format!(
            "{path} at offset {}: error table is too short",
            s.start
        ));
        return Ok(());
    }
    let h = seg.read_vec(s.start, 32, "error table header")?;
    if adler32(&h[..16]) != le32(&h, 16) {
        b.warn(format!(
            "{path} at offset {}: error table header checksum mismatch; acquisition errors unknown",
            s.start
        ));
        return Ok(());
    }
    let n = u64::from(le32(&h, 0));
    if 32 + n * 16 + 4 > s.data_size {
        b.warn(format!(
            "{path} at offset {}: error table lists {n} entries, more than the section holds",
            s.start
        ));
        return Ok(());
    }
    let raw = seg.read_vec(s.start + 32, n * 16 + 4, "error table entries")?;
    let body = &raw[..(n * 16) as usize];
    if adler32(body) != le32(&raw, body.len()) {
        b.warn(format!(
            "{path} at offset {}: error table entries checksum mismatch; acquisition errors unknown",
            s.start + 32
        ));
        return Ok(());
    }
    for e in body.chunks_exact(16) {
        b.acquisition_errors.push(AcquisitionError {
            first_sector: le64(e, 0),
            sector_count: u64::from(le32(e, 8)),
        });
    }
    Ok(())
}

fn read_hash(b: &mut Builder, si: usize, s: &Section, len: usize) -> Result<(), EvidenceError> {
    let seg = &b.segs[si];
    let source = format!(
        "hash section of {} at offset {}",
        seg.path.display(),
        s.start
    );
    if s.data_size < len as u64 + 4 {
        b.warn(format!("{source} is too short"));
        return Ok(());
    }
    let d = seg.read_vec(s.start, len as u64 + 4, "hash data")?;
    let want = le32(&d, len);
    let got = adler32(&d[..len]);
    if want != got {
        b.warn(format!(
            "{source}: checksum mismatch (stored {want:#010x}, computed {got:#010x}); stored hash ignored"
        ));
        return Ok(());
    }
    if len == 16 {
        b.set_md5(&d[..16], &source);
    } else {
        b.set_sha1(&d[..20], &source);
    }
    Ok(())
}

/// Parses v2 segment file `si`, which must carry segment number `number`.
pub(super) fn parse_segment(b: &mut Builder, si: usize, number: u32) -> Result<End, EvidenceError> {
    let seg = &b.segs[si];
    let head = seg.read_vec(0, FILE_HEADER, "file header")?;
    if !head.starts_with(V2_SIGNATURE) {
        return Err(EvidenceError::UnknownFormat {
            path: seg.path.clone(),
            reason: "not an EWF version 2 segment, unlike the first segment of the set".into(),
        });
    }
    let (major, minor) = (head[8], head[9]);
    if major != 2 {
        return Err(corrupt(
            &seg.path,
            8,
            format!("EWF2 format version {major}.{minor} is not 2.x"),
        ));
    }
    let compression = le16(&head, 10);
    if compression == 2 {
        return Err(EvidenceError::Unsupported {
            path: seg.path.clone(),
            format: "EWF2 (Ex01) with bzip2 compression",
            hint: "re-export the image with zlib (deflate) compression or to raw (e.g. with EnCase or ewfexport)",
        });
    }
    if compression > 2 {
        return Err(corrupt(
            &seg.path,
            10,
            format!("unknown compression method {compression}"),
        ));
    }
    let found = le32(&head, 12);
    if found != number {
        return Err(wrong_segment_number(seg, 12, found, number));
    }
    let mut guid = [0u8; 16];
    guid.copy_from_slice(&head[16..32]);
    if si == 0 {
        b.set_identifier = Some(guid);
        b.facts.insert("ewf_format".into(), "ewf2-ex01".into());
        b.facts.insert(
            "compression".into(),
            if compression == 0 { "none" } else { "deflate" }.into(),
        );
        b.facts
            .insert("format_version".into(), format!("{major}.{minor}"));
    } else if b.set_identifier.is_some_and(|g| g != guid) {
        return Err(corrupt(
            &seg.path,
            16,
            "segment set identifier differs from the first segment's (segments of different images?)",
        ));
    }
    let sections = walk(seg)?;
    for s in &sections {
        if s.flags & DATA_ENCRYPTED != 0 || s.kind == ENCRYPTION_KEYS {
            return Err(EvidenceError::Unsupported {
                path: b.segs[si].path.clone(),
                format: "encrypted EWF2 (Ex01)",
                hint: "decrypt the evidence in EnCase and export it unencrypted or to raw",
            });
        }
        match s.kind {
            DEVICE_INFORMATION | CASE_DATA => {
                // Every segment repeats both sections: use the first
                // readable copy of each.
                let seen = if s.kind == DEVICE_INFORMATION {
                    "\0device information"
                } else {
                    "\0case data"
                };
                if b.raw.contains_key(seen) {
                    continue;
                }
                match read_serialized(&b.segs[si], s, compression) {
                    Ok(text) => {
                        let (values, raw) = if s.kind == DEVICE_INFORMATION {
                            meta::v2_device_information(&text)
                        } else {
                            meta::v2_case_data(&text)
                        };
                        for (k, v) in values {
                            if matches!(k.as_str(), "media_type" | "is_physical") {
                                b.facts.entry(k).or_insert(v);
                            } else {
                                b.header2.entry(k).or_insert(v);
                            }
                        }
                        for (k, v) in raw {
                            b.raw.entry(k).or_insert(v);
                        }
                        b.raw.insert(seen.into(), String::new());
                    }
                    Err(e) => {
                        let path = b.segs[si].path.display().to_string();
                        let what = if s.kind == DEVICE_INFORMATION {
                            "device information"
                        } else {
                            "case data"
                        };
                        b.warn(format!(
                            "{path} at offset {}: unreadable {what}: {e}",
                            s.start
                        ));
                    }
                }
            }
            SECTOR_TABLE => read_sector_table(b, si, s)?,
            ERROR_TABLE => read_error_table(b, si, s)?,
            MD5_HASH => read_hash(b, si, s, 16)?,
            SHA1_HASH => read_hash(b, si, s, 20)?,
            _ => {}
        }
    }
    match sections.last().map(|s| s.kind) {
        Some(DONE) => Ok(End::Done),
        Some(NEXT) => Ok(End::Next),
        _ => Err(truncated(
            &b.segs[si].path,
            b.segs[si].size,
            "segment file does not end with a 'next' or 'done' section",
        )),
    }
    .and_then(|end| {
        if b.raw.contains_key("ts") {
            media_from_raw(b, si, 0)?;
        }
        Ok(end)
    })
}
