//! Structure validators: one parser per family. Each is given the image
//! offset of a header candidate and parses the structure to the file's true
//! end, answering:
//!
//! * [`Verdict::Valid`]: the structure parsed to its end and is sound;
//! * [`Verdict::Broken`]: a real header whose structure breaks (fragmented,
//!   corrupt, truncated by the image end); reported with `validated=false`
//!   and the reason;
//! * [`Verdict::Reject`]: not a file of this type (a false hit).
//!
//! Validators read through [`Src`] only (absolute offsets), never look past
//! the type's maximum size, use checked arithmetic on every length read from
//! the image, and bound their loops by the structure they walk.

use super::kinds::{Fam, Kind};
use super::src::Src;
use crate::CarveError;

pub(crate) mod archive;
pub(crate) mod exec;
pub(crate) mod gzip;
pub(crate) mod images;
pub(crate) mod jpeg;
pub(crate) mod media;
pub(crate) mod ole;
pub(crate) mod pdf;
pub(crate) mod sqlite;
pub(crate) mod text;
pub(crate) mod tiff;
pub(crate) mod zip;

/// A file found at a candidate offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub len: u64,
    pub kind: Kind,
    pub note: String,
}

/// What a validator decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Valid(Found),
    Broken(Found),
    Reject(&'static str),
}

impl Verdict {
    pub(crate) fn valid(kind: Kind, len: u64) -> Self {
        Verdict::Valid(Found {
            len,
            kind,
            note: String::new(),
        })
    }
    pub(crate) fn valid_note(kind: Kind, len: u64, note: impl Into<String>) -> Self {
        Verdict::Valid(Found {
            len,
            kind,
            note: note.into(),
        })
    }
    pub(crate) fn broken(kind: Kind, len: u64, note: impl Into<String>) -> Self {
        if len == 0 {
            return Verdict::Reject("empty");
        }
        Verdict::Broken(Found {
            len,
            kind,
            note: note.into(),
        })
    }
    /// Length of the carving, if any.
    #[cfg(test)]
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Verdict::Valid(f) | Verdict::Broken(f) => Some(f.len),
            Verdict::Reject(_) => None,
        }
    }
}

/// Reusable buffers of one validating thread.
#[derive(Default)]
pub(crate) struct Scratch {
    pub buf: Vec<u8>,
    pub jpeg: jpeg::JpegScratch,
    pub zip: zip::ZipMemo,
    /// Recent searches: (needle, from, to, first match).
    finds: Vec<(&'static [u8], u64, u64, Option<u64>)>,
}

impl Cx<'_, '_> {
    /// [`Src::find`], remembering recent answers: a later search for the
    /// same needle from further on reuses them when they settle it (a
    /// match at or after the new start was the first one after the old).
    pub(crate) fn find(
        &mut self,
        needle: &'static [u8],
        from: u64,
        to: u64,
    ) -> Result<Option<u64>, CarveError> {
        for &(n, f0, t0, r) in &self.scratch.finds {
            if n != needle || f0 > from {
                continue;
            }
            match r {
                Some(q) if q >= from && q < to && q < t0 => return Ok(Some(q)),
                None if to <= t0 => return Ok(None),
                _ => {}
            }
        }
        let r = self.src.find(needle, from, to)?;
        let f = &mut self.scratch.finds;
        if f.len() >= 8 {
            f.remove(0);
        }
        f.push((needle, from, to, r));
        Ok(r)
    }
}

/// What a validator works with.
pub(crate) struct Cx<'a, 's> {
    pub src: &'s Src<'a>,
    /// Largest file accepted (bytes).
    pub max: u64,
    pub scratch: &'s mut Scratch,
}

impl Cx<'_, '_> {
    /// Absolute end limit of a file starting at `start`.
    pub(crate) fn limit(&self, start: u64) -> u64 {
        start.saturating_add(self.max).min(self.src.size())
    }

    /// The verdict for a structure whose declared end `end` passes the
    /// image end or the maximum size.
    pub(crate) fn too_long(&self, kind: Kind, start: u64, end: u64, what: &str) -> Verdict {
        if end.saturating_sub(start) > self.max {
            return Verdict::Reject("larger than the maximum size");
        }
        let have = self.src.size().saturating_sub(start);
        Verdict::broken(
            kind,
            have,
            format!(
                "truncated by the end of the image: the {what} declares {} bytes, {have} present",
                end.saturating_sub(start)
            ),
        )
    }
}

/// Runs the validator of `fam` on the candidate at `start`.
pub(crate) fn validate(fam: Fam, cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    match fam {
        Fam::Jpeg => jpeg::validate(cx, start),
        Fam::Png => images::png(cx, start),
        Fam::Gif => images::gif(cx, start),
        Fam::Bmp => images::bmp(cx, start),
        Fam::Tiff => tiff::validate(cx, start),
        Fam::Pdf => pdf::validate(cx, start),
        Fam::Zip => zip::validate(cx, start),
        Fam::Rar => archive::rar(cx, start),
        Fam::SevenZ => archive::sevenz(cx, start),
        Fam::Gzip => gzip::validate(cx, start),
        Fam::Sqlite => sqlite::validate(cx, start),
        Fam::Pe => exec::pe(cx, start),
        Fam::Elf => exec::elf(cx, start),
        Fam::Riff => media::riff(cx, start),
        Fam::Isobmff => media::isobmff(cx, start),
        Fam::Evtx => media::evtx(cx, start),
        Fam::Ole => ole::validate(cx, start),
        Fam::Html => text::html(cx, start),
    }
}

/// CRC-32 (ISO-HDLC, as zip/png/gzip) of image bytes `[start, end)`.
pub(crate) fn crc32_range(src: &Src, start: u64, end: u64) -> Result<Option<u32>, CarveError> {
    if end > src.size() || start > end {
        return Ok(None);
    }
    let mut h = crc32fast::Hasher::new();
    src.each_chunk(start, end, 1 << 20, |_, c| {
        h.update(c);
        None::<()>
    })?;
    Ok(Some(h.finalize()))
}

/// Whether every byte is printable ASCII (chunk / box identifiers).
pub(crate) fn is_fourcc(b: &[u8]) -> bool {
    b.iter().all(|&c| (0x20..0x7F).contains(&c))
}
