//! Random access to image bytes for the validators.
//!
//! Every read is addressed by absolute image offset. Bytes come from the
//! shard buffer when the range lies inside it, from the evidence's mapping
//! when it is memory-mapped (raw images), and from positional reads
//! otherwise. A validator therefore sees exactly the same bytes whatever the
//! shard size and margin, which keeps carving results identical across
//! shard plans.

use crate::CarveError;
use std::borrow::Cow;
use trawl_evidence::Evidence;

/// Largest single owned read (a validator asking for more is a bug, and is
/// clamped rather than allowed to exhaust memory).
const MAX_OWNED: u64 = 1 << 30;

/// Image bytes around a shard.
pub(crate) struct Src<'a> {
    ev: &'a dyn Evidence,
    base: u64,
    data: &'a [u8],
    size: u64,
}

impl<'a> Src<'a> {
    /// `data` holds the image bytes starting at `base`.
    pub(crate) fn new(ev: &'a dyn Evidence, base: u64, data: &'a [u8]) -> Self {
        Self {
            ev,
            base,
            data,
            size: ev.size(),
        }
    }

    /// Image size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// End of the shard buffer (image offset).
    pub(crate) fn data_end(&self) -> u64 {
        self.base + self.data.len() as u64
    }

    /// Bytes `[off, off + len)`, clipped to the end of the image (shorter,
    /// possibly empty, near the end). Borrowed when possible.
    pub(crate) fn view(&self, off: u64, len: u64) -> Result<Cow<'a, [u8]>, CarveError> {
        if off >= self.size {
            return Ok(Cow::Borrowed(&[]));
        }
        let end = off.saturating_add(len.min(MAX_OWNED)).min(self.size);
        let n = (end - off) as usize;
        if off >= self.base && end <= self.data_end() {
            let s = (off - self.base) as usize;
            return Ok(Cow::Borrowed(&self.data[s..s + n]));
        }
        if let Some(m) = self.ev.mapped(off, n) {
            return Ok(Cow::Borrowed(m));
        }
        let mut v = vec![0u8; n];
        self.ev.read_exact_at(off, &mut v)?;
        Ok(Cow::Owned(v))
    }

    /// Bytes `[off, off + len)` when they can be borrowed (inside the shard
    /// buffer or mapped), without reading.
    pub(crate) fn borrowed(&self, off: u64, len: u64) -> Option<&'a [u8]> {
        let end = off.checked_add(len)?;
        if end > self.size {
            return None;
        }
        if off >= self.base && end <= self.data_end() {
            let s = (off - self.base) as usize;
            return Some(&self.data[s..s + len as usize]);
        }
        self.ev.mapped(off, usize::try_from(len).ok()?)
    }

    /// Exactly `N` bytes at `off`, or `None` when they pass the image end.
    pub(crate) fn array<const N: usize>(&self, off: u64) -> Result<Option<[u8; N]>, CarveError> {
        let Some(end) = off.checked_add(N as u64) else {
            return Ok(None);
        };
        if end > self.size {
            return Ok(None);
        }
        let mut out = [0u8; N];
        if off >= self.base && end <= self.data_end() {
            let s = (off - self.base) as usize;
            out.copy_from_slice(&self.data[s..s + N]);
            return Ok(Some(out));
        }
        if let Some(m) = self.ev.mapped(off, N) {
            out.copy_from_slice(m);
            return Ok(Some(out));
        }
        self.ev.read_exact_at(off, &mut out)?;
        Ok(Some(out))
    }

    /// Calls `f(offset, chunk)` for consecutive chunks covering
    /// `[start, end)` (clipped to the image) until it returns `Some`.
    /// Chunks are borrowed when possible, otherwise read into one reused
    /// buffer of `chunk` bytes.
    pub(crate) fn each_chunk<R>(
        &self,
        start: u64,
        end: u64,
        chunk: usize,
        mut f: impl FnMut(u64, &[u8]) -> Option<R>,
    ) -> Result<Option<R>, CarveError> {
        let end = end.min(self.size);
        if start >= end {
            return Ok(None);
        }
        // Whole range borrowed?
        if start >= self.base && end <= self.data_end() {
            let s = (start - self.base) as usize;
            return Ok(f(start, &self.data[s..s + (end - start) as usize]));
        }
        if let Ok(n) = usize::try_from(end - start)
            && let Some(m) = self.ev.mapped(start, n)
        {
            return Ok(f(start, m));
        }
        let mut pos = start;
        // The part inside the shard buffer first.
        if pos >= self.base && pos < self.data_end() {
            let s = (pos - self.base) as usize;
            let piece = &self.data[s..];
            if let Some(r) = f(pos, piece) {
                return Ok(Some(r));
            }
            pos = self.data_end();
        }
        let chunk = chunk.max(4096);
        let mut buf = vec![0u8; chunk.min((end - pos) as usize)];
        while pos < end {
            let n = ((end - pos) as usize).min(buf.len());
            self.ev.read_exact_at(pos, &mut buf[..n])?;
            if let Some(r) = f(pos, &buf[..n]) {
                return Ok(Some(r));
            }
            pos += n as u64;
        }
        Ok(None)
    }

    /// First occurrence of `needle` starting in `[from, to)` (the match may
    /// run past `to`, not past the image).
    pub(crate) fn find(
        &self,
        needle: &[u8],
        from: u64,
        to: u64,
    ) -> Result<Option<u64>, CarveError> {
        if needle.is_empty() {
            return Ok(Some(from));
        }
        let k = needle.len() as u64;
        let finder = memchr::memmem::Finder::new(needle);
        let stop = to.saturating_add(k - 1).min(self.size);
        let mut carry: Vec<u8> = Vec::new();
        let mut carry_at = from;
        self.each_chunk(from, stop, 4 << 20, |off, c| {
            if !carry.is_empty() {
                // Matches straddling the previous chunk.
                let take = c.len().min(needle.len() - 1);
                let mut j = carry.clone();
                j.extend_from_slice(&c[..take]);
                if let Some(i) = finder.find(&j) {
                    let at = carry_at + i as u64;
                    if at < to {
                        return Some(at);
                    }
                }
            }
            if let Some(i) = finder.find(c) {
                let at = off + i as u64;
                return (at < to).then_some(at);
            }
            let keep = c.len().min(needle.len() - 1);
            carry.clear();
            carry.extend_from_slice(&c[c.len() - keep..]);
            carry_at = off + (c.len() - keep) as u64;
            None
        })
    }
}

/// A contiguous window `[start, start + len)` of the image that grows on
/// demand up to a limit (the type's maximum size or the image end).
pub(crate) struct Win<'a, 's> {
    src: &'s Src<'a>,
    start: u64,
    limit: u64,
    buf: Cow<'a, [u8]>,
}

impl<'a, 's> Win<'a, 's> {
    /// A window at `start` that may grow to `max` bytes.
    pub(crate) fn new(src: &'s Src<'a>, start: u64, max: u64) -> Result<Self, CarveError> {
        let limit = start.saturating_add(max).min(src.size());
        // Start with what the shard buffer holds (free), or 64 KiB.
        let first = if start >= src.base && start < src.data_end() {
            src.data_end().min(limit).saturating_sub(start)
        } else {
            (64 << 10).min(limit.saturating_sub(start))
        };
        let buf = src.view(start, first)?;
        Ok(Self {
            src,
            start,
            limit,
            buf,
        })
    }

    /// Image offset of the first byte.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// Absolute limit the window may grow to.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// The bytes currently held.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Image offset just past the bytes held.
    pub(crate) fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Makes the window hold `[start, end)`; false when `end` passes the
    /// limit (the window then holds everything up to the limit).
    pub(crate) fn ensure(&mut self, end: u64) -> Result<bool, CarveError> {
        if end <= self.end() {
            return Ok(true);
        }
        let cur = self.buf.len() as u64;
        if self.end() >= self.limit {
            return Ok(false);
        }
        let want = (end - self.start).max(cur.saturating_mul(2)).max(64 << 10);
        let new_end = self.start.saturating_add(want).min(self.limit);
        self.buf = self.src.view(self.start, new_end - self.start)?;
        Ok(end <= self.end())
    }

    /// Byte at absolute offset `off` (growing as needed), `None` past the
    /// limit.
    #[inline]
    pub(crate) fn byte(&mut self, off: u64) -> Result<Option<u8>, CarveError> {
        if off < self.end() {
            return Ok(Some(self.buf[(off - self.start) as usize]));
        }
        if !self.ensure(off + 1)? {
            return Ok(None);
        }
        Ok(Some(self.buf[(off - self.start) as usize]))
    }

    /// Bytes `[off, off + n)` (growing as needed), `None` past the limit.
    pub(crate) fn slice(&mut self, off: u64, n: u64) -> Result<Option<&[u8]>, CarveError> {
        let Some(end) = off.checked_add(n) else {
            return Ok(None);
        };
        if off < self.start || !self.ensure(end)? {
            return Ok(None);
        }
        let s = (off - self.start) as usize;
        Ok(self.buf.get(s..s + n as usize))
    }
}

/// Little/big-endian readers over fixed positions of a slice; `None` when
/// the slice is too short.
pub(crate) mod rd {
    #[inline]
    pub(crate) fn le16(b: &[u8], i: usize) -> Option<u16> {
        Some(u16::from_le_bytes(
            b.get(i..i.checked_add(2)?)?.try_into().ok()?,
        ))
    }
    #[inline]
    pub(crate) fn be16(b: &[u8], i: usize) -> Option<u16> {
        Some(u16::from_be_bytes(
            b.get(i..i.checked_add(2)?)?.try_into().ok()?,
        ))
    }
    #[inline]
    pub(crate) fn le32(b: &[u8], i: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            b.get(i..i.checked_add(4)?)?.try_into().ok()?,
        ))
    }
    #[inline]
    pub(crate) fn be32(b: &[u8], i: usize) -> Option<u32> {
        Some(u32::from_be_bytes(
            b.get(i..i.checked_add(4)?)?.try_into().ok()?,
        ))
    }
    #[inline]
    pub(crate) fn le64(b: &[u8], i: usize) -> Option<u64> {
        Some(u64::from_le_bytes(
            b.get(i..i.checked_add(8)?)?.try_into().ok()?,
        ))
    }
    #[inline]
    pub(crate) fn be64(b: &[u8], i: usize) -> Option<u64> {
        Some(u64::from_be_bytes(
            b.get(i..i.checked_add(8)?)?.try_into().ok()?,
        ))
    }
}
