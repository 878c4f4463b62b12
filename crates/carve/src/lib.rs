//! Structure-validated file carving.
//!
//! One pass over the shard buffer finds every header signature (an
//! Aho-Corasick automaton over the distinct signature prefixes, leftmost
//! semantics so its SIMD prefilter runs, restarted one byte after each hit
//! and every prefix checked at each hit position, so overlapping and
//! embedded signatures are all seen). Each candidate goes to the validator
//! of its family, which parses the structure to the file's true end
//! (reading past the buffer through the evidence when the file is longer)
//! and rejects false hits. Custom types from a Scalpel/Foremost
//! configuration are carved header-to-footer, or validated by the built-in
//! parser when their extension has one.
//!
//! Exactness: a candidate belongs to the shard holding its first byte, and
//! a validator's answer depends only on the image bytes (never on where the
//! buffer ends), so results are identical for every shard size.

mod config;
mod formats;
mod hdrftr;
mod kinds;
mod src;
#[cfg(test)]
mod tests;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use config::{Custom, Pat};
use formats::{Cx, Found, Scratch, Verdict};
use kinds::{Fam, Kind};
use rayon::prelude::*;
use src::Src;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use trawl_core::spec::CarveOptions;
use trawl_core::{ByteRun, CarvedFile, Note, ScannerStat, Shard};
use trawl_evidence::{Evidence, EvidenceError};

/// Why carving failed.
#[derive(Debug, thiserror::Error)]
pub enum CarveError {
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    /// Hashing a carved file.
    #[error(transparent)]
    Hash(#[from] trawl_hash::HashError),
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("cancelled")]
    Cancelled,
}

/// Whether the carver can produce files of type `name` (the folder of
/// `carved/NAME/OFFSET.EXT`): a type of the built-in type table, or the
/// folder name of a custom type from a Scalpel/Foremost configuration as
/// the carver derives it (1 to 32 of `a-z 0-9 _ -`). Report writers use it
/// to refuse forged type names before they become paths.
pub fn is_output_type(name: &str) -> bool {
    kinds::FAMILIES
        .iter()
        .any(|f| f.kinds().iter().any(|k| k.name == name))
        || config::is_custom_type_name(name)
}

/// Whether the carver can give a carved file the extension `ext` (the
/// `EXT` of `carved/NAME/OFFSET.EXT`): an extension of the built-in type
/// table, or a custom type's extension as the carver derives it (1 to 32
/// of `A-Z a-z 0-9 _ -`).
pub fn is_output_extension(ext: &str) -> bool {
    kinds::FAMILIES
        .iter()
        .any(|f| f.kinds().iter().any(|k| k.ext == ext))
        || config::is_custom_extension(ext)
}

/// What carving one shard produced.
#[derive(Debug, Default)]
pub struct CarveOutput {
    /// Files whose first byte lies in the shard.
    pub files: Vec<CarvedFile>,
    pub notes: Vec<Note>,
    pub stats: Vec<ScannerStat>,
}

/// Default cap of candidates validated per type and shard: one per
/// 512-byte sector on average, and at least this many.
const MIN_DEFAULT_CAP: u64 = 4096;
/// Shard buffer cut into pieces of this size for a parallel signature scan.
const SCAN_PIECE: usize = 8 << 20;

/// An enabled built-in family.
#[derive(Debug)]
struct FamCfg {
    fam: Fam,
    /// Output type names enabled, with their maximum sizes.
    kinds: BTreeMap<&'static str, u64>,
    /// Largest maximum size of the enabled output types.
    max: u64,
}

/// A custom type, compiled.
#[derive(Debug)]
struct CustomCfg {
    c: Custom,
    name: String,
    ext: String,
    /// The built-in family whose parser validates this extension.
    builtin: Option<Fam>,
    footer: Option<hdrftr::Footer>,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Fam(usize),
    Custom(usize),
}

/// A header signature.
#[derive(Debug)]
struct Sig {
    target: Target,
    /// Offset of the anchor (the literal the automaton finds) from the
    /// file start.
    anchor_off: u64,
    /// The whole header, checked at the candidate (custom types, with
    /// wildcards); empty when the anchor is the whole signature.
    full: Pat,
    case_sensitive: bool,
}

/// One automaton over distinct anchors.
#[derive(Debug)]
struct Matcher {
    ac: AhoCorasick,
    anchors: Vec<Vec<u8>>,
    /// Signatures per anchor.
    sigs_of: Vec<Vec<u32>>,
    /// Anchors per first byte (lowercased when case-insensitive).
    by_first: Vec<Vec<u32>>,
    case_sensitive: bool,
}

impl Matcher {
    fn build(anchors: Vec<Vec<u8>>, sigs_of: Vec<Vec<u32>>, cs: bool) -> Result<Self, CarveError> {
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .ascii_case_insensitive(!cs)
            .build(&anchors)
            .map_err(|e| CarveError::Settings(format!("carving signatures: {e}")))?;
        let mut by_first = vec![Vec::new(); 256];
        for (i, a) in anchors.iter().enumerate() {
            if cs {
                by_first[usize::from(a[0])].push(i as u32);
            } else {
                by_first[usize::from(a[0].to_ascii_lowercase())].push(i as u32);
                by_first[usize::from(a[0].to_ascii_uppercase())].push(i as u32);
            }
        }
        for v in &mut by_first {
            v.sort_unstable();
            v.dedup();
        }
        Ok(Self {
            ac,
            anchors,
            sigs_of,
            by_first,
            case_sensitive: cs,
        })
    }

    /// Anchors matching at `hay[q..]`.
    fn at<'m>(&'m self, hay: &'m [u8], q: usize) -> impl Iterator<Item = u32> + 'm {
        self.by_first[usize::from(hay[q])]
            .iter()
            .copied()
            .filter(move |&p| {
                let a = &self.anchors[p as usize];
                let Some(h) = hay.get(q..q + a.len()) else {
                    return false;
                };
                if self.case_sensitive {
                    h == a.as_slice()
                } else {
                    h.eq_ignore_ascii_case(a)
                }
            })
    }
}

/// A header candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cand {
    off: u64,
    sig: u32,
}

/// The carver of a job: signatures and validators built once.
#[derive(Debug)]
pub struct Carver {
    sector_aligned: bool,
    fams: Vec<FamCfg>,
    customs: Vec<CustomCfg>,
    sigs: Vec<Sig>,
    matchers: Vec<Matcher>,
    /// Bytes past a candidate start needed to see its anchor.
    span: u64,
    cap: u32,
}

impl Carver {
    /// The largest file this carver may produce: how far past a shard's
    /// scan range a shard task may read.
    pub fn max_extent(&self) -> u64 {
        let fams = self.fams.iter().map(|f| f.max).max().unwrap_or(0);
        let customs = self.customs.iter().map(|c| c.c.max_size).max().unwrap_or(0);
        fams.max(customs).max(self.span)
    }
}

/// Whether an output type is enabled, and its maximum size.
fn kind_max(fams: &[FamCfg], fam_idx: usize, k: Kind) -> Option<u64> {
    fams.get(fam_idx)?.kinds.get(k.name).copied()
}

fn fam_of_ext(ext: &str) -> Option<Fam> {
    let e = ext.to_ascii_lowercase();
    let names: Vec<&str> = match kinds::alias(&e) {
        Some(a) if a.len() == 1 => a.to_vec(),
        _ => vec![e.as_str()],
    };
    kinds::FAMILIES.iter().copied().find(|f| {
        f.kinds()
            .iter()
            .any(|k| names.contains(&k.name) || names.contains(&k.ext))
    })
}

impl Carver {
    /// Builds a carver.
    ///
    /// # Errors
    /// Invalid options (unknown type, bad custom configuration).
    pub fn new(opts: &CarveOptions) -> Result<Self, CarveError> {
        let customs_parsed = if opts.custom_config.trim().is_empty() {
            Vec::new()
        } else {
            config::parse(&opts.custom_config)
                .map_err(|e| CarveError::Settings(format!("carving configuration: {e}")))?
        };
        // Which types.
        let all_builtin: BTreeSet<&'static str> = kinds::all_type_names().into_iter().collect();
        let custom_names: Vec<String> = customs_parsed.iter().map(Custom::type_name).collect();
        let (builtin_on, custom_on): (BTreeSet<&'static str>, Vec<bool>) = if opts.types.is_empty()
        {
            let default: BTreeSet<&'static str> = all_builtin
                .iter()
                .copied()
                .filter(|t| !kinds::OPT_IN.contains(t))
                .collect();
            (default, vec![true; customs_parsed.len()])
        } else {
            let mut b = BTreeSet::new();
            let mut c = vec![false; customs_parsed.len()];
            for t in &opts.types {
                let t = t.trim().to_ascii_lowercase();
                if t.is_empty() {
                    continue;
                }
                let mut known = false;
                if t == "all" || t == "builtin" {
                    b.extend(all_builtin.iter().copied());
                    known = true;
                }
                if t == "all" || t == "custom" {
                    c.iter_mut().for_each(|x| *x = true);
                    known = t == "custom" || known;
                }
                if let Some(k) = all_builtin.get(t.as_str()) {
                    b.insert(*k);
                    known = true;
                } else if let Some(a) = kinds::alias(&t) {
                    b.extend(a.iter().copied());
                    known = true;
                }
                for (i, n) in custom_names.iter().enumerate() {
                    if *n == t || customs_parsed[i].ext.eq_ignore_ascii_case(&t) {
                        c[i] = true;
                        known = true;
                    }
                }
                if !known {
                    return Err(CarveError::Settings(format!(
                        "unknown carving type {t:?}; built-in types: {}{}",
                        all_builtin.iter().copied().collect::<Vec<_>>().join(", "),
                        if custom_names.is_empty() {
                            String::new()
                        } else {
                            format!("; custom types: {}", custom_names.join(", "))
                        }
                    )));
                }
            }
            (b, c)
        };
        for k in opts.max_size.keys() {
            let k = k.to_ascii_lowercase();
            if !all_builtin.contains(k.as_str())
                && !custom_names.contains(&k)
                && kinds::alias(&k).is_none()
            {
                return Err(CarveError::Settings(format!(
                    "--carve-max-size: unknown type {k:?}"
                )));
            }
        }
        let max_of = |name: &str| -> u64 {
            opts.max_size
                .iter()
                .find(|(k, _)| {
                    k.eq_ignore_ascii_case(name)
                        || kinds::alias(&k.to_ascii_lowercase()).is_some_and(|a| a.contains(&name))
                })
                .map(|(_, v)| *v)
                .unwrap_or_else(|| kinds::default_max_size(name))
        };
        let mut fams = Vec::new();
        for f in kinds::FAMILIES {
            let ks: BTreeMap<&'static str, u64> = f
                .kinds()
                .iter()
                .filter(|k| builtin_on.contains(k.name))
                .map(|k| (k.name, max_of(k.name)))
                .collect();
            if ks.is_empty() {
                continue;
            }
            let max = ks.values().copied().max().unwrap_or(0);
            fams.push(FamCfg {
                fam: f,
                kinds: ks,
                max,
            });
        }
        let mut customs = Vec::new();
        for (i, c) in customs_parsed.into_iter().enumerate() {
            if !custom_on[i] {
                continue;
            }
            let name = c.type_name();
            let mut c = c;
            if let Some((_, v)) = opts
                .max_size
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&name))
            {
                c.max_size = *v;
            }
            let footer = match &c.footer {
                Some(f) => Some(hdrftr::Footer::new(f, c.case_sensitive).map_err(|e| {
                    CarveError::Settings(format!("carving configuration line {}: {e}", c.line))
                })?),
                None => None,
            };
            customs.push(CustomCfg {
                builtin: fam_of_ext(&c.ext),
                ext: c.extension(),
                name,
                c,
                footer,
            });
        }
        // Signatures, grouped by anchor and case sensitivity.
        let mut sigs = Vec::new();
        for (i, f) in fams.iter().enumerate() {
            for &(bytes, off) in f.fam.signatures() {
                sigs.push((
                    Sig {
                        target: Target::Fam(i),
                        anchor_off: u64::from(off),
                        full: Vec::new(),
                        case_sensitive: !f.fam.case_insensitive(),
                    },
                    bytes.to_vec(),
                ));
            }
        }
        for (i, c) in customs.iter().enumerate() {
            let (off, lit) = config::anchor(&c.c.header);
            let whole = off == 0 && lit.len() == c.c.header.len();
            sigs.push((
                Sig {
                    target: Target::Custom(i),
                    anchor_off: off as u64,
                    full: if whole {
                        Vec::new()
                    } else {
                        c.c.header.clone()
                    },
                    case_sensitive: c.c.case_sensitive,
                },
                lit,
            ));
        }
        let mut span = 16u64;
        let mut matchers = Vec::new();
        let mut all_sigs = Vec::new();
        for cs in [true, false] {
            let mut anchors: Vec<Vec<u8>> = Vec::new();
            let mut sigs_of: Vec<Vec<u32>> = Vec::new();
            for (s, a) in sigs.iter().filter(|(s, _)| s.case_sensitive == cs) {
                let key = if cs {
                    a.clone()
                } else {
                    a.to_ascii_lowercase()
                };
                let idx = match anchors.iter().position(|x| *x == key) {
                    Some(i) => i,
                    None => {
                        anchors.push(key);
                        sigs_of.push(Vec::new());
                        anchors.len() - 1
                    }
                };
                sigs_of[idx].push(all_sigs.len() as u32);
                span = span
                    .max(s.anchor_off + a.len() as u64)
                    .max(s.full.len() as u64);
                all_sigs.push(Sig {
                    target: s.target,
                    anchor_off: s.anchor_off,
                    full: s.full.clone(),
                    case_sensitive: s.case_sensitive,
                });
            }
            if !anchors.is_empty() {
                matchers.push(Matcher::build(anchors, sigs_of, cs)?);
            }
        }
        Ok(Self {
            sector_aligned: opts.sector_aligned,
            fams,
            customs,
            sigs: all_sigs,
            matchers,
            span,
            cap: opts.max_candidates_per_shard,
        })
    }

    /// Carves the files starting in `shard`; `data` holds
    /// `[shard.start, shard.scan_end)`.
    ///
    /// # Errors
    /// Evidence read errors, cancellation.
    pub fn carve_shard(
        &self,
        evidence: &dyn Evidence,
        shard: &Shard,
        data: &[u8],
        cancel: &AtomicBool,
    ) -> Result<CarveOutput, CarveError> {
        let t0 = Instant::now();
        let src = Src::new(evidence, shard.start, data);
        let mut out = CarveOutput::default();
        if self.sigs.is_empty() || shard.is_empty() {
            return Ok(out);
        }
        let mut cands = self.candidates(&src, shard, data)?;
        self.apply_cap(&mut cands, shard, &mut out.notes);
        if cancel.load(Ordering::Relaxed) {
            return Err(CarveError::Cancelled);
        }
        // Validate every candidate, in parallel.
        type Res = (u32, u64, Option<(CarvedFile, bool)>);
        let results: Vec<Res> = cands
            .par_iter()
            .map_init(Scratch::default, |scratch, c| -> Result<Res, CarveError> {
                if cancel.load(Ordering::Relaxed) {
                    return Err(CarveError::Cancelled);
                }
                let t = Instant::now();
                let r = self.validate_one(&src, scratch, *c)?;
                Ok((c.sig, t.elapsed().as_nanos() as u64, r))
            })
            .collect::<Result<_, _>>()?;
        // Time and candidates per validator family / custom type.
        let mut per_validator: BTreeMap<String, ScannerStat> = BTreeMap::new();
        for (sig, ns, _) in &results {
            let name = match self.sigs[*sig as usize].target {
                Target::Fam(i) => self.fams[i].fam.name().to_string(),
                Target::Custom(i) => format!("custom-{}", self.customs[i].name),
            };
            let s = per_validator
                .entry(name.clone())
                .or_insert_with(|| ScannerStat {
                    scanner: format!("carve:candidates:{name}"),
                    ..Default::default()
                });
            s.findings += 1;
            s.nanos += ns;
        }
        let mut files: Vec<(CarvedFile, u64, bool)> = results
            .into_iter()
            .filter_map(|(_, ns, r)| r.map(|(f, b)| (f, ns, b)))
            .collect();
        // One file per (offset, type): validated first, then built-in.
        files.sort_by(|a, b| {
            (a.0.offset, &a.0.file_type)
                .cmp(&(b.0.offset, &b.0.file_type))
                .then(b.0.validated.cmp(&a.0.validated))
                .then(b.2.cmp(&a.2))
                .then(a.0.length.cmp(&b.0.length))
        });
        files.dedup_by(|b, a| {
            let same = a.0.offset == b.0.offset && a.0.file_type == b.0.file_type;
            if same {
                a.1 += b.1;
            }
            same
        });
        if cancel.load(Ordering::Relaxed) {
            return Err(CarveError::Cancelled);
        }
        // Hashes. Files in memory (the shard's buffer, or a mapped image):
        // MD5, SHA-1 and SHA-256 each many files at a time (multi-buffer,
        // one batch per shard: shards run in parallel). A file much longer
        // than the others would keep one lane busy alone: those, and files
        // not in memory (read in chunks), are hashed one by one.
        let files: Vec<_> = files
            .into_iter()
            .map(|(f, ns, _)| {
                let bytes = src.borrowed(f.offset, f.length);
                (f, ns, bytes)
            })
            .collect();
        let in_memory: u64 = files
            .iter()
            .filter(|(_, _, b)| b.is_some())
            .map(|(f, _, _)| f.length)
            .sum();
        let (small, large): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|(f, _, b)| b.is_some() && f.length.saturating_mul(8) <= in_memory);
        let bufs: Vec<&[u8]> = small
            .iter()
            .map(|(_, _, b)| b.unwrap_or_default())
            .collect();
        let t = Instant::now();
        let (md5s, (sha1s, sha256s)) = rayon::join(
            || trawl_hash::md5::md5_many(&bufs),
            || {
                rayon::join(
                    || trawl_hash::sha_multi::sha1_many(&bufs),
                    || trawl_hash::sha_multi::sha256_many(&bufs),
                )
            },
        );
        // The batch's time, shared among its files by length.
        let batch_ns = t.elapsed().as_nanos() as u64;
        let batch_len = bufs.iter().map(|b| b.len() as u128).sum::<u128>().max(1);
        let hashed_small = small.into_par_iter().zip(md5s).zip(sha1s).zip(sha256s).map(
            |((((mut f, ns, _), md5), sha1), sha256)| -> Result<(CarvedFile, u64), CarveError> {
                f.md5 = hex::encode(md5);
                f.sha1 = hex::encode(sha1);
                f.sha256 = hex::encode(sha256);
                let share = (u128::from(batch_ns) * u128::from(f.length) / batch_len) as u64;
                Ok((f, ns + share))
            },
        );
        let hashed_large =
            large
                .into_par_iter()
                .map(|(mut f, ns, _)| -> Result<(CarvedFile, u64), CarveError> {
                    let t = Instant::now();
                    let (md5, sha1, sha256) = hash_range(&src, f.offset, f.length)?;
                    f.md5 = md5;
                    f.sha1 = sha1;
                    f.sha256 = sha256;
                    Ok((f, ns + t.elapsed().as_nanos() as u64))
                });
        let hashed: Vec<(CarvedFile, u64)> =
            hashed_small.chain(hashed_large).collect::<Result<_, _>>()?;
        let mut per_type: BTreeMap<String, ScannerStat> = BTreeMap::new();
        for (f, ns) in &hashed {
            let s = per_type
                .entry(f.file_type.clone())
                .or_insert_with(|| ScannerStat {
                    scanner: format!("carve:{}", f.file_type),
                    ..Default::default()
                });
            s.findings += 1;
            s.bytes += f.length;
            s.nanos += ns;
        }
        out.files = hashed.into_iter().map(|(f, _)| f).collect();
        out.files.sort_by(|a, b| a.sort_cmp(b));
        out.stats.push(ScannerStat {
            scanner: "carve".into(),
            bytes: shard.len(),
            nanos: t0.elapsed().as_nanos() as u64,
            findings: out.files.len() as u64,
            skipped_bytes: 0,
        });
        out.stats.extend(per_type.into_values());
        out.stats.extend(per_validator.into_values());
        Ok(out)
    }

    /// Carves only `space`: image ranges `[start, end)` (sorted, disjoint,
    /// none ending before `shard.start`), read end to end as one stream, as
    /// `blkls` writes a file system's unallocated space. The files starting
    /// in the part of the stream that lies in `[shard.start, shard.end)` are
    /// this shard's; a file may run on past allocated clusters into the
    /// next range, and its `byte_runs` then name each piece. `space` must
    /// reach as far as a file may (the rest of the image's space). `data`
    /// holds `[shard.start, shard.scan_end)`, as for
    /// [`Carver::carve_shard`].
    ///
    /// # Errors
    /// As [`Carver::carve_shard`]; a malformed `space`.
    pub fn carve_space(
        &self,
        evidence: &dyn Evidence,
        shard: &Shard,
        data: &[u8],
        space: &[(u64, u64)],
        cancel: &AtomicBool,
    ) -> Result<CarveOutput, CarveError> {
        let clipped: Vec<(u64, u64)> = space
            .iter()
            .filter(|r| r.1 > shard.start)
            .map(|&(s, e)| (s.max(shard.start), e))
            .collect();
        let spans = trawl_evidence::Spans::new(evidence, &clipped)?;
        // The stream bytes owned: those in [shard.start, shard.end).
        let owned: u64 = clipped
            .iter()
            .take_while(|r| r.0 < shard.end)
            .map(|&(s, e)| e.min(shard.end) - s)
            .sum();
        let vshard = Shard {
            index: shard.index,
            start: 0,
            end: owned,
            scan_end: owned
                .saturating_add(shard.scan_end - shard.end)
                .min(spans.size()),
        };
        // The stream's first bytes, from the shard's buffer where it has
        // them.
        let mut vdata = vec![0u8; vshard.scan_end as usize];
        let data_end = shard.start + data.len() as u64;
        for r in spans.image_runs(0, vshard.scan_end) {
            let dst = &mut vdata[r.rel_offset as usize..(r.rel_offset + r.len) as usize];
            if r.img_offset + r.len <= data_end {
                let s = (r.img_offset - shard.start) as usize;
                dst.copy_from_slice(&data[s..s + r.len as usize]);
            } else {
                evidence.read_exact_at(r.img_offset, dst)?;
            }
        }
        let mut out = self.carve_shard(&spans, &vshard, &vdata, cancel)?;
        for f in &mut out.files {
            let mut runs = Vec::new();
            for b in &f.byte_runs {
                for p in spans.image_runs(b.img_offset, b.len) {
                    runs.push(ByteRun {
                        img_offset: p.img_offset,
                        file_offset: b.file_offset + p.rel_offset,
                        len: p.len,
                    });
                }
            }
            f.offset = spans.to_image(f.offset).ok_or_else(|| {
                CarveError::Settings(format!(
                    "carved file at stream offset {} is past the carving space",
                    f.offset
                ))
            })?;
            f.byte_runs = runs;
        }
        for n in &mut out.notes {
            if let Some(o) = spans.to_image(n.offset) {
                n.offset = o;
            }
        }
        if let Some(s) = out.stats.iter_mut().find(|s| s.scanner == "carve") {
            s.skipped_bytes = shard.len() - owned;
        }
        Ok(out)
    }

    /// Every header candidate starting in the shard.
    fn candidates(&self, src: &Src, shard: &Shard, data: &[u8]) -> Result<Vec<Cand>, CarveError> {
        let mut cands = Vec::new();
        if self.sector_aligned {
            self.aligned_candidates(src, shard, data, &mut cands)?;
        } else {
            let owned = (shard.end - shard.start) as usize;
            let span = self.span as usize;
            let pieces: Vec<(usize, usize)> = (0..owned.div_ceil(SCAN_PIECE))
                .map(|i| (i * SCAN_PIECE, ((i + 1) * SCAN_PIECE).min(owned)))
                .collect();
            let found: Vec<Vec<Cand>> = pieces
                .par_iter()
                .map(|&(lo, hi)| {
                    let hay_end = (hi + span).min(data.len());
                    let mut v = Vec::new();
                    self.scan_hay(
                        &data[lo..hay_end],
                        shard.start + lo as u64,
                        shard.start + lo as u64,
                        shard.start + hi as u64,
                        None,
                        &mut v,
                    );
                    v
                })
                .collect();
            cands = found.into_iter().flatten().collect();
            // Anchors crossing the end of the buffer (small margins).
            let need = shard.end.saturating_add(self.span).min(src.size());
            let data_end = src.data_end();
            if need > data_end {
                let t0 = data_end.saturating_sub(self.span).max(shard.start);
                let tail = src.view(t0, need - t0)?;
                self.scan_hay(
                    &tail,
                    t0,
                    shard.start,
                    shard.end,
                    Some(data_end),
                    &mut cands,
                );
            }
        }
        // Full-header checks (custom patterns with wildcards).
        let mut keep = Vec::with_capacity(cands.len());
        for c in cands {
            let s = &self.sigs[c.sig as usize];
            if s.full.is_empty() {
                keep.push(c);
                continue;
            }
            let b = src.view(c.off, s.full.len() as u64)?;
            if config::matches(&s.full, &b, s.case_sensitive) {
                keep.push(c);
            }
        }
        keep.sort_unstable();
        keep.dedup();
        Ok(keep)
    }

    /// Scans `hay` (image offset `base`) for candidates starting in
    /// `[lo, hi)`; with `only_past`, only anchors ending past that offset.
    fn scan_hay(
        &self,
        hay: &[u8],
        base: u64,
        lo: u64,
        hi: u64,
        only_past: Option<u64>,
        out: &mut Vec<Cand>,
    ) {
        for m in &self.matchers {
            let mut at = 0usize;
            while at < hay.len() {
                let Some(hit) = m.ac.find(Input::new(hay).range(at..)) else {
                    break;
                };
                let q = hit.start();
                for p in m.at(hay, q) {
                    let alen = m.anchors[p as usize].len() as u64;
                    if only_past.is_some_and(|e| base + q as u64 + alen <= e) {
                        continue;
                    }
                    for &si in &m.sigs_of[p as usize] {
                        let s = &self.sigs[si as usize];
                        let Some(c) = (base + q as u64).checked_sub(s.anchor_off) else {
                            continue;
                        };
                        if c >= lo && c < hi {
                            out.push(Cand { off: c, sig: si });
                        }
                    }
                }
                at = q + 1;
            }
        }
    }

    /// Sector-aligned fast mode: only offsets that are multiples of 512.
    fn aligned_candidates(
        &self,
        src: &Src,
        shard: &Shard,
        data: &[u8],
        out: &mut Vec<Cand>,
    ) -> Result<(), CarveError> {
        let mut c = shard.start.div_ceil(512) * 512;
        let mut buf = [0u8; 64];
        while c < shard.end {
            let i = (c - shard.start) as usize;
            let span = (self.span as usize).min(64);
            let head: &[u8] = if i + span <= data.len() {
                &data[i..i + span]
            } else {
                let v = src.view(c, span as u64)?;
                buf[..v.len()].copy_from_slice(&v);
                &buf[..v.len()]
            };
            for m in &self.matchers {
                for (p, a) in m.anchors.iter().enumerate() {
                    for &si in &m.sigs_of[p] {
                        let s = &self.sigs[si as usize];
                        let o = s.anchor_off as usize;
                        let Some(h) = head.get(o..o + a.len()) else {
                            continue;
                        };
                        let hit = if m.case_sensitive {
                            h == a.as_slice()
                        } else {
                            h.eq_ignore_ascii_case(a)
                        };
                        if hit {
                            out.push(Cand { off: c, sig: si });
                        }
                    }
                }
            }
            c += 512;
        }
        Ok(())
    }

    /// Caps the candidates of each target; sector-aligned ones first.
    fn apply_cap(&self, cands: &mut Vec<Cand>, shard: &Shard, notes: &mut Vec<Note>) {
        let cap = if self.cap > 0 {
            u64::from(self.cap)
        } else {
            (shard.len() / 512).max(MIN_DEFAULT_CAP)
        };
        let mut per: BTreeMap<(u8, usize), u64> = BTreeMap::new();
        let key = |t: Target| match t {
            Target::Fam(i) => (0u8, i),
            Target::Custom(i) => (1u8, i),
        };
        for c in cands.iter() {
            *per.entry(key(self.sigs[c.sig as usize].target))
                .or_default() += 1;
        }
        let over: Vec<(u8, usize)> = per
            .iter()
            .filter(|(_, n)| **n > cap)
            .map(|(k, _)| *k)
            .collect();
        if over.is_empty() {
            return;
        }
        for k in over {
            let mut mine: Vec<Cand> = cands
                .iter()
                .copied()
                .filter(|c| key(self.sigs[c.sig as usize].target) == k)
                .collect();
            let total = mine.len();
            mine.sort_by_key(|c| (c.off % 512 != 0, c.off));
            let dropped: BTreeSet<Cand> = mine[cap as usize..].iter().copied().collect();
            cands.retain(|c| !dropped.contains(c));
            let name = match k {
                (0, i) => self.fams[i].fam.name().to_string(),
                (_, i) => self.customs[i].name.clone(),
            };
            notes.push(Note {
                analysis: "carve".into(),
                offset: shard.start,
                message: format!(
                    "{name}: {total} header candidates in the shard {}..{}, over the cap of {cap}: only the first {cap} (sector-aligned first) were validated",
                    shard.start, shard.end
                ),
            });
        }
    }

    /// Validates one candidate: the carved file and whether a built-in
    /// parser produced it.
    fn validate_one(
        &self,
        src: &Src,
        scratch: &mut Scratch,
        c: Cand,
    ) -> Result<Option<(CarvedFile, bool)>, CarveError> {
        let sig = &self.sigs[c.sig as usize];
        match sig.target {
            Target::Fam(fi) => {
                let f = &self.fams[fi];
                let mut cx = Cx {
                    src,
                    max: f.max,
                    scratch,
                };
                let v = formats::validate(f.fam, &mut cx, c.off)?;
                Ok(self.accept_builtin(fi, c.off, v, None).map(|x| (x, true)))
            }
            Target::Custom(ci) => {
                let cu = &self.customs[ci];
                let mut why_not = String::new();
                if let Some(fam) = cu.builtin {
                    let mut cx = Cx {
                        src,
                        max: cu.c.max_size,
                        scratch,
                    };
                    match formats::validate(fam, &mut cx, c.off)? {
                        Verdict::Valid(found) => {
                            let note = format!(
                                "custom type {} (configuration line {}): validated by the built-in {} parser",
                                cu.c.ext,
                                cu.c.line,
                                fam.name()
                            );
                            return Ok(Some((
                                file(c.off, &found, true, join(&note, &found.note)),
                                false,
                            )));
                        }
                        Verdict::Broken(f) => {
                            why_not = format!("; built-in {} parser: {}", fam.name(), f.note)
                        }
                        Verdict::Reject(r) => {
                            why_not = format!("; built-in {} parser: {r}", fam.name())
                        }
                    }
                }
                match hdrftr::carve(src, &cu.c, cu.footer.as_ref(), c.off)? {
                    Ok((len, how)) if len > 0 => {
                        let note = format!(
                            "custom type {} (configuration line {}): header/footer carving, structure not validated: {how}{why_not}",
                            cu.c.ext, cu.c.line
                        );
                        Ok(Some((
                            CarvedFile {
                                offset: c.off,
                                length: len,
                                file_type: cu.name.clone(),
                                extension: cu.ext.clone(),
                                validated: false,
                                note,
                                md5: String::new(),
                                sha1: String::new(),
                                sha256: String::new(),
                                byte_runs: vec![ByteRun {
                                    img_offset: c.off,
                                    file_offset: 0,
                                    len,
                                }],
                            },
                            false,
                        )))
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    fn accept_builtin(
        &self,
        fi: usize,
        off: u64,
        v: Verdict,
        _extra: Option<&str>,
    ) -> Option<CarvedFile> {
        let (found, valid) = match v {
            Verdict::Valid(f) => (f, true),
            Verdict::Broken(f) => (f, false),
            Verdict::Reject(_) => return None,
        };
        let max = kind_max(&self.fams, fi, found.kind)?;
        if found.len == 0 || found.len > max {
            return None;
        }
        let note = found.note.clone();
        Some(file(off, &found, valid, note))
    }
}

fn join(a: &str, b: &str) -> String {
    if b.is_empty() {
        a.to_string()
    } else {
        format!("{a}; {b}")
    }
}

fn file(off: u64, f: &Found, validated: bool, note: String) -> CarvedFile {
    CarvedFile {
        offset: off,
        length: f.len,
        file_type: f.kind.name.to_string(),
        extension: f.kind.ext.to_string(),
        validated,
        note,
        md5: String::new(),
        sha1: String::new(),
        sha256: String::new(),
        byte_runs: vec![ByteRun {
            img_offset: off,
            file_offset: 0,
            len: f.len,
        }],
    }
}

/// MD5, SHA-1 and SHA-256 (lowercase hex) of image bytes `[off, off+len)`.
fn hash_range(src: &Src, off: u64, len: u64) -> Result<(String, String, String), CarveError> {
    let end = off.saturating_add(len);
    // Large and contiguous: MD5 and the SHA pair in parallel.
    if len >= 4 << 20
        && let Some(b) = src.borrowed(off, len)
    {
        let (m, (s1, s2)) = rayon::join(
            || {
                let mut m = trawl_hash::md5::Md5::new();
                m.update(b);
                m.finalize()
            },
            || trawl_hash::sha_pair::sha1_sha256(b),
        );
        return Ok((hex::encode(m?), hex::encode(s1), hex::encode(s2)));
    }
    let mut m = trawl_hash::md5::Md5::new();
    let mut s = trawl_hash::sha_pair::Sha1Sha256::new();
    src.each_chunk(off, end, 4 << 20, |_, c| {
        m.update(c);
        s.update(c);
        None::<()>
    })?;
    let (s1, s2) = s.finalize();
    Ok((hex::encode(m.finalize()?), hex::encode(s1), hex::encode(s2)))
}
