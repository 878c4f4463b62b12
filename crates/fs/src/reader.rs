//! Reads inside one volume, at volume-relative offsets.

use crate::FsError;
use trawl_evidence::Evidence;

/// A window `[base, base + len)` of the image: a volume. Offsets are
/// relative to the volume start; reads never pass the volume's end nor the
/// image's end (a partition that claims more than the image holds reads
/// short there).
#[derive(Clone, Copy)]
pub struct VolumeReader<'a> {
    img: &'a dyn Evidence,
    base: u64,
    len: u64,
}

impl std::fmt::Debug for VolumeReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeReader")
            .field("base", &self.base)
            .field("len", &self.len)
            .finish()
    }
}

impl<'a> VolumeReader<'a> {
    /// The volume at image offset `base`, `len` bytes long (clamped to the
    /// image).
    pub fn new(img: &'a dyn Evidence, base: u64, len: u64) -> Self {
        let size = img.size();
        let base = base.min(size);
        let len = len.min(size - base);
        Self { img, base, len }
    }

    /// The whole image as one volume.
    pub fn whole(img: &'a dyn Evidence) -> Self {
        Self::new(img, 0, img.size())
    }

    /// The image.
    pub fn image(&self) -> &'a dyn Evidence {
        self.img
    }

    /// Image offset of the volume's first byte.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Readable length of the volume in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing of the volume is readable.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Image offset of volume offset `off` (saturating).
    pub fn image_offset(&self, off: u64) -> u64 {
        self.base.saturating_add(off)
    }

    /// Reads up to `buf.len()` bytes at volume offset `off`; short (or 0)
    /// at the volume's end.
    ///
    /// # Errors
    /// I/O errors from the evidence.
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        if off >= self.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - off) as usize;
        let mut done = 0;
        while done < n {
            let k = self
                .img
                .read_at(self.base + off + done as u64, &mut buf[done..n])?;
            if k == 0 {
                break;
            }
            done += k;
        }
        Ok(done)
    }

    /// Reads exactly `buf.len()` bytes at volume offset `off`.
    ///
    /// # Errors
    /// [`FsError::Corrupt`] naming `what` when the range passes the volume's
    /// (or image's) end; I/O errors.
    pub fn read_exact(&self, off: u64, buf: &mut [u8], what: &str) -> Result<(), FsError> {
        let n = self.read_at(off, buf)?;
        if n < buf.len() {
            return Err(FsError::corrupt(
                what,
                self.image_offset(off),
                format!("{} bytes needed, the volume ends {} bytes in", buf.len(), n),
            ));
        }
        Ok(())
    }

    /// `len` bytes at volume offset `off` in a new buffer, refusing lengths
    /// past the volume end before allocating.
    ///
    /// # Errors
    /// As [`VolumeReader::read_exact`].
    pub fn read_vec(&self, off: u64, len: u64, what: &str) -> Result<Vec<u8>, FsError> {
        if off.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(FsError::corrupt(
                what,
                self.image_offset(off),
                format!(
                    "{len} bytes at volume offset {off} pass the volume end ({} bytes)",
                    self.len
                ),
            ));
        }
        let mut v = vec![0u8; len as usize];
        self.read_exact(off, &mut v, what)?;
        Ok(v)
    }
}
