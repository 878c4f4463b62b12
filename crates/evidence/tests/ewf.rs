//! EWF reader tests: the reference corpora (MD5s and metadata compared with
//! libewf's ewfverify/ewfinfo), images made at test time by ewf-tools'
//! ewfacquire (every output format), images made by the small EWF v1/v2
//! writer below (cross-checked with ewfverify when it is installed),
//! corruption cases, and property-based fuzzing of damaged images.

#![allow(unsafe_code)] // the allocation-tracking global allocator below

use md5::{Digest, Md5};
use sha1::Sha1;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use trawl_evidence::ewf::EwfEvidence;
use trawl_evidence::{Evidence, EvidenceError, Format};

/// Tracks the largest single allocation, so the fuzz test can assert that
/// damaged images never make the reader allocate absurd amounts.
struct TrackingAlloc;

static LARGEST_ALLOC: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: TrackingAlloc = TrackingAlloc;

mod util {
    use super::*;

    /// The shared reference corpora, or `None` (and a "skipped" line).
    pub fn corpora() -> Option<PathBuf> {
        let dir = std::env::var_os("TRAWL_CORPORA")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
            });
        if dir.is_dir() {
            Some(dir)
        } else {
            trawl_fixtures::skip("ewf corpora", "../shared/corpora");
            None
        }
    }

    /// Whether an ewf-tools program can be run.
    pub fn have(tool: &str) -> bool {
        Command::new(tool).arg("-V").output().is_ok()
    }

    pub fn md5_hex(data: &[u8]) -> String {
        hex::encode(Md5::digest(data))
    }

    pub fn sha1_hex(data: &[u8]) -> String {
        hex::encode(Sha1::digest(data))
    }

    /// Reads all media bytes with reads of `block` bytes.
    pub fn read_all_with(ev: &dyn Evidence, block: usize) -> Result<Vec<u8>, EvidenceError> {
        let size = usize::try_from(ev.size()).unwrap();
        let mut out = vec![0u8; size];
        let mut off = 0usize;
        while off < size {
            let n = block.min(size - off);
            let got = ev.read_at(off as u64, &mut out[off..off + n])?;
            assert_eq!(got, n, "short read at {off}");
            off += n;
        }
        let mut extra = [0u8; 16];
        assert_eq!(ev.read_at(size as u64, &mut extra)?, 0, "read past the end");
        Ok(out)
    }

    pub fn read_all(ev: &dyn Evidence) -> Vec<u8> {
        read_all_with(ev, 1 << 20).unwrap()
    }

    /// MD5 of all media bytes, streamed in 4 MiB reads.
    pub fn media_md5(ev: &dyn Evidence) -> String {
        let mut h = Md5::new();
        let mut buf = vec![0u8; 4 << 20];
        let mut off = 0u64;
        loop {
            let n = ev.read_at(off, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            off += n as u64;
        }
        assert_eq!(off, ev.size());
        hex::encode(h.finalize())
    }

    fn tool_output(tool: &str, args: &[&str]) -> Option<String> {
        let out = Command::new(tool)
            .args(args)
            .env("TZ", "UTC")
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The MD5 that libewf's ewfverify computes over the media, when
    /// ewfverify is installed.
    pub fn ewfverify_md5(path: &Path) -> Option<String> {
        if !have("ewfverify") {
            return None;
        }
        let out = tool_output("ewfverify", &["-q", path.to_str()?])?;
        let line = out
            .lines()
            .find(|l| l.starts_with("MD5 hash calculated over data:"))?;
        Some(line.split_whitespace().last()?.to_string())
    }

    /// The media MD5 that a recent libewf computes through its Python
    /// bindings (pyewf, PyPI package libewf-python), when the Python named
    /// by `TRAWL_PYEWF_PYTHON` (default `python3`) has them. Debian's
    /// ewf-tools (libewf 20140813) cannot read EWF2 at all, so this is the
    /// cross-check for the Ex01 images the test writer makes.
    pub fn pyewf_md5(path: &Path) -> Option<String> {
        static PYTHON: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let python = PYTHON.get_or_init(|| {
            let python = std::env::var("TRAWL_PYEWF_PYTHON").unwrap_or_else(|_| "python3".into());
            let ok = Command::new(&python)
                .args(["-c", "import pyewf"])
                .output()
                .is_ok_and(|o| o.status.success());
            ok.then_some(python)
        });
        let script = "import sys,hashlib,pyewf\n\
            h=pyewf.handle(); h.open(pyewf.glob(sys.argv[1]))\n\
            size=h.get_media_size(); m=hashlib.md5(); off=0\n\
            while off < size:\n    d=h.read_buffer_at_offset(min(1<<20,size-off),off); m.update(d); off+=len(d)\n    if not d: break\n\
            print(m.hexdigest())\n";
        let out = Command::new(python.as_ref()?)
            .args(["-c", script])
            .arg(path)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "pyewf cannot read {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// ewfinfo's "Name:\tvalue" lines, when ewfinfo is installed.
    pub fn ewfinfo(path: &Path) -> Option<Vec<(String, String)>> {
        if !have("ewfinfo") {
            return None;
        }
        let out = tool_output("ewfinfo", &[path.to_str()?])?;
        Some(
            out.lines()
                .filter_map(|l| {
                    let (k, v) = l.trim().split_once(':')?;
                    Some((k.trim().to_string(), v.trim().to_string()))
                })
                .collect(),
        )
    }

    /// The media as exported by libewf's ewfexport, when installed.
    pub fn ewfexport(path: &Path, dir: &Path) -> Option<Vec<u8>> {
        if !have("ewfexport") {
            return None;
        }
        let target = dir.join("export");
        let status = Command::new("ewfexport")
            .args(["-u", "-q", "-f", "raw", "-t"])
            .arg(&target)
            .arg(path)
            .output()
            .ok()?;
        assert!(
            status.status.success(),
            "ewfexport failed on {}",
            path.display()
        );
        std::fs::read(dir.join("export.raw")).ok()
    }

    /// Deterministic test media: zero runs, text, and pseudo-random bytes.
    pub fn media(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(len);
        let mut block = 0u64;
        while out.len() < len {
            let kind = (block * 7 + seed) % 5;
            let n = (4096 + (block as usize * 1237) % 9000).min(len - out.len());
            match kind {
                0 => out.extend(std::iter::repeat_n(0u8, n)),
                1 | 2 => out.extend(
                    format!("block {block} of seed {seed}: the quick brown fox. ")
                        .bytes()
                        .cycle()
                        .take(n),
                ),
                _ => {
                    for _ in 0..n {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        out.push(x as u8);
                    }
                }
            }
            block += 1;
        }
        out
    }

    /// Runs ewfacquire on `raw`, returning the first segment it made.
    pub fn ewfacquire(raw: &Path, target: &Path, args: &[&str]) -> Option<PathBuf> {
        if !have("ewfacquire") {
            return None;
        }
        let out = Command::new("ewfacquire")
            .args(["-u", "-q", "-t"])
            .arg(target)
            .args(args)
            .arg(raw)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "ewfacquire {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = target.parent().unwrap();
        let stem = target.file_name().unwrap().to_str().unwrap();
        ["E01", "e01", "s01", "Ex01"]
            .iter()
            .map(|e| dir.join(format!("{stem}.{e}")))
            .find(|p| p.exists())
    }

    pub fn meta<'a>(ev: &'a dyn Evidence, key: &str) -> Option<&'a str> {
        ev.info().metadata.get(key).map(String::as_str)
    }
}

/// A small EWF writer for tests: EWF v1 (EnCase 6 layout: header2, header,
/// volume/data, sectors, table, table2, error2, digest, hash, next/done)
/// and EWF v2 (device information, case data, sector data, sector table,
/// error table, MD5, SHA-1, next/done), following the libewf format
/// documentation.
mod writer {
    use super::*;
    use flate2::Compression;
    use flate2::write::ZlibEncoder;
    use std::io::Write;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Comp {
        None,
        Best,
        /// Even chunks compressed, odd ones stored raw with a checksum.
        Mixed,
    }

    #[derive(Debug, Clone)]
    pub struct Spec {
        pub version: u8,
        pub sectors_per_chunk: u32,
        pub bytes_per_sector: u32,
        pub comp: Comp,
        pub chunks_per_segment: usize,
        /// v2: store all-zero chunks as pattern fills.
        pub pattern_fill: bool,
        pub errors: Vec<(u64, u32)>,
        pub case_number: String,
        pub examiner: String,
    }

    impl Spec {
        pub fn new(version: u8) -> Self {
            Self {
                version,
                sectors_per_chunk: 16,
                bytes_per_sector: 512,
                comp: Comp::Mixed,
                chunks_per_segment: usize::MAX,
                pattern_fill: false,
                errors: Vec::new(),
                case_number: "CASE-42".into(),
                examiner: "Ex Aminer".into(),
            }
        }
    }

    pub fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn adler(data: &[u8]) -> u32 {
        adler2::adler32_slice(data)
    }

    fn utf16(text: &str) -> Vec<u8> {
        let mut v = vec![0xff, 0xfe];
        for u in text.encode_utf16() {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v
    }

    /// Stored form of chunk `i`: (bytes, compressed).
    fn encode_chunk(spec: &Spec, i: usize, chunk: &[u8]) -> (Vec<u8>, bool) {
        let compress = match spec.comp {
            Comp::None => false,
            Comp::Best => true,
            Comp::Mixed => i.is_multiple_of(2),
        };
        if compress {
            (zlib(chunk), true)
        } else {
            let mut v = chunk.to_vec();
            v.extend_from_slice(&adler(chunk).to_le_bytes());
            (v, false)
        }
    }

    /// Segment extensions as libewf names them: E01 … E99, EAA … EZZ,
    /// FAA …; Ex01 … Ex99, ExAA … ExZZ, EyAA ….
    fn ext(version: u8, n: usize) -> String {
        let letters = |m: usize| {
            [(m / 26) % 26, m % 26]
                .iter()
                .map(|&d| char::from(b'A' + d as u8))
                .collect::<String>()
        };
        match (version, n) {
            (1, 1..=99) => format!("E{n:02}"),
            (1, _) => format!(
                "{}{}",
                char::from(b'E' + ((n - 100) / 676) as u8),
                letters(n - 100)
            ),
            (_, 1..=99) => format!("Ex{n:02}"),
            _ => format!(
                "E{}{}",
                char::from(b'x' + ((n - 100) / 676) as u8),
                letters(n - 100)
            ),
        }
    }

    /// Writes `media` as an EWF image `dir/stem.E01` (or `.Ex01`) and
    /// returns its segment paths.
    pub fn write(dir: &Path, stem: &str, media: &[u8], spec: &Spec) -> Vec<PathBuf> {
        let bps = spec.bytes_per_sector as usize;
        assert_eq!(media.len() % bps, 0);
        let cs = bps * spec.sectors_per_chunk as usize;
        let chunks: Vec<&[u8]> = media.chunks(cs).collect();
        let groups: Vec<(usize, &[&[u8]])> = if chunks.is_empty() {
            vec![(0, &[][..])]
        } else {
            chunks
                .chunks(spec.chunks_per_segment)
                .enumerate()
                .map(|(g, c)| (g * spec.chunks_per_segment, c))
                .collect()
        };
        let n_segments = groups.len();
        let mut paths = Vec::new();
        for (si, (first, group)) in groups.iter().enumerate() {
            let last = si + 1 == n_segments;
            let bytes = if spec.version == 1 {
                v1_segment(media, spec, si + 1, *first, group, last, chunks.len())
            } else {
                v2_segment(media, spec, si + 1, *first, group, last, chunks.len())
            };
            let p = dir.join(format!("{stem}.{}", ext(spec.version, si + 1)));
            std::fs::write(&p, bytes).unwrap();
            paths.push(p);
        }
        paths
    }

    fn v1_descriptor(out: &mut Vec<u8>, kind: &str, next: u64, size: u64) {
        let mut d = [0u8; 76];
        d[..kind.len()].copy_from_slice(kind.as_bytes());
        d[16..24].copy_from_slice(&next.to_le_bytes());
        d[24..32].copy_from_slice(&size.to_le_bytes());
        let sum = adler(&d[..72]);
        d[72..76].copy_from_slice(&sum.to_le_bytes());
        out.extend_from_slice(&d);
    }

    fn v1_section(out: &mut Vec<u8>, kind: &str, data: &[u8]) {
        let start = out.len() as u64;
        let size = 76 + data.len() as u64;
        v1_descriptor(out, kind, start + size, size);
        out.extend_from_slice(data);
    }

    fn v1_volume(spec: &Spec, media_len: usize, total_chunks: usize) -> Vec<u8> {
        let mut v = vec![0u8; 1052];
        v[0] = 1; // fixed disk
        v[4..8].copy_from_slice(&(total_chunks as u32).to_le_bytes());
        v[8..12].copy_from_slice(&spec.sectors_per_chunk.to_le_bytes());
        v[12..16].copy_from_slice(&spec.bytes_per_sector.to_le_bytes());
        let sectors = (media_len / spec.bytes_per_sector as usize) as u64;
        v[16..24].copy_from_slice(&sectors.to_le_bytes());
        v[36] = 0x03; // image, physical
        v[52] = if spec.comp == Comp::None { 0 } else { 2 };
        v[56..60].copy_from_slice(&spec.sectors_per_chunk.to_le_bytes());
        for (i, b) in v[64..80].iter_mut().enumerate() {
            *b = 0x10 + i as u8;
        }
        let sum = adler(&v[..1048]);
        v[1048..].copy_from_slice(&sum.to_le_bytes());
        v
    }

    fn v1_table(base: u64, offsets: &[(u64, bool)]) -> Vec<u8> {
        let mut t = vec![0u8; 24];
        t[0..4].copy_from_slice(&(offsets.len() as u32).to_le_bytes());
        t[8..16].copy_from_slice(&base.to_le_bytes());
        let sum = adler(&t[..20]);
        t[20..24].copy_from_slice(&sum.to_le_bytes());
        let mut entries = Vec::new();
        for &(rel, compressed) in offsets {
            let v = rel as u32 | if compressed { 0x8000_0000 } else { 0 };
            entries.extend_from_slice(&v.to_le_bytes());
        }
        t.extend_from_slice(&entries);
        t.extend_from_slice(&adler(&entries).to_le_bytes());
        t
    }

    #[allow(clippy::too_many_arguments)]
    fn v1_segment(
        media: &[u8],
        spec: &Spec,
        number: usize,
        first: usize,
        chunks: &[&[u8]],
        last: bool,
        total_chunks: usize,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"EVF\x09\x0d\x0a\xff\x00\x01");
        out.extend_from_slice(&(number as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        let volume = v1_volume(spec, media.len(), total_chunks);
        if number == 1 {
            let header2 = format!(
                "1\nmain\na\tc\tn\te\tt\tav\tov\tm\tu\tp\ndescription\t{}\tEV-7\t{}\tsome notes\ttrawl-test\tLinux\t1626967998\t1626967998\t0\n\n",
                spec.case_number, spec.examiner
            );
            let z = zlib(&utf16(&header2));
            v1_section(&mut out, "header2", &z);
            v1_section(&mut out, "header2", &z);
            let header = format!(
                "1\r\nmain\r\nc\tn\ta\te\tt\tav\tov\tm\tu\tp\r\n{}\tEV-7\tdescription\t{}\tsome notes\ttrawl-test\tLinux\t2021 7 22 15 33 18\t2021 7 22 15 33 18\t0\r\n\r\n",
                spec.case_number, spec.examiner
            );
            v1_section(&mut out, "header", &zlib(header.as_bytes()));
            v1_section(&mut out, "volume", &volume);
        } else {
            v1_section(&mut out, "data", &volume);
        }
        if !chunks.is_empty() {
            let base = out.len() as u64;
            let mut body = Vec::new();
            let mut offsets = Vec::new();
            for (k, c) in chunks.iter().enumerate() {
                let (stored, compressed) = encode_chunk(spec, first + k, c);
                offsets.push((76 + body.len() as u64, compressed));
                body.extend_from_slice(&stored);
            }
            v1_section(&mut out, "sectors", &body);
            let table = v1_table(base, &offsets);
            v1_section(&mut out, "table", &table);
            v1_section(&mut out, "table2", &table);
        }
        if last {
            v1_section(&mut out, "data", &volume);
            if !spec.errors.is_empty() {
                let mut e = vec![0u8; 520];
                e[0..4].copy_from_slice(&(spec.errors.len() as u32).to_le_bytes());
                let sum = adler(&e[..516]);
                e[516..520].copy_from_slice(&sum.to_le_bytes());
                let mut entries = Vec::new();
                for &(s, n) in &spec.errors {
                    entries.extend_from_slice(&(s as u32).to_le_bytes());
                    entries.extend_from_slice(&n.to_le_bytes());
                }
                e.extend_from_slice(&entries);
                e.extend_from_slice(&adler(&entries).to_le_bytes());
                v1_section(&mut out, "error2", &e);
            }
            let md5 = Md5::digest(media);
            let sha1 = Sha1::digest(media);
            let mut d = vec![0u8; 80];
            d[..16].copy_from_slice(&md5);
            d[16..36].copy_from_slice(&sha1);
            let sum = adler(&d[..76]);
            d[76..].copy_from_slice(&sum.to_le_bytes());
            v1_section(&mut out, "digest", &d);
            let mut h = vec![0u8; 36];
            h[..16].copy_from_slice(&md5);
            let sum = adler(&h[..32]);
            h[32..].copy_from_slice(&sum.to_le_bytes());
            v1_section(&mut out, "hash", &h);
        }
        let at = out.len() as u64;
        v1_descriptor(&mut out, if last { "done" } else { "next" }, at, 0);
        out
    }

    /// Appends a v2 section (data padded to 16 bytes, then its descriptor).
    fn v2_section(out: &mut Vec<u8>, prev: &mut u64, kind: u32, data: &[u8]) {
        let pad = (16 - data.len() % 16) % 16;
        out.extend_from_slice(data);
        out.extend(std::iter::repeat_n(0u8, pad));
        let at = out.len() as u64;
        let mut d = [0u8; 64];
        d[0..4].copy_from_slice(&kind.to_le_bytes());
        d[8..16].copy_from_slice(&prev.to_le_bytes());
        d[16..24].copy_from_slice(&((data.len() + pad) as u64).to_le_bytes());
        d[24..28].copy_from_slice(&64u32.to_le_bytes());
        d[28..32].copy_from_slice(&(pad as u32).to_le_bytes());
        let sum = adler(&d[..60]);
        d[60..64].copy_from_slice(&sum.to_le_bytes());
        out.extend_from_slice(&d);
        *prev = at;
    }

    #[allow(clippy::too_many_arguments)]
    fn v2_segment(
        media: &[u8],
        spec: &Spec,
        number: usize,
        first: usize,
        chunks: &[&[u8]],
        last: bool,
        total_chunks: usize,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"EVF2\x0d\x0a\x81\x00");
        out.extend_from_slice(&[2, 1]);
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&(number as u32).to_le_bytes());
        out.extend((0..16).map(|i| 0xa0 + i as u8));
        let mut prev = 0u64;
        let sectors = media.len() / spec.bytes_per_sector as usize;
        let device = format!(
            "1\nmain\nsn\tmd\tlb\tts\ths\tdc\tdt\tpid\trs\tls\tbp\tph\nSN123\tModel X\t\t{sectors}\t0\t0\tf\t\t0\t0\t{}\t1\n\n",
            spec.bytes_per_sector
        );
        v2_section(&mut out, &mut prev, 1, &zlib(&utf16(&device)));
        let case = format!(
            "1\nmain\nnm\tcn\ten\tex\tnt\tav\tos\ttt\tat\ttb\tcp\tsb\tgr\twb\ndescription\t{}\tEV-7\t{}\tsome notes\ttrawl-test\tLinux\t1626967998\t1626968000\t{total_chunks}\t1\t{}\t{}\t\n\n",
            spec.case_number, spec.examiner, spec.sectors_per_chunk, spec.sectors_per_chunk
        );
        v2_section(&mut out, &mut prev, 2, &zlib(&utf16(&case)));
        if !chunks.is_empty() {
            let data_start = out.len() as u64;
            let mut body = Vec::new();
            let mut entries = Vec::new();
            for (k, c) in chunks.iter().enumerate() {
                if spec.pattern_fill && c.iter().all(|&b| b == 0) {
                    entries.extend_from_slice(&0u64.to_le_bytes());
                    entries.extend_from_slice(&0u32.to_le_bytes());
                    entries.extend_from_slice(&5u32.to_le_bytes());
                    continue;
                }
                let (stored, compressed) = encode_chunk(spec, first + k, c);
                let offset = data_start + body.len() as u64;
                entries.extend_from_slice(&offset.to_le_bytes());
                entries.extend_from_slice(&(stored.len() as u32).to_le_bytes());
                let flags: u32 = if compressed { 1 } else { 2 };
                entries.extend_from_slice(&flags.to_le_bytes());
                body.extend_from_slice(&stored);
                body.extend(std::iter::repeat_n(0u8, (16 - stored.len() % 16) % 16));
            }
            v2_section(&mut out, &mut prev, 3, &body);
            let mut t = vec![0u8; 32];
            t[0..8].copy_from_slice(&(first as u64).to_le_bytes());
            t[8..12].copy_from_slice(&(chunks.len() as u32).to_le_bytes());
            let sum = adler(&t[..16]);
            t[16..20].copy_from_slice(&sum.to_le_bytes());
            t.extend_from_slice(&entries);
            t.extend_from_slice(&adler(&entries).to_le_bytes());
            t.extend_from_slice(&[0u8; 12]);
            v2_section(&mut out, &mut prev, 4, &t);
        }
        if last {
            if !spec.errors.is_empty() {
                let mut e = vec![0u8; 32];
                e[0..4].copy_from_slice(&(spec.errors.len() as u32).to_le_bytes());
                let sum = adler(&e[..16]);
                e[16..20].copy_from_slice(&sum.to_le_bytes());
                let mut entries = Vec::new();
                for &(s, n) in &spec.errors {
                    entries.extend_from_slice(&s.to_le_bytes());
                    entries.extend_from_slice(&n.to_le_bytes());
                    entries.extend_from_slice(&[0u8; 4]);
                }
                e.extend_from_slice(&entries);
                e.extend_from_slice(&adler(&entries).to_le_bytes());
                e.extend_from_slice(&[0u8; 12]);
                v2_section(&mut out, &mut prev, 5, &e);
            }
            let md5 = Md5::digest(media);
            let mut h = md5.to_vec();
            h.extend_from_slice(&adler(&md5).to_le_bytes());
            v2_section(&mut out, &mut prev, 8, &h);
            let sha1 = Sha1::digest(media);
            let mut h = sha1.to_vec();
            h.extend_from_slice(&adler(&sha1).to_le_bytes());
            v2_section(&mut out, &mut prev, 9, &h);
        }
        v2_section(&mut out, &mut prev, if last { 0x0f } else { 0x0d }, &[]);
        out
    }
}

use util::*;
use writer::{Comp, Spec};

// ---------------------------------------------------------------------------
// Reference corpora

/// (path under the corpora, media MD5, stored MD5, stored SHA-1). The media
/// MD5s are the "MD5 hash calculated over data" of ewfverify (libewf
/// 20140813); the stored hashes are what ewfinfo reports.
const CORPUS: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "dfvfs-test-data/test_data/ext2.E01",
        "196066add11fb71c4c49cf1bb50d6d24",
        "196066add11fb71c4c49cf1bb50d6d24",
        None,
    ),
    (
        "dfvfs-test-data/test_data/ext2.split.E01",
        "196066add11fb71c4c49cf1bb50d6d24",
        "196066add11fb71c4c49cf1bb50d6d24",
        None,
    ),
    (
        "sleuthkit-test-data/test/data/image.E01",
        "3ebb0b7dcd6b5fcd59a0020625d70994",
        "3ebb0b7dcd6b5fcd59a0020625d70994",
        None,
    ),
    (
        "sleuthkit-test-data/test/data/imageformat_mmls_1.E01",
        "8ec671e301095c258224aad701740503",
        "8ec671e301095c258224aad701740503",
        Some("067bc6ab29685ee19b0cf82c9d15ac510d1e7d95"),
    ),
    (
        "bulk-extractor-test-data/src/tests/nps-2010-emails.E01",
        "7dae50cec8163697415e69fd72387c01",
        "7dae50cec8163697415e69fd72387c01",
        None,
    ),
    (
        "bulk-extractor-test-data/src/tests/CFReDS001.E01",
        "e4f9afba18011f0b9015a9d74cd3c3ac",
        "e4f9afba18011f0b9015a9d74cd3c3ac",
        None,
    ),
    // Its stored MD5 does not match the data (ewfverify: FAILURE); the last
    // chunk holds more bytes than the sector count covers.
    (
        "bulk-extractor-test-data/src/tests/email_test.E01",
        "63fa546614f5d732586f3ca06b59bc49",
        "b817ed2590eeeb39f42445088d369f6c",
        None,
    ),
    (
        "bulk-extractor-test-data/tests/Images/ansi.E01",
        "37ecb548bdc9f5f620ee3c3aa9cf00ef",
        "37ecb548bdc9f5f620ee3c3aa9cf00ef",
        None,
    ),
    (
        "bulk-extractor-test-data/tests/Images/german_ansi.E01",
        "37ecb548bdc9f5f620ee3c3aa9cf00ef",
        "37ecb548bdc9f5f620ee3c3aa9cf00ef",
        None,
    ),
    (
        "bulk-extractor-test-data/tests/Images/german_utf8.E01",
        "0f8b13379c8da8a8135e0ea3c6f01978",
        "0f8b13379c8da8a8135e0ea3c6f01978",
        None,
    ),
    (
        "bulk-extractor-test-data/tests/Images/kml_samples.E01",
        "f66a2f65a303818ce5b531c89ad939e3",
        "f66a2f65a303818ce5b531c89ad939e3",
        None,
    ),
    (
        "bulk-extractor-test-data/tests/Images/nps-2010-emails.E01",
        "2f5ec5894f7fe3cea93bd29e7cf1eb50",
        "2f5ec5894f7fe3cea93bd29e7cf1eb50",
        None,
    ),
];

mod corpus {
    use super::*;

    #[test]
    fn media_md5_and_stored_hashes_match_libewf() {
        let Some(dir) = corpora() else { return };
        for &(rel, media, stored_md5, stored_sha1) in CORPUS {
            let path = dir.join(rel);
            let ev = trawl_evidence::open(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert_eq!(ev.info().format, Format::Ewf);
            assert_eq!(media_md5(ev.as_ref()), media, "{rel}: media MD5");
            if let Some(libewf) = ewfverify_md5(&path) {
                assert_eq!(
                    libewf, media,
                    "{rel}: ewfverify disagrees with the constant"
                );
            }
            let stored = &ev.info().stored;
            assert_eq!(stored.md5.as_deref(), Some(stored_md5), "{rel}: stored MD5");
            assert_eq!(stored.sha1.as_deref(), stored_sha1, "{rel}: stored SHA-1");
            assert_eq!(ev.info().path, path);
            assert_eq!(ev.info().bytes_per_sector, 512);
            assert!(ev.info().acquisition_errors.is_empty());
        }
    }

    #[test]
    fn metadata_matches_ewfinfo() {
        let Some(dir) = corpora() else { return };
        // Hard-coded values as printed by ewfinfo 20140813 (TZ=UTC).
        let ext2 = EwfEvidence::open(&dir.join("dfvfs-test-data/test_data/ext2.E01")).unwrap();
        for (k, v) in [
            ("case_number", "case"),
            ("evidence_number", "evidence"),
            ("description", "description"),
            ("examiner_name", "examiner"),
            ("notes", "notes"),
            ("acquiry_date", "Thu Jul 22 15:33:18 2021"),
            ("system_date", "Thu Jul 22 15:33:18 2021"),
            ("acquiry_operating_system", "Linux"),
            ("acquiry_software_version", "20140812"),
            ("ewf_version", "1"),
            ("ewf_format", "ewf-e01"),
            ("chunk_size", "32768"),
            ("sectors_per_chunk", "64"),
            ("sector_count", "8192"),
            ("compression", "deflate"),
            ("compression_level", "best"),
            ("media_type", "fixed"),
            ("is_physical", "no"),
            ("error_granularity", "64"),
            ("segment_count", "1"),
        ] {
            assert_eq!(meta(&ext2, k), Some(v), "ext2.E01 {k}");
        }
        assert_eq!(ext2.size(), 4 << 20);
        assert_eq!(ext2.version(), 1);
        assert_eq!(ext2.chunk_count(), 128);

        let cfreds =
            EwfEvidence::open(&dir.join("bulk-extractor-test-data/src/tests/CFReDS001.E01"))
                .unwrap();
        for (k, v) in [
            ("case_number", "CFReDS001"),
            ("examiner_name", "JRL"),
            ("acquiry_date", "Thu Nov  4 03:56:35 2004"),
            ("acquiry_operating_system", "Windows 2000"),
            ("acquiry_software_version", "4.19a"),
            ("compression_level", "none"),
        ] {
            assert_eq!(meta(&cfreds, k), Some(v), "CFReDS001 {k}");
        }
        assert!(meta(&cfreds, "notes").is_none());

        // FTK Imager: only an ASCII header section, dates as fields.
        let ftk =
            EwfEvidence::open(&dir.join("sleuthkit-test-data/test/data/imageformat_mmls_1.E01"))
                .unwrap();
        for (k, v) in [
            ("case_number", "1"),
            ("description", "Test E01 for sleuthkit"),
            ("examiner_name", "Rishwanth"),
            ("notes", "Used to test sleuthkit libraries"),
            ("acquiry_date", "Wed May 16 15:05:08 2018"),
            ("acquiry_operating_system", "Windows 200x"),
            ("acquiry_software_version", "ADI2.9.0.13"),
            ("sector_count", "122881"),
        ] {
            assert_eq!(meta(&ftk, k), Some(v), "imageformat_mmls_1 {k}");
        }
        let nps =
            EwfEvidence::open(&dir.join("bulk-extractor-test-data/src/tests/nps-2010-emails.E01"))
                .unwrap();
        assert_eq!(
            meta(&nps, "set_identifier"),
            Some("e0ecd81f-12b7-9746-bb5f-b433290a8492")
        );
        assert_eq!(meta(&nps, "media_type"), Some("removable"));

        // And against ewfinfo itself, for every corpus image, when installed.
        let map = [
            ("Case number", "case_number"),
            ("Description", "description"),
            ("Examiner name", "examiner_name"),
            ("Evidence number", "evidence_number"),
            ("Notes", "notes"),
            ("Acquisition date", "acquiry_date"),
            ("System date", "system_date"),
            ("Operating system used", "acquiry_operating_system"),
            ("Software version used", "acquiry_software_version"),
            ("Set identifier", "set_identifier"),
            ("Sectors per chunk", "sectors_per_chunk"),
            ("Number of sectors", "sector_count"),
            ("Bytes per sector", "bytes_per_sector"),
        ];
        for &(rel, ..) in CORPUS {
            let path = dir.join(rel);
            let Some(lines) = ewfinfo(&path) else { return };
            let ev = EwfEvidence::open(&path).unwrap();
            let mut compared = 0;
            for (label, value) in &lines {
                let Some(&(_, key)) = map.iter().find(|(l, _)| l == label) else {
                    continue;
                };
                assert_eq!(meta(&ev, key), Some(value.as_str()), "{rel}: {label}");
                compared += 1;
            }
            assert!(
                compared >= 6,
                "{rel}: only {compared} ewfinfo values compared"
            );
            for (label, value) in &lines {
                match label.as_str() {
                    "MD5" => assert_eq!(ev.info().stored.md5.as_deref(), Some(value.as_str())),
                    "SHA1" => assert_eq!(ev.info().stored.sha1.as_deref(), Some(value.as_str())),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn multi_segment_reads_cross_boundaries() {
        let Some(dir) = corpora() else { return };
        let single = EwfEvidence::open(&dir.join("dfvfs-test-data/test_data/ext2.E01")).unwrap();
        let split =
            EwfEvidence::open(&dir.join("dfvfs-test-data/test_data/ext2.split.E01")).unwrap();
        assert_eq!(split.info().segments.len(), 2);
        assert!(split.info().segments[1].ends_with("ext2.split.E02"));
        assert_eq!(meta(&split, "segment_count"), Some("2"));
        // The first segment holds 95 chunks of 32 KiB.
        let boundary = 95 * 32768u64;
        for (start, len) in [
            (boundary - 1, 2usize),
            (boundary - 4096, 8192),
            (boundary - 100_000, 300_000),
            (boundary - 32768, 65536),
            (0, 4 << 20),
        ] {
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            split.read_exact_at(start, &mut a).unwrap();
            single.read_exact_at(start, &mut b).unwrap();
            assert!(a == b, "bytes differ at {start}+{len}");
        }
        // Four segments, 31 chunks each but the last.
        let email =
            trawl_evidence::open(dir.join("bulk-extractor-test-data/src/tests/email_test.E01"))
                .unwrap();
        assert_eq!(email.info().segments.len(), 4);
        let all = read_all(email.as_ref());
        for seg_end in [31u64, 62, 93] {
            let at = seg_end * 32768 - 7;
            let mut buf = vec![0u8; 77];
            email.read_exact_at(at, &mut buf).unwrap();
            assert_eq!(buf, all[at as usize..at as usize + 77]);
        }
        // Explicit segment lists, in any order.
        let given = vec![
            dir.join("bulk-extractor-test-data/src/tests/email_test.E03"),
            dir.join("bulk-extractor-test-data/src/tests/email_test.E01"),
            dir.join("bulk-extractor-test-data/src/tests/email_test.E04"),
            dir.join("bulk-extractor-test-data/src/tests/email_test.E02"),
        ];
        let ev = trawl_evidence::open_segments(&given).unwrap();
        assert_eq!(ev.info().segments.len(), 4);
        assert!(ev.info().segments[0].ends_with("email_test.E01"));
        assert_eq!(media_md5(ev.as_ref()), "63fa546614f5d732586f3ca06b59bc49");
    }

    #[test]
    fn random_reads_match_sequential_and_ewfexport() {
        let Some(dir) = corpora() else { return };
        let tmp = tempfile::tempdir().unwrap();
        for rel in [
            "dfvfs-test-data/test_data/ext2.E01",
            "bulk-extractor-test-data/src/tests/email_test.E01",
            "bulk-extractor-test-data/src/tests/nps-2010-emails.E01",
            "sleuthkit-test-data/test/data/image.E01",
        ] {
            let path = dir.join(rel);
            let ev = EwfEvidence::open(&path).unwrap();
            let all = read_all(&ev);
            if let Some(export) = ewfexport(&path, tmp.path()) {
                assert!(export == all, "{rel}: differs from ewfexport's raw output");
            }
            // Small odd-sized sequential reads go through the chunk cache.
            assert!(
                read_all_with(&ev, 4093).unwrap() == all,
                "{rel}: 4093-byte reads"
            );
            let size = all.len() as u64;
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..600 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let off = x % (size + 100);
                let len = ((x >> 40) % 200_000) as usize + 1;
                let mut buf = vec![0xeeu8; len];
                let n = ev.read_at(off, &mut buf).unwrap();
                let expect = if off >= size {
                    0
                } else {
                    (size - off).min(len as u64) as usize
                };
                assert_eq!(n, expect, "{rel}: read_at({off}, {len})");
                if n > 0 {
                    assert!(
                        buf[..n] == all[off as usize..off as usize + n],
                        "{rel}: {off}+{len}"
                    );
                }
            }
        }
    }

    #[test]
    fn four_threads_read_identical_bytes() {
        let Some(dir) = corpora() else { return };
        let ev = std::sync::Arc::new(
            EwfEvidence::open(&dir.join("bulk-extractor-test-data/tests/Images/kml_samples.E01"))
                .unwrap(),
        );
        let all = read_all(ev.as_ref());
        let handles: Vec<_> = (0..4usize)
            .map(|t| {
                let ev = ev.clone();
                std::thread::spawn(move || {
                    // Each thread reads everything, in its own block size
                    // and order, several times over.
                    let size = ev.size() as usize;
                    let block = [4096usize, 1000, 65536, 32768 + 17][t];
                    let mut out = vec![0u8; size];
                    for round in 0..3 {
                        let mut offs: Vec<usize> = (0..size).step_by(block).collect();
                        if (t + round) % 2 == 1 {
                            offs.reverse();
                        }
                        for off in offs {
                            let n = block.min(size - off);
                            ev.read_exact_at(off as u64, &mut out[off..off + n])
                                .unwrap();
                        }
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap() == all);
        }
    }

    fn copy_to(tmp: &Path, src: &Path) -> PathBuf {
        let dst = tmp.join(src.file_name().unwrap());
        std::fs::copy(src, &dst).unwrap();
        let mut perm = std::fs::metadata(&dst).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&dst, perm).unwrap();
        dst
    }

    #[test]
    fn missing_segment_is_named() {
        let Some(dir) = corpora() else { return };
        let tmp = tempfile::tempdir().unwrap();
        let e01 = copy_to(
            tmp.path(),
            &dir.join("dfvfs-test-data/test_data/ext2.split.E01"),
        );
        match trawl_evidence::open(&e01).unwrap_err() {
            EvidenceError::MissingSegment { path, expected, .. } => {
                assert_eq!(path, e01);
                assert!(expected.ends_with("ext2.split.E02"), "{expected}");
            }
            e => panic!("expected MissingSegment, got {e}"),
        }
        // A gap in an explicit list.
        let d = dir.join("bulk-extractor-test-data/src/tests");
        let given = vec![
            d.join("email_test.E01"),
            d.join("email_test.E02"),
            d.join("email_test.E04"),
        ];
        match EwfEvidence::open_segments(&given).unwrap_err() {
            EvidenceError::MissingSegment { expected, .. } => {
                assert!(expected.ends_with("email_test.E03"), "{expected}");
            }
            e => panic!("expected MissingSegment, got {e}"),
        }
        // A list that stops before the set does.
        let given = vec![d.join("email_test.E01"), d.join("email_test.E02")];
        match EwfEvidence::open_segments(&given).unwrap_err() {
            EvidenceError::MissingSegment { expected, .. } => {
                assert!(expected.ends_with("email_test.E03"), "{expected}");
            }
            e => panic!("expected MissingSegment, got {e}"),
        }
        // Opening the second segment alone: segment 1 is missing.
        let e02 = copy_to(
            tmp.path(),
            &dir.join("dfvfs-test-data/test_data/ext2.split.E02"),
        );
        match EwfEvidence::open(&e02).unwrap_err() {
            EvidenceError::MissingSegment { path, expected, .. } => {
                assert_eq!(path, e02);
                assert!(expected.ends_with("ext2.split.E01"), "{expected}");
            }
            e => panic!("expected MissingSegment, got {e}"),
        }
    }

    #[test]
    fn corrupt_chunks_fail_reads_naming_file_and_offset() {
        let Some(dir) = corpora() else { return };
        let tmp = tempfile::tempdir().unwrap();
        // ext2.E01: compressed chunks; chunk 0 is stored at 1871 + 76.
        let p = copy_to(tmp.path(), &dir.join("dfvfs-test-data/test_data/ext2.E01"));
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[1947 + 40] ^= 0x55;
        std::fs::write(&p, &bytes).unwrap();
        let ev = EwfEvidence::open(&p).unwrap();
        let mut buf = vec![0u8; 4096];
        match ev.read_at(100, &mut buf).unwrap_err() {
            EvidenceError::Corrupt { path, offset, what } => {
                assert_eq!(path, p);
                assert_eq!(offset, 1947);
                assert!(what.contains("chunk 0"), "{what}");
            }
            e => panic!("expected Corrupt, got {e}"),
        }
        // Chunk 1 is intact and still readable.
        ev.read_exact_at(32768, &mut buf).unwrap();

        // image.E01: uncompressed chunks with Adler-32 checksums; chunk 2 is
        // at 1790 + 0x10054.
        let p = copy_to(
            tmp.path(),
            &dir.join("sleuthkit-test-data/test/data/image.E01"),
        );
        let mut bytes = std::fs::read(&p).unwrap();
        let chunk2 = 1790 + 0x10054;
        bytes[chunk2 + 1000] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let ev = EwfEvidence::open(&p).unwrap();
        let mut whole = vec![0u8; 32768 * 2];
        match ev.read_at(32768, &mut whole).unwrap_err() {
            EvidenceError::Corrupt { path, offset, what } => {
                assert_eq!(path, p);
                assert_eq!(offset, chunk2 as u64);
                assert!(what.contains("checksum"), "{what}");
            }
            e => panic!("expected Corrupt, got {e}"),
        }
        ev.read_exact_at(0, &mut whole[..32768]).unwrap();
    }

    #[test]
    fn damaged_table_falls_back_to_table2() {
        let Some(dir) = corpora() else { return };
        let tmp = tempfile::tempdir().unwrap();
        let src = dir.join("dfvfs-test-data/test_data/ext2.E01");
        let orig = std::fs::read(&src).unwrap();
        // table at 9574, table2 at 10190; entries start 76 + 24 in.
        let table_entries = 9574 + 100;
        let table2_entries = 10190 + 100;

        let p = tmp.path().join("t1.E01");
        let mut b = orig.clone();
        b[table_entries + 10] ^= 0x10;
        std::fs::write(&p, &b).unwrap();
        let ev = EwfEvidence::open(&p).unwrap();
        assert_eq!(media_md5(&ev), "196066add11fb71c4c49cf1bb50d6d24");
        assert!(meta(&ev, "warnings").unwrap().contains("table2"));

        // Both copies damaged: the table's chunks are known but unreadable.
        let p = tmp.path().join("t2.E01");
        b[table2_entries + 10] ^= 0x10;
        std::fs::write(&p, &b).unwrap();
        let ev = EwfEvidence::open(&p).unwrap();
        let mut buf = [0u8; 512];
        match ev.read_at(0, &mut buf).unwrap_err() {
            EvidenceError::Corrupt { path, offset, .. } => {
                assert_eq!(path, p);
                assert_eq!(offset, table_entries as u64);
            }
            e => panic!("expected Corrupt, got {e}"),
        }

        // Both table headers damaged: the image cannot be opened.
        let p = tmp.path().join("t3.E01");
        let mut b = orig.clone();
        b[9574 + 76] ^= 1;
        b[10190 + 76] ^= 1;
        std::fs::write(&p, &b).unwrap();
        match EwfEvidence::open(&p).unwrap_err() {
            EvidenceError::Corrupt { path, offset, what } => {
                assert_eq!(path, p);
                assert_eq!(offset, 9574 + 76);
                assert!(what.contains("checksum"), "{what}");
            }
            e => panic!("expected Corrupt, got {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Images written by the test writer (no external tools needed)

mod written {
    use super::*;

    fn check(tmp: &Path, name: &str, media: &[u8], spec: &Spec) -> EwfEvidence {
        let paths = writer::write(tmp, name, media, spec);
        let ev = EwfEvidence::open(&paths[0]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ev.info().segments, paths, "{name}");
        assert_eq!(ev.size(), media.len() as u64, "{name}");
        let all = read_all(&ev);
        assert!(all == media, "{name}: media differs");
        assert!(
            read_all_with(&ev, 777).unwrap() == media,
            "{name}: small reads"
        );
        assert_eq!(
            ev.info().stored.md5.as_deref(),
            Some(md5_hex(media).as_str())
        );
        assert_eq!(
            ev.info().stored.sha1.as_deref(),
            Some(sha1_hex(media).as_str())
        );
        if let Some(libewf) = pyewf_md5(&paths[0]) {
            assert_eq!(
                libewf,
                md5_hex(media),
                "{name}: pyewf reads the written image differently"
            );
        }
        if let Some(libewf) = ewfverify_md5(&paths[0]) {
            assert_eq!(
                libewf,
                md5_hex(media),
                "{name}: ewfverify reads the written image differently"
            );
        }
        ev
    }

    #[test]
    fn v1_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let mut n = 0;
        for comp in [Comp::None, Comp::Best, Comp::Mixed] {
            for spc in [1u32, 16, 64] {
                for (len, segs) in [
                    (512 * 100, usize::MAX),
                    (512 * 333, 4),
                    (512 * 64 * 5, 2),
                    (0, 1),
                ] {
                    let media = media(len, n);
                    let mut spec = Spec::new(1);
                    spec.comp = comp;
                    spec.sectors_per_chunk = spc;
                    spec.chunks_per_segment = segs;
                    let ev = check(tmp.path(), &format!("v1_{n}"), &media, &spec);
                    assert_eq!(meta(&ev, "case_number"), Some("CASE-42"));
                    assert_eq!(meta(&ev, "examiner_name"), Some("Ex Aminer"));
                    assert_eq!(meta(&ev, "acquiry_date"), Some("Thu Jul 22 15:33:18 2021"));
                    assert_eq!(
                        meta(&ev, "set_identifier"),
                        Some("13121110-1514-1716-1819-1a1b1c1d1e1f")
                    );
                    n += 1;
                }
            }
        }
    }

    #[test]
    fn v2_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let mut n = 100;
        for comp in [Comp::None, Comp::Best, Comp::Mixed] {
            for pattern_fill in [false, true] {
                for (len, segs) in [(512 * 100, usize::MAX), (512 * 333, 4), (512 * 16 * 9, 3)] {
                    let media = media(len, n);
                    let mut spec = Spec::new(2);
                    spec.comp = comp;
                    spec.pattern_fill = pattern_fill;
                    spec.chunks_per_segment = segs;
                    let ev = check(tmp.path(), &format!("v2_{n}"), &media, &spec);
                    assert_eq!(ev.version(), 2);
                    for (k, v) in [
                        ("case_number", "CASE-42"),
                        ("examiner_name", "Ex Aminer"),
                        ("evidence_number", "EV-7"),
                        ("description", "description"),
                        ("notes", "some notes"),
                        ("acquiry_date", "Thu Jul 22 15:33:20 2021"),
                        ("system_date", "Thu Jul 22 15:33:18 2021"),
                        ("acquiry_software_version", "trawl-test"),
                        ("acquiry_operating_system", "Linux"),
                        ("model", "Model X"),
                        ("serial_number", "SN123"),
                        ("media_type", "fixed"),
                        ("is_physical", "yes"),
                        ("ewf_version", "2"),
                        ("ewf_format", "ewf2-ex01"),
                        ("compression", "deflate"),
                        ("chunk_size", "8192"),
                        ("set_identifier", "a3a2a1a0-a5a4-a7a6-a8a9-aaabacadaeaf"),
                    ] {
                        assert_eq!(meta(&ev, k), Some(v), "v2_{n} {k}");
                    }
                    n += 1;
                }
            }
        }
    }

    #[test]
    fn explicit_segment_lists_and_missing_segments() {
        let tmp = tempfile::tempdir().unwrap();
        for version in [1u8, 2] {
            let media = media(512 * 16 * 7, 21);
            let mut spec = Spec::new(version);
            spec.chunks_per_segment = 2;
            let paths = writer::write(tmp.path(), &format!("list{version}"), &media, &spec);
            assert_eq!(paths.len(), 4);
            // Any order; ordered by the segment numbers in the headers.
            let mut given = paths.clone();
            given.reverse();
            let ev = trawl_evidence::open_segments(&given).unwrap();
            assert_eq!(ev.info().segments, paths);
            assert!(read_all(ev.as_ref()) == media);
            // A gap.
            let gap = vec![paths[0].clone(), paths[1].clone(), paths[3].clone()];
            match trawl_evidence::open_segments(&gap).unwrap_err() {
                EvidenceError::MissingSegment { expected, .. } => {
                    assert_eq!(expected, paths[2].display().to_string());
                }
                e => panic!("expected MissingSegment, got {e}"),
            }
            // A discovered set with its last segment gone.
            std::fs::remove_file(&paths[3]).unwrap();
            match EwfEvidence::open(&paths[0]).unwrap_err() {
                EvidenceError::MissingSegment { path, expected, .. } => {
                    assert_eq!(path, paths[0]);
                    assert_eq!(expected, paths[3].display().to_string());
                }
                e => panic!("expected MissingSegment, got {e}"),
            }
            // A segment of another image in its place.
            let other = writer::write(tmp.path(), &format!("other{version}"), &media, &{
                let mut s = spec.clone();
                s.sectors_per_chunk = 8;
                s
            });
            std::fs::copy(&other[3], &paths[3]).unwrap();
            assert!(EwfEvidence::open(&paths[0]).is_err());
        }
    }

    /// A segment file past 2 GiB written the way EnCase before 6.7 did: no
    /// base offset, so chunk offsets past 2 GiB run into the compression bit
    /// (libewf's "overflow" handling). The file is sparse: 130 chunks of
    /// 16 MiB, mostly holes.
    #[test]
    fn v1_offsets_past_2_gib_overflow_the_compression_bit() {
        use std::os::unix::fs::FileExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("big.E01");
        let spc = 32768u32;
        let cs = 512 * spc as usize;
        let n = 130usize;
        let stored = cs as u64 + 4;
        let mut head = Vec::new();
        head.extend_from_slice(b"EVF\x09\x0d\x0a\xff\x00\x01\x01\x00\x00\x00");
        let mut vol = vec![0u8; 1052];
        vol[0] = 1;
        vol[4..8].copy_from_slice(&(n as u32).to_le_bytes());
        vol[8..12].copy_from_slice(&spc.to_le_bytes());
        vol[12..16].copy_from_slice(&512u32.to_le_bytes());
        vol[16..24].copy_from_slice(&(n as u64 * u64::from(spc)).to_le_bytes());
        let sum = adler2::adler32_slice(&vol[..1048]);
        vol[1048..].copy_from_slice(&sum.to_le_bytes());
        let desc = |kind: &str, at: u64, next: u64| {
            let mut d = [0u8; 76];
            d[..kind.len()].copy_from_slice(kind.as_bytes());
            d[16..24].copy_from_slice(&next.to_le_bytes());
            d[24..32].copy_from_slice(&(next - at).to_le_bytes());
            let sum = adler2::adler32_slice(&d[..72]);
            d[72..].copy_from_slice(&sum.to_le_bytes());
            d
        };
        let vol_at = 13u64;
        let sectors_at = vol_at + 76 + 1052;
        let first_chunk = sectors_at + 76;
        let table_at = first_chunk + n as u64 * stored;
        let entries: Vec<u8> = (0..n as u64)
            .flat_map(|k| ((first_chunk + k * stored) as u32).to_le_bytes())
            .collect();
        let mut table = vec![0u8; 24];
        table[..4].copy_from_slice(&(n as u32).to_le_bytes());
        let sum = adler2::adler32_slice(&table[..20]);
        table[20..24].copy_from_slice(&sum.to_le_bytes());
        table.extend_from_slice(&entries);
        table.extend_from_slice(&adler2::adler32_slice(&entries).to_le_bytes());
        let table2_at = table_at + 76 + table.len() as u64;
        let done_at = table2_at + 76 + table.len() as u64;

        let f = std::fs::File::create(&p).unwrap();
        f.set_len(done_at + 76).unwrap();
        f.write_all_at(&head, 0).unwrap();
        f.write_all_at(&desc("volume", vol_at, sectors_at), vol_at)
            .unwrap();
        f.write_all_at(&vol, vol_at + 76).unwrap();
        f.write_all_at(&desc("sectors", sectors_at, table_at), sectors_at)
            .unwrap();
        let zero_sum = adler2::adler32_slice(&vec![0u8; cs]);
        let marked = [0usize, 126, 127, 128, 129];
        let mut chunk = vec![0u8; cs];
        for k in 0..n {
            let at = first_chunk + k as u64 * stored;
            let sum = if marked.contains(&k) {
                chunk[..64].fill(k as u8 + 1);
                chunk[cs - 64..].fill(!(k as u8));
                f.write_all_at(&chunk[..64], at).unwrap();
                f.write_all_at(&chunk[cs - 64..], at + cs as u64 - 64)
                    .unwrap();
                adler2::adler32_slice(&chunk)
            } else {
                zero_sum
            };
            f.write_all_at(&sum.to_le_bytes(), at + cs as u64).unwrap();
        }
        assert!(
            first_chunk + 128 * stored > 1 << 31,
            "chunk 128 must lie past 2 GiB"
        );
        f.write_all_at(&desc("table", table_at, table2_at), table_at)
            .unwrap();
        f.write_all_at(&table, table_at + 76).unwrap();
        f.write_all_at(&desc("table2", table2_at, done_at), table2_at)
            .unwrap();
        f.write_all_at(&table, table2_at + 76).unwrap();
        let mut done = [0u8; 76];
        done[..4].copy_from_slice(b"done");
        done[16..24].copy_from_slice(&done_at.to_le_bytes());
        let sum = adler2::adler32_slice(&done[..72]);
        done[72..].copy_from_slice(&sum.to_le_bytes());
        f.write_all_at(&done, done_at).unwrap();
        drop(f);

        let ev = EwfEvidence::open(&p).unwrap();
        assert_eq!(ev.size(), (n * cs) as u64);
        let mut buf = vec![0u8; cs];
        for k in [0usize, 1, 126, 127, 128, 129] {
            ev.read_exact_at((k * cs) as u64, &mut buf).unwrap();
            let (a, z) = if marked.contains(&k) {
                (k as u8 + 1, !(k as u8))
            } else {
                (0, 0)
            };
            assert!(buf[..64].iter().all(|&b| b == a), "chunk {k} head");
            assert!(buf[64..cs - 64].iter().all(|&b| b == 0), "chunk {k} body");
            assert!(buf[cs - 64..].iter().all(|&b| b == z), "chunk {k} tail");
        }
        // A read spanning the 2 GiB point in the file.
        let mut span = vec![0u8; 1000];
        ev.read_exact_at((128 * cs - 500) as u64, &mut span)
            .unwrap();
        assert!(span[..436].iter().all(|&b| b == 0));
        assert!(span[436..500].iter().all(|&b| b == !127u8));
        assert!(span[500..564].iter().all(|&b| b == 129));
        // libewf reads the same media (hashed here from what was written).
        if let Some(libewf) = ewfverify_md5(&p) {
            let mut h = Md5::new();
            for k in 0..n {
                buf.fill(0);
                if marked.contains(&k) {
                    buf[..64].fill(k as u8 + 1);
                    buf[cs - 64..].fill(!(k as u8));
                }
                h.update(&buf);
            }
            assert_eq!(libewf, hex::encode(h.finalize()));
        }
    }

    #[test]
    fn acquisition_errors_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        for version in [1u8, 2] {
            let mut spec = Spec::new(version);
            spec.errors = vec![(10, 5), (70, 1)];
            let ev = check(
                tmp.path(),
                &format!("err{version}"),
                &media(512 * 128, 9),
                &spec,
            );
            let errs: Vec<(u64, u64)> = ev
                .info()
                .acquisition_errors
                .iter()
                .map(|e| (e.first_sector, e.sector_count))
                .collect();
            assert_eq!(errs, [(10, 5), (70, 1)]);
        }
    }

    #[test]
    fn v2_damage_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let media = media(512 * 64, 3);
        let paths = writer::write(tmp.path(), "dmg", &media, &Spec::new(2));
        let orig = std::fs::read(&paths[0]).unwrap();
        // The last descriptor (done) is the file's last 64 bytes.
        let mut b = orig.clone();
        let n = b.len();
        b[n - 30] ^= 1;
        std::fs::write(&paths[0], &b).unwrap();
        match EwfEvidence::open(&paths[0]).unwrap_err() {
            EvidenceError::Corrupt { path, offset, .. } => {
                assert_eq!(path, paths[0]);
                assert_eq!(offset, n as u64 - 64);
            }
            e => panic!("expected Corrupt, got {e}"),
        }
        // Truncated: no descriptor at the end.
        std::fs::write(&paths[0], &orig[..orig.len() - 10]).unwrap();
        assert!(EwfEvidence::open(&paths[0]).is_err());
        // Encrypted sections are refused clearly.
        let mut b = orig.clone();
        let d = n - 64;
        b[d + 4] = 2;
        let sum = adler2::adler32_slice(&b[d..d + 60]);
        b[d + 60..d + 64].copy_from_slice(&sum.to_le_bytes());
        std::fs::write(&paths[0], &b).unwrap();
        assert!(matches!(
            EwfEvidence::open(&paths[0]).unwrap_err(),
            EvidenceError::Unsupported { .. }
        ));
        // bzip2 compression is refused clearly.
        let mut b = orig.clone();
        b[10] = 2;
        std::fs::write(&paths[0], &b).unwrap();
        assert!(matches!(
            EwfEvidence::open(&paths[0]).unwrap_err(),
            EvidenceError::Unsupported { .. }
        ));
    }

    /// Rewrites the v1 section descriptor at `at` with `f` applied, fixing
    /// its checksum.
    fn patch_descriptor(b: &mut [u8], at: usize, f: impl FnOnce(&mut [u8])) {
        f(&mut b[at..at + 76]);
        let sum = adler2::adler32_slice(&b[at..at + 72]);
        b[at + 72..at + 76].copy_from_slice(&sum.to_le_bytes());
    }

    /// Offsets of the v1 sections of `b`, by walking the chain.
    fn v1_sections(b: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut off = 13usize;
        loop {
            let kind = String::from_utf8_lossy(&b[off..off + 16])
                .trim_end_matches('\0')
                .to_string();
            let next = u64::from_le_bytes(b[off + 16..off + 24].try_into().unwrap()) as usize;
            out.push((kind.clone(), off));
            if kind == "done" || kind == "next" {
                return out;
            }
            off = next;
        }
    }

    #[test]
    fn v1_structural_damage_is_an_error_naming_file_and_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let media = media(512 * 64, 5);
        let paths = writer::write(tmp.path(), "s", &media, &Spec::new(1));
        let p = &paths[0];
        let orig = std::fs::read(p).unwrap();
        let sections = v1_sections(&orig);
        let at = |kind: &str| sections.iter().find(|(k, _)| k == kind).unwrap().1;

        let expect_err = |b: &[u8], want_offset: usize, needle: &str| {
            std::fs::write(p, b).unwrap();
            match EwfEvidence::open(p).unwrap_err() {
                EvidenceError::Corrupt { path, offset, what }
                | EvidenceError::Truncated { path, offset, what } => {
                    assert_eq!(&path, p);
                    assert_eq!(offset, want_offset as u64, "{what}");
                    assert!(what.contains(needle), "{what} lacks {needle}");
                }
                e => panic!("unexpected error {e}"),
            }
        };

        // A bad descriptor checksum.
        let mut b = orig.clone();
        b[at("volume") + 20] ^= 1;
        expect_err(&b, at("volume"), "checksum");
        // A next offset that loops back.
        let mut b = orig.clone();
        let sectors = at("sectors");
        patch_descriptor(&mut b, sectors, |d| {
            d[16..24].copy_from_slice(&13u64.to_le_bytes())
        });
        expect_err(&b, sectors, "loop");
        // A next offset past the end of the file.
        let mut b = orig.clone();
        patch_descriptor(&mut b, sectors, |d| {
            d[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
            d[24..32].copy_from_slice(&0u64.to_le_bytes());
        });
        expect_err(&b, sectors, "past the end");
        // Zero bytes per sector in the volume section.
        let mut b = orig.clone();
        let v = at("volume") + 76;
        b[v + 12..v + 16].copy_from_slice(&0u32.to_le_bytes());
        let sum = adler2::adler32_slice(&b[v..v + 1048]);
        b[v + 1048..v + 1052].copy_from_slice(&sum.to_le_bytes());
        expect_err(&b, v, "zero bytes per sector");
        // An absurd sector count: the tables cannot cover it.
        let mut b = orig.clone();
        b[v + 16..v + 24].copy_from_slice(&(u64::MAX / 4096).to_le_bytes());
        let sum = adler2::adler32_slice(&b[v..v + 1048]);
        b[v + 1048..v + 1052].copy_from_slice(&sum.to_le_bytes());
        std::fs::write(p, &b).unwrap();
        assert!(EwfEvidence::open(p).is_err());
        // Truncation in the middle of the chunk data.
        std::fs::write(p, &orig[..at("table") - 100]).unwrap();
        assert!(matches!(
            EwfEvidence::open(p).unwrap_err(),
            EvidenceError::Truncated { .. }
        ));
        // A segment number that is not 1.
        let mut b = orig.clone();
        b[9] = 2;
        expect_err(&b, 9, "segment number");
        // A table entry pointing past the end of the file: that chunk fails.
        let mut b = orig.clone();
        let e = at("table") + 76 + 24 + 4 * 3;
        b[e..e + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        let t2 = at("table2") + 76 + 24 + 4 * 3;
        b[t2..t2 + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        for base in [at("table"), at("table2")] {
            let s = base + 76 + 24;
            let entries = &b[s..s + 16];
            let sum = adler2::adler32_slice(entries);
            b[s + 16..s + 20].copy_from_slice(&sum.to_le_bytes());
        }
        std::fs::write(p, &b).unwrap();
        let ev = EwfEvidence::open(p).unwrap();
        let mut buf = vec![0u8; 8192];
        ev.read_exact_at(0, &mut buf).unwrap();
        assert!(ev.read_exact_at(8192 * 2, &mut buf).is_err());
        assert!(ev.read_exact_at(8192 * 3, &mut buf).is_err());
        ev.read_exact_at(8192, &mut buf).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Images made by ewf-tools' ewfacquire, in every output format it offers

mod acquired {
    use super::*;

    #[test]
    fn every_ewfacquire_format_reads_back() {
        if !have("ewfacquire") {
            trawl_fixtures::skip("ewfacquire comparisons", "ewfacquire (Debian ewf-tools)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("media.raw");
        let media = media(512 * 3001, 77);
        std::fs::write(&raw, &media).unwrap();
        let want = md5_hex(&media);
        let formats = [
            "ewf", "smart", "ftk", "encase1", "encase2", "encase3", "encase4", "encase5",
            "encase6", "encase7", "linen5", "linen6", "linen7", "ewfx",
        ];
        for (i, fmt) in formats.iter().enumerate() {
            for comp in ["none", "empty-block", "fast", "best"] {
                let target = tmp.path().join(format!("{fmt}_{comp}"));
                let first = ewfacquire(
                    &raw,
                    &target,
                    &[
                        "-f",
                        fmt,
                        "-c",
                        comp,
                        "-b",
                        ["64", "16", "128"][i % 3],
                        "-C",
                        "Case #1",
                        "-E",
                        "EV 2",
                        "-e",
                        "Examiner",
                        "-D",
                        "Desc",
                        "-N",
                        "Notes",
                        "-d",
                        "sha1",
                    ],
                )
                .unwrap();
                let ev =
                    trawl_evidence::open(&first).unwrap_or_else(|e| panic!("{fmt}/{comp}: {e}"));
                assert_eq!(media_md5(ev.as_ref()), want, "{fmt}/{comp}");
                assert_eq!(ev.size(), media.len() as u64);
                assert_eq!(
                    ev.info().stored.md5.as_deref(),
                    Some(want.as_str()),
                    "{fmt}/{comp}"
                );
                if *fmt == "smart" {
                    assert!(
                        first.to_str().unwrap().ends_with(".s01"),
                        "{}",
                        first.display()
                    );
                } else if *fmt != "ewf" {
                    assert_eq!(
                        meta(ev.as_ref(), "case_number"),
                        Some("Case #1"),
                        "{fmt}/{comp}"
                    );
                    assert_eq!(
                        meta(ev.as_ref(), "examiner_name"),
                        Some("Examiner"),
                        "{fmt}/{comp}"
                    );
                }
            }
        }
    }

    #[test]
    fn ewfacquire_multi_segment_sets() {
        if !have("ewfacquire") {
            trawl_fixtures::skip("ewfacquire comparisons", "ewfacquire (Debian ewf-tools)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("media.raw");
        // Mostly incompressible, so 1 MiB segments make several files.
        let media = media(512 * 16000, 5);
        std::fs::write(&raw, &media).unwrap();
        for (fmt, comp) in [
            ("encase6", "best"),
            ("encase6", "none"),
            ("smart", "best"),
            ("ftk", "fast"),
        ] {
            let target = tmp.path().join(format!("seg_{fmt}_{comp}"));
            let first =
                ewfacquire(&raw, &target, &["-f", fmt, "-c", comp, "-S", "1048576"]).unwrap();
            let ev = trawl_evidence::open(&first).unwrap();
            assert!(
                ev.info().segments.len() >= 2,
                "{fmt}/{comp}: {:?}",
                ev.info().segments
            );
            assert!(read_all(ev.as_ref()) == media, "{fmt}/{comp}");
            assert!(
                read_all_with(ev.as_ref(), 5000).unwrap() == media,
                "{fmt}/{comp}"
            );
            if let Some(libewf) = ewfverify_md5(&first) {
                assert_eq!(libewf, md5_hex(&media));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Damaged images: never a panic, a hang or an absurd allocation

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// Small images to damage: EWF v1 (compressed and not, two segments,
    /// SMART-like chunk sizes) and v2, from the test writer; ext2.E01 from
    /// the corpora when present.
    fn bases() -> &'static Vec<(String, Vec<Vec<u8>>)> {
        static BASES: OnceLock<Vec<(String, Vec<Vec<u8>>)>> = OnceLock::new();
        BASES.get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let media = media(512 * 40, 11);
            let mut out = Vec::new();
            for (name, version, comp, segs) in [
                ("v1mixed", 1u8, Comp::Mixed, usize::MAX),
                ("v1split", 1, Comp::Best, 2),
                ("v2mixed", 2, Comp::Mixed, usize::MAX),
                ("v2split", 2, Comp::None, 2),
            ] {
                let mut spec = Spec::new(version);
                spec.comp = comp;
                spec.chunks_per_segment = segs;
                spec.sectors_per_chunk = 8;
                spec.pattern_fill = version == 2;
                spec.errors = vec![(3, 2)];
                let paths = writer::write(tmp.path(), name, &media, &spec);
                out.push((
                    name.to_string(),
                    paths.iter().map(|p| std::fs::read(p).unwrap()).collect(),
                ));
            }
            if let Some(dir) = std::env::var_os("TRAWL_CORPORA")
                .map(PathBuf::from)
                .or_else(|| {
                    Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora"))
                })
                .filter(|d| d.is_dir())
            {
                let p = dir.join("dfvfs-test-data/test_data/ext2.E01");
                if let Ok(b) = std::fs::read(p) {
                    out.push(("ext2".into(), vec![b]));
                }
            }
            out
        })
    }

    /// Offsets of 4-byte fields worth damaging: section descriptor fields,
    /// table headers and entries (v1 and v2).
    fn interesting(b: &[u8]) -> Vec<usize> {
        let mut v = Vec::new();
        if b.starts_with(b"EVF\x09") {
            let mut off = 13usize;
            for _ in 0..64 {
                if off.checked_add(100).is_none_or(|e| e > b.len()) {
                    break;
                }
                v.extend([off + 16, off + 20, off + 24, off + 28]);
                let kind = &b[off..off + 16];
                let next = u64::from_le_bytes(b[off + 16..off + 24].try_into().unwrap()) as usize;
                if kind.starts_with(b"table")
                    || kind.starts_with(b"volume")
                    || kind.starts_with(b"data")
                {
                    let d = off + 76;
                    for k in 0..12 {
                        if d + 4 * k + 4 <= b.len() {
                            v.push(d + 4 * k);
                        }
                    }
                    if kind.starts_with(b"table") {
                        for k in 0..8 {
                            v.push(d + 24 + 4 * k);
                        }
                    }
                }
                if kind.starts_with(b"done") || kind.starts_with(b"next") || next <= off {
                    break;
                }
                off = next;
            }
        } else if b.len() >= 96 {
            let mut off = b.len() - 64;
            for _ in 0..64 {
                v.extend([
                    off,
                    off + 8,
                    off + 12,
                    off + 16,
                    off + 20,
                    off + 24,
                    off + 28,
                ]);
                let kind = u32::from_le_bytes(b[off..off + 4].try_into().unwrap());
                let prev = u64::from_le_bytes(b[off + 8..off + 16].try_into().unwrap()) as usize;
                let size = u64::from_le_bytes(b[off + 16..off + 24].try_into().unwrap()) as usize;
                if kind == 4 && size <= off {
                    let d = off - size;
                    for k in 0..16 {
                        v.push(d + 4 * k);
                    }
                }
                if prev == 0 || prev >= off {
                    break;
                }
                off = prev;
            }
        }
        v.retain(|&o| o + 4 <= b.len());
        v
    }

    /// Fixes the checksum of the v1 descriptor, v1 table header or v2
    /// descriptor around `at`, so that damage reaches deeper code.
    fn fix_checksums(b: &mut [u8]) {
        if b.starts_with(b"EVF\x09") {
            let mut off = 13usize;
            for _ in 0..64 {
                if off.checked_add(100).is_none_or(|e| e > b.len()) {
                    return;
                }
                let sum = adler2::adler32_slice(&b[off..off + 72]);
                b[off + 72..off + 76].copy_from_slice(&sum.to_le_bytes());
                let kind = b[off..off + 16].to_vec();
                let next = u64::from_le_bytes(b[off + 16..off + 24].try_into().unwrap()) as usize;
                if kind.starts_with(b"table") && off + 100 <= b.len() {
                    let d = off + 76;
                    let sum = adler2::adler32_slice(&b[d..d + 20]);
                    b[d + 20..d + 24].copy_from_slice(&sum.to_le_bytes());
                }
                if kind.starts_with(b"done") || kind.starts_with(b"next") || next <= off {
                    return;
                }
                off = next;
            }
        } else if b.len() >= 96 {
            let mut off = b.len() - 64;
            for _ in 0..64 {
                let sum = adler2::adler32_slice(&b[off..off + 60]);
                b[off + 60..off + 64].copy_from_slice(&sum.to_le_bytes());
                let prev = u64::from_le_bytes(b[off + 8..off + 16].try_into().unwrap()) as usize;
                if prev == 0 || prev >= off || prev < 32 {
                    return;
                }
                off = prev;
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Damage {
        Truncate(u64),
        Flip(Vec<(u64, u8)>),
        Field { pick: u64, value: u32, fix: bool },
    }

    fn damage() -> impl Strategy<Value = (usize, usize, Damage)> {
        let value = prop_oneof![
            any::<u32>(),
            Just(0u32),
            Just(u32::MAX),
            Just(0x8000_0000u32),
            Just(0x7fff_ffffu32),
            (0u32..4096),
        ];
        (
            any::<usize>(),
            any::<usize>(),
            prop_oneof![
                any::<u64>().prop_map(Damage::Truncate),
                prop::collection::vec((any::<u64>(), 1u8..=255), 1..8).prop_map(Damage::Flip),
                (any::<u64>(), value, any::<bool>()).prop_map(|(pick, value, fix)| Damage::Field {
                    pick,
                    value,
                    fix
                }),
            ],
        )
    }

    fn apply(mut b: Vec<u8>, d: &Damage) -> Vec<u8> {
        match d {
            Damage::Truncate(at) => {
                let n = (*at % (b.len() as u64 + 1)) as usize;
                b.truncate(n);
            }
            Damage::Flip(flips) => {
                for &(at, x) in flips {
                    let i = (at % b.len() as u64) as usize;
                    b[i] ^= x;
                }
            }
            Damage::Field { pick, value, fix } => {
                let fields = interesting(&b);
                if !fields.is_empty() {
                    let at = fields[(*pick % fields.len() as u64) as usize];
                    b[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
                if *fix {
                    fix_checksums(&mut b);
                }
            }
        }
        b
    }

    proptest! {
        // EWF_FUZZ_CASES=40000 for a longer run (one took 200 s in debug).
        #![proptest_config(ProptestConfig {
            cases: std::env::var("EWF_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn damaged_images_never_panic((base, seg, d) in damage()) {
            let bases = bases();
            let (name, segs) = &bases[base % bases.len()];
            let seg = seg % segs.len();
            let tmp = tempfile::tempdir().unwrap();
            let mut paths = Vec::new();
            for (i, bytes) in segs.iter().enumerate() {
                let ext = if name.starts_with("v2") { format!("Ex{:02}", i + 1) } else { format!("E{:02}", i + 1) };
                let p = tmp.path().join(format!("img.{ext}"));
                let bytes = if i == seg { apply(bytes.clone(), &d) } else { bytes.clone() };
                std::fs::write(&p, bytes).unwrap();
                paths.push(p);
            }
            let started = std::time::Instant::now();
            if let Ok(ev) = EwfEvidence::open(&paths[0]) {
                // Read everything: whole chunks, then odd partial reads.
                let size = ev.size();
                let mut buf = vec![0u8; 1 << 16];
                let mut off = 0;
                while off < size.min(64 << 20) {
                    match ev.read_at(off, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => off += n as u64,
                        Err(_) => off += buf.len() as u64,
                    }
                }
                let mut small = [0u8; 1000];
                let mut off = 17;
                while off < size.min(1 << 20) {
                    let _ = ev.read_at(off, &mut small);
                    off += 3001;
                }
            }
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
            let largest = LARGEST_ALLOC.load(Ordering::Relaxed);
            prop_assert!(largest < 512 << 20, "an allocation of {largest} bytes");
        }
    }
}
