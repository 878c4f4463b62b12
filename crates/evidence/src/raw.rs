//! Raw (dd) images: one file, memory-mapped read-only.

use crate::{Evidence, EvidenceError, EvidenceInfo, Format, StoredHashes};
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// How a raw image's bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Memory-map the file (zero-copy slices); falls back to `pread` when the
    /// file cannot be mapped.
    #[default]
    Mmap,
    /// Positional reads only.
    Pread,
}

/// The process's read mode for raw and split images opened without an
/// explicit one (`--read-mode`): 0 mmap, 1 pread.
static PROCESS_MODE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets how this process reads raw and split images from now on
/// (`trawl scan --read-mode pread`, `trawl worker --read-mode pread`):
/// `Pread` never maps evidence, so a file truncated by another process
/// while it is read gives an I/O error instead of SIGBUS.
pub fn set_read_mode(mode: ReadMode) {
    PROCESS_MODE.store(
        u8::from(mode == ReadMode::Pread),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// The process's read mode ([`set_read_mode`]).
pub fn read_mode() -> ReadMode {
    if PROCESS_MODE.load(std::sync::atomic::Ordering::Relaxed) == 1 {
        ReadMode::Pread
    } else {
        ReadMode::Mmap
    }
}

impl std::str::FromStr for ReadMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mmap" => Ok(ReadMode::Mmap),
            "pread" => Ok(ReadMode::Pread),
            _ => Err(format!("read mode {s:?}: mmap or pread")),
        }
    }
}

/// One read-only file, mapped when possible.
#[derive(Debug)]
pub struct RawEvidence {
    info: EvidenceInfo,
    file: File,
    map: Option<Mmap>,
}

/// Opens `path` read-only and returns it with its size (block devices
/// included, whose metadata length is 0).
pub(crate) fn open_file(path: &Path) -> Result<(File, u64), EvidenceError> {
    if crate::remote::is_remote(path) {
        return Err(EvidenceError::Remote {
            path: path.to_path_buf(),
            what: "this reader reads local files only".into(),
        });
    }
    let mut file = crate::confine::checked_open(path)?;
    let meta = file.metadata().map_err(|e| EvidenceError::io(path, 0, e))?;
    if meta.is_dir() {
        return Err(EvidenceError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let size = if meta.is_file() {
        meta.len()
    } else {
        let s = file
            .seek(SeekFrom::End(0))
            .map_err(|e| EvidenceError::io(path, 0, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| EvidenceError::io(path, 0, e))?;
        s
    };
    Ok((file, size))
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
pub(crate) fn map_file(file: &File, size: u64) -> Option<Mmap> {
    if size == 0 || usize::try_from(size).is_err() || read_mode() == ReadMode::Pread {
        return None;
    }
    // SAFETY: the map is read-only and private to this process. Evidence files
    // are never written by trawl; if another process truncated the file while
    // it is mapped, a read past the new end would raise SIGBUS. Evidence is
    // write-protected by practice (and usually by mount options); `ReadMode::
    // Pread` avoids the mapping entirely where that cannot be assumed.
    let map = unsafe { memmap2::MmapOptions::new().len(size as usize).map(file) }.ok()?;
    #[cfg(unix)]
    {
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Some(map)
}

/// Drops the pages of `[start, end)` of a read-only file mapping from this
/// process (see [`crate::Evidence::release`]).
#[allow(unsafe_code)]
pub(crate) fn release_range(map: &Mmap, start: u64, end: u64) {
    let len = map.len() as u64;
    let page = 4096u64;
    let s = (start / page) * page;
    let e = end.min(len);
    if e <= s {
        return;
    }
    // SAFETY: the mapping is private, read-only and backed by an evidence
    // file nobody writes: after MADV_DONTNEED the next access to these pages
    // reads the same bytes back from the page cache or the file, so slices
    // other threads hold into the range keep their contents.
    let _ = unsafe {
        map.unchecked_advise_range(
            memmap2::UncheckedAdvice::DontNeed,
            s as usize,
            (e - s) as usize,
        )
    };
}

/// Copies `[start, end)` of `file` into `out` at `out_offset` with
/// `copy_file_range(2)`; `None` when the kernel or the file systems refuse
/// it before anything was copied (the caller copies another way).
#[allow(unsafe_code)]
pub(crate) fn copy_file_range(
    file: &File,
    start: u64,
    end: u64,
    out: &File,
    out_offset: u64,
) -> Option<std::io::Result<()>> {
    use std::os::fd::AsRawFd;
    let (mut off_in, mut off_out) = (i64::try_from(start).ok()?, i64::try_from(out_offset).ok()?);
    let mut first = true;
    while (off_in as u64) < end {
        let want = usize::try_from(end - off_in as u64)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        // SAFETY: both descriptors are open for the call's duration and the
        // offsets are plain integers the kernel updates; the evidence is only
        // read.
        let n = unsafe {
            libc::copy_file_range(
                file.as_raw_fd(),
                &mut off_in,
                out.as_raw_fd(),
                &mut off_out,
                want,
                0,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            let refused = matches!(
                e.raw_os_error(),
                Some(
                    libc::ENOSYS
                        | libc::EXDEV
                        | libc::EINVAL
                        | libc::EOPNOTSUPP
                        | libc::EBADF
                        | libc::EPERM
                )
            );
            if first && refused {
                return None;
            }
            return Some(Err(e));
        }
        if n == 0 {
            return Some(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the evidence ends at {off_in}, below its opened size"),
            )));
        }
        first = false;
    }
    Some(Ok(()))
}

/// Positional read into `buf` that retries short reads until `buf` is full
/// or the end of file; returns the bytes read.
pub(crate) fn pread_full(
    file: &File,
    path: &Path,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, EvidenceError> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(EvidenceError::io(path, offset + done as u64, e)),
        }
    }
    Ok(done)
}

impl RawEvidence {
    /// Opens a raw image, memory-mapped.
    ///
    /// # Errors
    /// Missing, unreadable or directory paths.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EvidenceError> {
        Self::open_with(path, read_mode())
    }

    /// Opens a raw image with an explicit read mode.
    ///
    /// # Errors
    /// Missing, unreadable or directory paths.
    pub fn open_with(path: impl AsRef<Path>, mode: ReadMode) -> Result<Self, EvidenceError> {
        let path = path.as_ref();
        let (file, size) = open_file(path)?;
        let map = match mode {
            ReadMode::Mmap => map_file(&file, size),
            ReadMode::Pread => None,
        };
        Ok(Self {
            info: EvidenceInfo {
                path: path.to_path_buf(),
                segments: vec![path.to_path_buf()],
                size,
                format: Format::Raw,
                stored: StoredHashes::default(),
                metadata: BTreeMap::new(),
                acquisition_errors: Vec::new(),
                bytes_per_sector: 512,
            },
            file,
            map,
        })
    }

    fn path(&self) -> &PathBuf {
        &self.info.path
    }
}

impl Evidence for RawEvidence {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        let size = self.info.size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min((size - offset) as usize);
        if let Some(map) = &self.map {
            buf[..n].copy_from_slice(&map[offset as usize..offset as usize + n]);
            return Ok(n);
        }
        let got = pread_full(&self.file, self.path(), offset, &mut buf[..n])?;
        if got < n {
            return Err(EvidenceError::Truncated {
                path: self.path().clone(),
                offset: offset + got as u64,
                what: format!("file shrank below its opened size of {size} bytes"),
            });
        }
        Ok(n)
    }

    fn release(&self, start: u64, end: u64) {
        if let Some(map) = &self.map {
            release_range(map, start, end);
        }
    }

    fn copy_range_to(
        &self,
        start: u64,
        end: u64,
        out: &File,
        out_offset: u64,
    ) -> Option<std::io::Result<()>> {
        if end > self.info.size || start > end {
            return Some(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "bytes {start}..{end} pass the end of the evidence ({} bytes)",
                    self.info.size
                ),
            )));
        }
        copy_file_range(&self.file, start, end, out, out_offset)
    }

    fn mapped(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let map = self.map.as_ref()?;
        let end = offset.checked_add(len as u64)?;
        (end <= self.info.size).then(|| &map[offset as usize..end as usize])
    }
}
