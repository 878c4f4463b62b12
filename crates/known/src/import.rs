//! `trawl known import`: sources → one table, in bounded memory.
//!
//! Digests are collected per algorithm in buffers whose total size is
//! bounded by [`ImportOptions::memory`]; a full buffer is sorted, its
//! duplicates removed, and written as a sorted run to an unnamed temporary
//! file in the output's directory (removed by the system even if the import
//! dies). [`Importer::finish`] merges the runs of each algorithm (a k-way
//! merge that drops duplicates) straight into the table, which is written to
//! a temporary name in the same directory and renamed into place only when
//! complete and synced: a table at the output path is always whole.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rayon::slice::ParallelSliceMut;
use sha2::{Digest, Sha256};

use crate::search;
use crate::table::{
    ALIGN, ArrayInfo, DigestCounts, HEADER_SIZE, Header, MalformedLine, SourceInfo, TableMeta,
    VERSION, encode_index, is_table, read_up_to,
};
use crate::text::{Line, LineReader, ListFormat, ListParser, MAX_LINE};
use crate::{Algorithm, Digests, Kind, KnownError, Table, nsrl};

/// Malformed lines recorded (with line number and reason) per source.
pub const MAX_MALFORMED_EXAMPLES: usize = 100;

/// How an import treats its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Malformed lines allowed per source, each counted and recorded in the
    /// table's metadata; `0` (the default) refuses the first one.
    pub max_malformed: u64,
    /// Bytes of digests held in memory before a sorted run is written to a
    /// temporary file (default 256 MiB). The import's memory is about this
    /// plus 64 KiB per run during the merge, plus, for the page index, 8
    /// bytes per 32 to 64 digests of the array being merged.
    pub memory: usize,
    /// Replace an existing output file (default: refuse).
    pub overwrite: bool,
    /// Sync the table to disk before renaming it into place (default; off
    /// for the throw-away table of a text list opened directly).
    pub sync: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_malformed: 0,
            memory: 256 << 20,
            overwrite: false,
            sync: true,
        }
    }
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub path: PathBuf,
    /// The metadata written into the table (name, kind, sources with their
    /// SHA-256 and malformed-line counts, array counts and digests).
    pub meta: TableMeta,
    /// Table size in bytes.
    pub bytes: u64,
    /// Sorted runs written to temporary files (0: everything fit in memory).
    pub runs: usize,
}

/// Imports `sources` (NSRL RDSv3 SQLite databases, text lists, trawl tables,
/// in any mix) into one table at `out` named `name`, with default options.
///
/// # Errors
/// See [`import_with`].
pub fn import<P: AsRef<Path>>(
    sources: &[P],
    out: &Path,
    name: &str,
    kind: Kind,
) -> Result<ImportReport, KnownError> {
    import_with(sources, out, name, kind, &ImportOptions::default())
}

/// [`import`] with options.
///
/// # Errors
/// Unreadable or unrecognised sources, malformed lines beyond
/// `max_malformed` (naming the file and line), a source without digests, an
/// existing output (unless `overwrite`), I/O errors writing the table.
pub fn import_with<P: AsRef<Path>>(
    sources: &[P],
    out: &Path,
    name: &str,
    kind: Kind,
    opts: &ImportOptions,
) -> Result<ImportReport, KnownError> {
    let mut imp = Importer::new(out, name, kind, opts)?;
    for s in sources {
        imp.add_source(s.as_ref())?;
    }
    imp.finish()
}

/// The digests of one algorithm: an in-memory buffer and the runs spilled.
struct RunSet<const N: usize> {
    buf: Vec<[u8; N]>,
    runs: Vec<(File, u64)>,
}

impl<const N: usize> RunSet<N> {
    fn new() -> Self {
        RunSet {
            buf: Vec::new(),
            runs: Vec::new(),
        }
    }

    fn bytes(&self) -> usize {
        self.buf.len() * N
    }

    fn sort(&mut self) {
        self.buf.par_sort_unstable();
        self.buf.dedup();
    }

    fn spill(&mut self, dir: &Path) -> std::io::Result<()> {
        self.sort();
        let mut f = tempfile::tempfile_in(dir)?;
        {
            let mut w = BufWriter::with_capacity(1 << 20, &mut f);
            for d in &self.buf {
                w.write_all(d)?;
            }
            w.flush()?;
        }
        f.seek(SeekFrom::Start(0))?;
        self.runs.push((f, self.buf.len() as u64));
        // Free the memory (not just the length): the next buffer may be
        // another algorithm's.
        self.buf = Vec::new();
        Ok(())
    }

    /// At least the number of distinct digests (exact when nothing was
    /// spilled and the buffer is sorted).
    fn upper_bound(&self) -> u64 {
        self.buf.len() as u64 + self.runs.iter().map(|r| r.1).sum::<u64>()
    }

    /// Merges runs and buffer into `w` (sorted, no duplicates), calling
    /// `each` on every digest written; the count.
    fn merge_into(
        mut self,
        w: &mut impl Write,
        each: &mut impl FnMut(&[u8; N]),
    ) -> std::io::Result<u64> {
        self.sort();
        if self.runs.is_empty() {
            for d in &self.buf {
                w.write_all(d)?;
                each(d);
            }
            return Ok(self.buf.len() as u64);
        }
        let mut readers: Vec<(BufReader<File>, u64)> = self
            .runs
            .into_iter()
            .map(|(f, n)| (BufReader::with_capacity(64 << 10, f), n))
            .collect();
        let mem = std::mem::take(&mut self.buf);
        let mut mem_i = 0usize;
        let mem_src = readers.len();
        let mut next = |src: usize| -> std::io::Result<Option<[u8; N]>> {
            if src == mem_src {
                let d = mem.get(mem_i).copied();
                mem_i += 1;
                return Ok(d);
            }
            let (r, left) = &mut readers[src];
            if *left == 0 {
                return Ok(None);
            }
            *left -= 1;
            let mut d = [0u8; N];
            r.read_exact(&mut d)?;
            Ok(Some(d))
        };
        let mut heap = BinaryHeap::with_capacity(mem_src + 1);
        for src in 0..=mem_src {
            if let Some(d) = next(src)? {
                heap.push(Reverse((d, src)));
            }
        }
        let mut count = 0u64;
        let mut last: Option<[u8; N]> = None;
        while let Some(Reverse((d, src))) = heap.pop() {
            if last != Some(d) {
                w.write_all(&d)?;
                each(&d);
                count += 1;
                last = Some(d);
            }
            if let Some(n) = next(src)? {
                heap.push(Reverse((n, src)));
            }
        }
        Ok(count)
    }
}

/// Where [`Importer::finish`] writes the arrays.
struct ArrayOut<'a, W> {
    w: &'a mut W,
    pos: &'a mut u64,
    offsets: &'a mut [(u64, u64); 3],
    arrays: &'a mut Vec<ArrayInfo>,
    /// The encoded page index (bytes, bits, width) per algorithm, written
    /// after the arrays.
    indexes: &'a mut [(Vec<u8>, u32, u32); 3],
}

impl<W: Write> ArrayOut<'_, W> {
    fn write<const N: usize>(&mut self, alg: Algorithm, set: RunSet<N>) -> std::io::Result<()> {
        let pad = (ALIGN - *self.pos % ALIGN) % ALIGN;
        self.w.write_all(&[0u8; ALIGN as usize][..pad as usize])?;
        *self.pos += pad;
        let mut sha = Sha256::new();
        // Digests per bucket at the resolution the upper bound of the count
        // calls for (at least the final one: dropped duplicates only lower
        // it), coarsened once the count is known.
        let mut set = set;
        set.sort();
        let fine = search::index_bits(set.upper_bound());
        let mut buckets = vec![0u64; 1usize << fine];
        let count = set.merge_into(self.w, &mut |d: &[u8; N]| {
            sha.update(d);
            buckets[search::bucket_of(search::prefix_of(d), fine) as usize] += 1;
        })?;
        let bits = search::index_bits(count);
        let index = encode_index(&buckets, fine, bits, count);
        let width = if count <= u64::from(u32::MAX) { 4 } else { 8 };
        self.indexes[alg.index()] = (index, bits, width);
        self.offsets[alg.index()] = (*self.pos, count);
        *self.pos += count * N as u64;
        self.arrays.push(ArrayInfo {
            algorithm: alg,
            count,
            sha256: hex::encode(sha.finalize()),
        });
        Ok(())
    }
}

/// Reads through to a SHA-256 of everything read.
struct Hashing<R> {
    inner: R,
    sha: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn sha256_file(path: &Path) -> Result<(String, u64), KnownError> {
    let f = File::open(path).map_err(|e| KnownError::io(path, e))?;
    let mut h = Hashing {
        inner: f,
        sha: Sha256::new(),
        bytes: 0,
    };
    std::io::copy(&mut h, &mut std::io::sink()).map_err(|e| KnownError::io(path, e))?;
    Ok((hex::encode(h.sha.finalize()), h.bytes))
}

/// Builds one table from any number of sources (and digests added
/// directly), in bounded memory.
pub struct Importer {
    out: PathBuf,
    dir: PathBuf,
    name: String,
    kind: Kind,
    opts: ImportOptions,
    md5: RunSet<16>,
    sha1: RunSet<20>,
    sha256: RunSet<32>,
    sources: Vec<SourceInfo>,
}

impl Importer {
    /// Starts an import into `out`.
    ///
    /// # Errors
    /// `out` exists (without `overwrite`) or its directory does not.
    pub fn new(
        out: &Path,
        name: &str,
        kind: Kind,
        opts: &ImportOptions,
    ) -> Result<Importer, KnownError> {
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(KnownError::Invalid {
                path: out.to_path_buf(),
                what: format!("output directory {} does not exist", dir.display()),
            });
        }
        if !opts.overwrite && out.exists() {
            return Err(KnownError::Invalid {
                path: out.to_path_buf(),
                what: "output exists; choose another name or allow overwriting".into(),
            });
        }
        Ok(Importer {
            out: out.to_path_buf(),
            dir,
            name: name.to_string(),
            kind,
            opts: ImportOptions {
                memory: opts.memory.max(1 << 16),
                ..opts.clone()
            },
            md5: RunSet::new(),
            sha1: RunSet::new(),
            sha256: RunSet::new(),
            sources: Vec::new(),
        })
    }

    fn reserve<const N: usize>(memory: usize, set: &mut RunSet<N>) {
        if set.buf.capacity() == 0 {
            // Address space only: pages become resident as they are
            // written, and the buffer never grows past this (a spill comes
            // first), so it never reallocates.
            set.buf.reserve_exact(memory / N + 1);
        }
    }

    fn maybe_spill(&mut self) -> Result<(), KnownError> {
        let total = self.md5.bytes() + self.sha1.bytes() + self.sha256.bytes();
        if total < self.opts.memory {
            return Ok(());
        }
        let (a, b, c) = (self.md5.bytes(), self.sha1.bytes(), self.sha256.bytes());
        let r = if a >= b && a >= c {
            self.md5.spill(&self.dir)
        } else if b >= c {
            self.sha1.spill(&self.dir)
        } else {
            self.sha256.spill(&self.dir)
        };
        r.map_err(|e| KnownError::io(&self.out, e))
    }

    /// Adds one MD5.
    ///
    /// # Errors
    /// I/O errors writing a sorted run.
    pub fn add_md5(&mut self, d: [u8; 16]) -> Result<(), KnownError> {
        Self::reserve(self.opts.memory, &mut self.md5);
        self.md5.buf.push(d);
        self.maybe_spill()
    }

    /// Adds one SHA-1.
    ///
    /// # Errors
    /// I/O errors writing a sorted run.
    pub fn add_sha1(&mut self, d: [u8; 20]) -> Result<(), KnownError> {
        Self::reserve(self.opts.memory, &mut self.sha1);
        self.sha1.buf.push(d);
        self.maybe_spill()
    }

    /// Adds one SHA-256.
    ///
    /// # Errors
    /// I/O errors writing a sorted run.
    pub fn add_sha256(&mut self, d: [u8; 32]) -> Result<(), KnownError> {
        Self::reserve(self.opts.memory, &mut self.sha256);
        self.sha256.buf.push(d);
        self.maybe_spill()
    }

    /// Adds every digest present in `d`.
    ///
    /// # Errors
    /// I/O errors writing a sorted run.
    pub fn add(&mut self, d: &Digests) -> Result<(), KnownError> {
        if let Some(x) = d.md5 {
            self.add_md5(x)?;
        }
        if let Some(x) = d.sha1 {
            self.add_sha1(x)?;
        }
        if let Some(x) = d.sha256 {
            self.add_sha256(x)?;
        }
        Ok(())
    }

    /// Records a source whose digests were added directly (a generated set,
    /// another program's output), for the table's provenance.
    pub fn record_source(&mut self, info: SourceInfo) {
        self.sources.push(info);
    }

    fn malformed(
        &self,
        info: &mut SourceInfo,
        path: &Path,
        line: u64,
        reason: String,
    ) -> Result<(), KnownError> {
        if self.opts.max_malformed == 0 {
            return Err(KnownError::Malformed {
                path: path.to_path_buf(),
                line,
                reason,
            });
        }
        info.malformed += 1;
        if info.malformed_examples.len() < MAX_MALFORMED_EXAMPLES {
            info.malformed_examples.push(MalformedLine { line, reason });
        }
        if info.malformed > self.opts.max_malformed {
            let first = &info.malformed_examples[0];
            return Err(KnownError::TooManyMalformed {
                path: path.to_path_buf(),
                count: info.malformed,
                limit: self.opts.max_malformed,
                first_line: first.line,
                first_reason: first.reason.clone(),
            });
        }
        Ok(())
    }

    fn count(info: &mut SourceInfo, d: &Digests) {
        for alg in Algorithm::ALL {
            if d.get(alg).is_some() {
                info.digests.add(alg);
            }
        }
    }

    /// Reads one source (format detected from its first bytes) and records
    /// its provenance; returns that record.
    ///
    /// # Errors
    /// Unreadable or unrecognised sources, malformed lines beyond the limit,
    /// a source without digests, the output itself as a source.
    pub fn add_source(&mut self, path: &Path) -> Result<SourceInfo, KnownError> {
        if let (Ok(a), Ok(b)) = (path.canonicalize(), self.out.canonicalize())
            && a == b
        {
            return Err(KnownError::Invalid {
                path: path.to_path_buf(),
                what: "is the import's own output".into(),
            });
        }
        let mut head = [0u8; 16];
        let mut f = File::open(path).map_err(|e| KnownError::io(path, e))?;
        let got = read_up_to(&mut f, &mut head).map_err(|e| KnownError::io(path, e))?;
        drop(f);
        let info = if is_table(&head[..got]) {
            self.add_table(path)?
        } else if nsrl::is_sqlite(&head[..got]) {
            self.add_sqlite(path)?
        } else {
            self.add_text(path)?
        };
        if info.digests.total() == 0 {
            return Err(KnownError::NoDigests {
                path: path.to_path_buf(),
                format: info.format,
            });
        }
        self.sources.push(info.clone());
        Ok(info)
    }

    fn new_info(path: &Path, format: &str) -> SourceInfo {
        SourceInfo {
            path: path.display().to_string(),
            format: format.to_string(),
            bytes: 0,
            sha256: String::new(),
            lines: 0,
            digests: DigestCounts::default(),
            malformed: 0,
            malformed_examples: Vec::new(),
        }
    }

    fn add_text(&mut self, path: &Path) -> Result<SourceInfo, KnownError> {
        let f = File::open(path).map_err(|e| KnownError::io(path, e))?;
        let hashing = Hashing {
            inner: f,
            sha: Sha256::new(),
            bytes: 0,
        };
        let mut lines = LineReader::new(BufReader::with_capacity(1 << 20, hashing));
        let mut parser = ListParser::default();
        let mut info = Self::new_info(path, "sums");
        loop {
            let line = lines.next_line().map_err(|e| KnownError::io(path, e))?;
            let parsed = match line {
                None => break,
                Some(Line::TooLong(n)) => Err(format!(
                    "line of {n} bytes, longer than the {MAX_LINE} allowed"
                )),
                Some(Line::Text(t)) => parser.line(t),
            };
            let no = lines.line_no;
            match parsed {
                Ok(Some(d)) => {
                    Self::count(&mut info, &d);
                    self.add(&d)?;
                }
                Ok(None) => {}
                Err(reason) => self.malformed(&mut info, path, no, reason)?,
            }
        }
        info.lines = lines.line_no;
        info.format = ListFormat::name(parser.format).to_string();
        let h = lines.into_inner().into_inner();
        info.bytes = h.bytes;
        info.sha256 = hex::encode(h.sha.finalize());
        Ok(info)
    }

    fn add_sqlite(&mut self, path: &Path) -> Result<SourceInfo, KnownError> {
        let mut info = Self::new_info(path, "nsrl-rdsv3-sqlite");
        let rows = nsrl::stream(path, |row, parsed| match parsed {
            Ok(d) => {
                Self::count(&mut info, &d);
                self.add(&d)
            }
            Err(reason) => self.malformed(&mut info, path, row, reason),
        })?;
        info.lines = rows;
        let (sha, bytes) = sha256_file(path)?;
        info.sha256 = sha;
        info.bytes = bytes;
        Ok(info)
    }

    fn add_table(&mut self, path: &Path) -> Result<SourceInfo, KnownError> {
        let t = Table::open(path)?;
        t.verify()?;
        let mut info = Self::new_info(path, "trawl-table");
        for d in t.md5() {
            self.add_md5(*d)?;
        }
        for d in t.sha1() {
            self.add_sha1(*d)?;
        }
        for d in t.sha256() {
            self.add_sha256(*d)?;
        }
        info.digests = t.counts();
        info.lines = info.digests.total();
        let (sha, bytes) = sha256_file(path)?;
        info.sha256 = sha;
        info.bytes = bytes;
        Ok(info)
    }

    /// Merges everything into the table and renames it into place.
    ///
    /// # Errors
    /// I/O errors; an existing output (without `overwrite`).
    pub fn finish(self) -> Result<ImportReport, KnownError> {
        let io = |e: std::io::Error| KnownError::io(&self.out, e);
        let runs = self.md5.runs.len() + self.sha1.runs.len() + self.sha256.runs.len();
        let tmp = tempfile::Builder::new()
            .prefix(".trawlknown-")
            .suffix(".partial")
            .tempfile_in(&self.dir)
            .map_err(io)?;
        let mut arrays = Vec::with_capacity(3);
        let mut offsets = [(0u64, 0u64); 3];
        let mut indexes: [(Vec<u8>, u32, u32); 3] = Default::default();
        let mut index_at = [(0u64, 0u32, 0u32); 3];
        let mut pos = HEADER_SIZE;
        {
            let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file());
            w.write_all(&[0u8; HEADER_SIZE as usize]).map_err(io)?;
            let mut out = ArrayOut {
                w: &mut w,
                pos: &mut pos,
                offsets: &mut offsets,
                arrays: &mut arrays,
                indexes: &mut indexes,
            };
            out.write(Algorithm::Md5, self.md5).map_err(io)?;
            out.write(Algorithm::Sha1, self.sha1).map_err(io)?;
            out.write(Algorithm::Sha256, self.sha256).map_err(io)?;
            for (i, (bytes, bits, width)) in indexes.iter().enumerate() {
                let pad = (ALIGN - pos % ALIGN) % ALIGN;
                w.write_all(&[0u8; ALIGN as usize][..pad as usize])
                    .map_err(io)?;
                pos += pad;
                index_at[i] = (pos, *bits, *width);
                w.write_all(bytes).map_err(io)?;
                pos += bytes.len() as u64;
            }
            w.flush().map_err(io)?;
        }
        let meta = TableMeta {
            format: "trawl-known-table".into(),
            version: VERSION,
            name: self.name.clone(),
            kind: self.kind,
            created_by: format!("trawl-known {}", env!("CARGO_PKG_VERSION")),
            sources: self.sources.clone(),
            arrays,
        };
        let meta_bytes = serde_json::to_vec_pretty(&meta).map_err(|e| KnownError::Invalid {
            path: self.out.clone(),
            what: format!("metadata: {e}"),
        })?;
        let header = Header {
            kind: self.kind,
            file_len: pos + meta_bytes.len() as u64,
            meta_off: pos,
            meta_len: meta_bytes.len() as u64,
            arrays: offsets,
            index: index_at,
        };
        let mut f = tmp.as_file();
        f.write_all(&meta_bytes).map_err(io)?;
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        f.write_all(&header.encode(&meta_bytes)).map_err(io)?;
        if self.opts.sync {
            f.sync_all().map_err(io)?;
        }
        let persisted = if self.opts.overwrite {
            tmp.persist(&self.out)
        } else {
            tmp.persist_noclobber(&self.out)
        };
        persisted.map_err(|e| io(e.error))?;
        Ok(ImportReport {
            path: self.out.clone(),
            meta,
            bytes: header.file_len,
            runs,
        })
    }
}
