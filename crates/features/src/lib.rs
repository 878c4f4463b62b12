//! bulk_extractor-class feature scanners, exactly once across shards.
//!
//! # Scanners
//!
//! | scanner | finds |
//! |---|---|
//! | `email` | e-mail addresses (bulk_extractor's expression and checks) |
//! | `url` | `http`, `https`, `ftp`, `ftps`, `sftp`, `afp`, `smb`, `ws`, `wss`, `rtsp` URLs |
//! | `domain` | host names: of e-mail addresses, of URLs, and stand-alone (`www.example.com`) |
//! | `ipv4`, `ipv6` | addresses, validated; their class in a fourth column |
//! | `ether` | MAC addresses (`:` or `-` separated) |
//! | `ccn` | card numbers: Luhn, brand from the prefix (fourth column), plain/spaced/dashed |
//! | `iban` | IBANs: every registry country's length, mod-97 |
//! | `phone` | E.164 numbers and French national numbers |
//! | `bitcoin` | base58check (P2PKH, P2SH) and bech32/bech32m (segwit) addresses, checksums verified |
//! | `find` | the user's keywords (literals and `/regex/`), like bulk_extractor `-F` |
//!
//! Every scanner runs over ASCII/UTF-8 text, over UTF-16LE and UTF-16BE text
//! (see [`utf16`]), and inside gzip members, ZIP members (deflate) and zlib
//! streams, inflated up to [`FeatureOptions::max_inflate_bytes`] (default
//! 32 MiB per stream) and [`FeatureOptions::max_recursion_depth`] levels
//! (default 7). Limits reached are reported as notes.
//!
//! # Forensic paths
//!
//! * `OFFSET` — a feature in the image, `OFFSET` its first byte's offset.
//! * A feature in UTF-16LE / BE text has the same forms, the feature
//!   converted to UTF-8 and the offset that of its first encoded byte (for
//!   UTF-16BE the zero byte before the first character), as bulk_extractor
//!   2.x writes them; [`Feature::utf16`] says so (histograms count it).
//! * `OFFSET-GZIP-N`, `OFFSET-ZIP-N`, `OFFSET-ZLIB-N` — a feature at offset
//!   `N` of the inflated data of the gzip member / ZIP local header / zlib
//!   stream at image offset `OFFSET`; nested streams chain
//!   (`849920-GZIP-0-GZIP-0`). [`Feature::offset`] is the outermost
//!   stream's offset: the shard holding the stream's first byte owns every
//!   feature inside it, and reads the stream on through the evidence when it
//!   runs past the margin.
//!
//! # Exactness
//!
//! Every decision about a feature reads a bounded window around it (a few
//! hundred bytes for the text scanners, [`utf16::WINDOW`] for the UTF-16
//! byte order). A shard reads [`CTX`] bytes before its start (and past its
//! end when the margin is shorter) through the evidence, and keeps the
//! features whose first byte it owns, so the output is the same for every
//! shard size and worker count.
//!
//! # Stop and alert lists
//!
//! A feature on the stop list is reported under the scanner name
//! `NAME_stopped` (the report writes it to `NAME_stopped.txt`), never
//! dropped. A feature on the alert list stays in its file and is also
//! reported under the scanner name `alerts` (written to `alerts.txt`).

mod accts;
mod aes;
mod binfmt;
mod elf;
mod exif;
mod find;
pub mod format;
mod gpx;
mod inflate;
mod json;
mod kml;
mod lists;
mod net;
mod netscan;
mod radix;
mod rar;
pub mod records;
mod sqlite;
mod text;
mod textlayer;
mod tlds;
pub mod utf16;
mod utmp;
pub mod validate;
mod vcard;
mod vin;
mod web;
mod winpe;
mod winprefetch;

/// The text of every hit a scanner function finds in `s` (unit tests).
#[cfg(test)]
pub(crate) fn hit_texts(
    f: fn(&[u8], std::ops::Range<usize>, &mut Vec<Hit>),
    s: &str,
) -> Vec<String> {
    let mut v = Vec::new();
    f(s.as_bytes(), 0..s.len(), &mut v);
    v.iter().map(|h| s[h.start..h.end].to_string()).collect()
}

use aho_corasick::AhoCorasick;
use flate2::Decompress;
use inflate::{Source, StreamKind};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use trawl_core::spec::FeatureOptions;
use trawl_core::{Feature, Note, ScannerStat, Shard};
use trawl_evidence::{Evidence, EvidenceError};

/// Why feature extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("cancelled")]
    Cancelled,
    #[error("internal error: {0}")]
    Internal(String),
}

/// Bytes of context read before a shard (and after it when the margin is
/// shorter), so that every decision near the shard's edges sees what a
/// whole-image scan sees.
pub const CTX: usize = 64 << 10;
/// Bytes of context around a feature in the feature files, each side.
pub const CONTEXT: usize = 16;
/// Default recursion depth into compressed data.
pub const DEFAULT_MAX_DEPTH: u32 = 7;
/// Default bound on the inflated size of one stream.
pub const DEFAULT_MAX_INFLATE: u64 = 32 << 20;
/// Bound on the bytes inflated by one shard, all streams together.
pub const SHARD_INFLATE_BUDGET: u64 = 1 << 30;
/// Scanning unit (cache-sized).
const CHUNK: usize = 256 << 10;
/// Unit of the inert-block test (all zeros, one repeated pattern).
const BLOCK: usize = 4096;
/// Inflated streams shorter than this are not scanned.
const MIN_INFLATED: usize = 6;
/// Notes kept per shard.
const MAX_NOTES: usize = 64;
/// Number of text scanners ([`Kind::ALL`]).
const NKIND: usize = Kind::ALL.len();
/// Counter slot of the base16 layer's hex strings.
const HEX_IDX: usize = NKIND + records::STRUCTS.len();
/// Name prefix of the statistics in report.json.
pub const STAT_PREFIX: &str = "features/";

/// Recorder name of the features on the alert list (`features/alerts.txt`).
pub const ALERTS: &str = "alerts";
/// Suffix of the recorder of a scanner's features on the stop list
/// (`features/NAME_stopped.txt`).
pub const STOPPED_SUFFIX: &str = "_stopped";

/// Whether `name` is a recorder name the scanners give features (the
/// `scanner` of a [`Feature`], whose file is `features/NAME.txt`): a
/// scanner's name, a scanner's name with [`STOPPED_SUFFIX`], or [`ALERTS`].
/// Report writers use it to refuse forged names before they become paths.
pub fn is_recorder_name(name: &str) -> bool {
    let base = name.strip_suffix(STOPPED_SUFFIX).unwrap_or(name);
    name == ALERTS
        || Kind::ALL.iter().any(|k| k.name() == base)
        || records::STRUCTS.iter().any(|s| s.recorders.contains(&base))
        || base == HEX_RECORDER
        || name == DECODED_RECORDER
}

/// The listing of every decoded buffer scanned (`features/decoded.txt`):
/// forensic path of the layer, SHA-256 of its bytes, and `size=N`, with
/// `duplicate_of=PATH` for a buffer identical to one found earlier in the
/// image (see [`dedupe_layers`]).
pub const DECODED_RECORDER: &str = "decoded";

/// bulk_extractor's deduplication of decoded data: a decoded buffer (a
/// gzip member, a ZIP member, a base64 block ...) identical to one found
/// earlier in image order is not scanned again: the features found inside
/// it are dropped, and its line in `decoded.txt` names the first copy.
/// Done on a job's merged results, so the outcome does not depend on how
/// the image was cut into shards. Returns the duplicates and their bytes.
pub fn dedupe_layers(features: &mut Vec<Feature>) -> (usize, u64) {
    let mut layers: Vec<usize> = (0..features.len())
        .filter(|&i| features[i].scanner == DECODED_RECORDER)
        .collect();
    layers.sort_by(|&a, &b| {
        let (x, y) = (&features[a], &features[b]);
        x.offset
            .cmp(&y.offset)
            .then_with(|| format::path_cmp(&x.path, &y.path))
    });
    let mut first: std::collections::HashMap<(Vec<u8>, Vec<u8>), String> =
        std::collections::HashMap::new();
    let mut dups: Vec<String> = Vec::new();
    let mut bytes = 0u64;
    for i in layers {
        let f = &features[i];
        // a layer inside a duplicate goes with it
        if dups.iter().any(|d| inside(&f.path, d)) {
            continue;
        }
        let key = (f.feature.clone(), f.context.clone());
        match first.get(&key) {
            Some(orig) => {
                let size = std::str::from_utf8(&f.context)
                    .ok()
                    .and_then(|c| c.strip_prefix("size="))
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                bytes += size;
                let note = format!(" duplicate_of={orig}");
                dups.push(f.path.clone());
                features[i].context.extend_from_slice(note.as_bytes());
            }
            None => {
                first.insert(key, f.path.clone());
            }
        }
    }
    if !dups.is_empty() {
        dups.sort();
        features.retain(|f| !dups.iter().any(|d| inside(&f.path, d)));
    }
    (dups.len(), bytes)
}

/// `bytes` with every `{pos}` replaced by `name`.
fn fill_pos(bytes: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut rest = bytes;
    while let Some(i) = memchr::memmem::find(rest, b"{pos}") {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(name.as_bytes());
        rest = &rest[i + 5..];
    }
    out.extend_from_slice(rest);
    out
}

/// Whether forensic path `p` lies inside layer `layer` (`1234-GZIP`):
/// `1234-GZIP-56`, `1234-GZIP-0-ZIP-3` ...
fn inside(p: &str, layer: &str) -> bool {
    p.len() > layer.len() + 1 && p.starts_with(layer) && p.as_bytes()[layer.len()] == b'-'
}

/// The feature file of the base16 layer's hex strings of key sizes.
pub const HEX_RECORDER: &str = "hex";

/// The feature files a scanner (a text scanner's or a structure scanner's
/// name, as in the statistics) writes.
pub fn recorders_of(scanner: &str) -> Vec<&'static str> {
    if let Some(k) = Kind::ALL.iter().find(|k| k.name() == scanner) {
        return vec![k.name()];
    }
    if scanner == "base16" {
        return vec![HEX_RECORDER];
    }
    records::find(scanner)
        .map(|i| records::STRUCTS[i].recorders.to_vec())
        .unwrap_or_default()
}

/// Decoding layers: data found inside others is decoded and scanned again
/// with every scanner, its forensic path naming the layer. Each is on unless
/// disabled.
pub const LAYERS: [(&str, &str); 7] = [
    ("gzip", "gzip members, inflated (forensic path N-GZIP-M)"),
    ("zip", "ZIP members stored with deflate, inflated (N-ZIP-M)"),
    ("zlib", "raw zlib streams, inflated (N-ZLIB-M)"),
    ("pdf", "text of PDF content streams (N-PDF-M)"),
    ("msxml", "text of Office XML parts (N-ZIP-0-MSXML-M)"),
    (
        "base64",
        "base64 blocks of equal-length lines, decoded (N-BASE64-M)",
    ),
    (
        "base16",
        "hex runs: 6/16/32-byte ones to hex.txt, over 64 bytes decoded (N-BASE16-M); off by default",
    ),
];

/// Decoding layers off unless enabled (as in bulk_extractor).
const LAYERS_OFF: [&str; 1] = ["base16"];

/// Index of a layer in [`LAYERS`].
fn layer(name: &str) -> Option<usize> {
    LAYERS.iter().position(|(n, _)| *n == name)
}

/// One line per scanner and decoding layer, for `--list-scanners`: name,
/// default state, what it finds, the feature files it writes.
pub fn list_scanners() -> Vec<String> {
    let mut out = Vec::new();
    let line = |name: &str, on: bool, about: &str, files: String| {
        format!(
            "{name:<12} {:<8} {about}{files}",
            if on { "default" } else { "off" }
        )
    };
    for k in Kind::ALL {
        let on = k != Kind::Find;
        let about = k.about();
        out.push(line(k.name(), on, about, format!(" [{}.txt]", k.name())));
    }
    for s in records::STRUCTS {
        let files: Vec<String> = s
            .recorders
            .iter()
            .map(|r| {
                if records::pcap_link_type(r).is_some() {
                    format!("{r}.pcap")
                } else {
                    format!("{r}.txt")
                }
            })
            .collect();
        out.push(line(
            s.name,
            s.default,
            s.about,
            format!(" [{}]", files.join(", ")),
        ));
    }
    for (n, about) in LAYERS {
        let files = if n == "base16" {
            " [decoding layer; hex.txt]"
        } else {
            " [decoding layer]"
        };
        out.push(line(n, !LAYERS_OFF.contains(&n), about, files.into()));
    }
    for (n, members) in GROUPS {
        out.push(line(n, true, "group: ", members.join(", ")));
    }
    out
}

/// Names standing for several scanners.
const GROUPS: [(&str, &[&str]); 2] = [
    ("accts", &["ccn", "phone", "iban", "bitcoin"]),
    ("ip", &["ipv4", "ipv6"]),
];

/// The scanners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Email,
    Url,
    Domain,
    Ipv4,
    Ipv6,
    Ether,
    Ccn,
    Iban,
    Phone,
    Bitcoin,
    Find,
}

impl Kind {
    /// Every scanner.
    pub const ALL: [Kind; 11] = [
        Kind::Email,
        Kind::Url,
        Kind::Domain,
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::Ether,
        Kind::Ccn,
        Kind::Iban,
        Kind::Phone,
        Kind::Bitcoin,
        Kind::Find,
    ];

    /// The scanner's name (its feature file is `features/NAME.txt`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Url => "url",
            Kind::Domain => "domain",
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::Ether => "ether",
            Kind::Ccn => "ccn",
            Kind::Iban => "iban",
            Kind::Phone => "phone",
            Kind::Bitcoin => "bitcoin",
            Kind::Find => "find",
        }
    }

    fn idx(self) -> usize {
        self as usize
    }

    /// What the scanner finds, in one line.
    pub fn about(self) -> &'static str {
        match self {
            Kind::Email => "e-mail addresses",
            Kind::Url => "URLs (http, https, ftp, smb, ws, rtsp, ...)",
            Kind::Domain => "host names of e-mail addresses and URLs, and stand-alone",
            Kind::Ipv4 => "IPv4 addresses in text, validated, with their class",
            Kind::Ipv6 => "IPv6 addresses in text, validated, with their class",
            Kind::Ether => "MAC addresses in text",
            Kind::Ccn => "payment card numbers (Luhn, brand)",
            Kind::Iban => "IBANs (registry lengths, mod-97)",
            Kind::Phone => "phone numbers (E.164, French national)",
            Kind::Bitcoin => "bitcoin addresses (base58check, bech32/bech32m)",
            Kind::Find => "the user's keywords and /regex/ (needs --find FILE)",
        }
    }

    /// The scanner of a name (or an alias: `ip` for both address scanners).
    pub fn parse(name: &str) -> Option<Vec<Kind>> {
        let n = name.trim().to_ascii_lowercase();
        if n == "ip" {
            return Some(vec![Kind::Ipv4, Kind::Ipv6]);
        }
        if n == "all" {
            return Some(Kind::ALL.to_vec());
        }
        Kind::ALL.iter().find(|k| k.name() == n).map(|k| vec![*k])
    }
}

/// A match in a scanned buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Hit {
    fn new(kind: Kind, start: usize, end: usize) -> Self {
        Self { kind, start, end }
    }
}

/// What scanning one shard produced.
#[derive(Debug, Default)]
pub struct FeatureOutput {
    /// Features whose first byte lies in the shard.
    pub features: Vec<Feature>,
    pub notes: Vec<Note>,
    pub stats: Vec<ScannerStat>,
}

/// The feature scanners of a job, built once.
#[derive(Debug)]
pub struct FeatureScanner {
    enabled: [bool; 11],
    /// Per [`records::STRUCTS`] entry.
    structs: Vec<bool>,
    /// Per [`LAYERS`] entry.
    layers: [bool; LAYERS.len()],
    finder: Option<find::Finder>,
    stop: lists::WordList,
    alert: lists::WordList,
    signatures: AhoCorasick,
    max_depth: u32,
    max_inflate: usize,
}

impl FeatureScanner {
    /// Builds the scanners.
    ///
    /// # Errors
    /// Unknown scanner names, bad keyword or stop lists.
    pub fn new(opts: &FeatureOptions) -> Result<Self, FeatureError> {
        let finder = find::Finder::new(&opts.find_keywords, !opts.find_case_sensitive)?;
        let names: Vec<&str> = opts
            .scanners
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        // plain names select; +NAME / -NAME enable / disable on top of the
        // defaults (or of the selection)
        let select = names.iter().any(|n| !n.starts_with(['+', '-']));
        let mut enabled = [false; 11];
        let mut structs: Vec<bool> = records::STRUCTS
            .iter()
            .map(|s| s.default && !select)
            .collect();
        let mut layers = LAYERS.map(|(n, _)| !LAYERS_OFF.contains(&n));
        if !select {
            for k in Kind::ALL {
                enabled[k.idx()] = k != Kind::Find || finder.is_some();
            }
        }
        let mut asked_find = false;
        for raw in names {
            let (on, name) = match raw.as_bytes()[0] {
                b'+' => (true, &raw[1..]),
                b'-' => (false, &raw[1..]),
                _ => (true, raw),
            };
            let name = name.trim().to_ascii_lowercase();
            let mut known = false;
            let expanded: Vec<&str> = GROUPS
                .iter()
                .find(|(g, _)| *g == name)
                .map(|(_, m)| m.to_vec())
                .unwrap_or_else(|| vec![name.as_str()]);
            for n in expanded {
                if n == "all" {
                    known = true;
                    for k in Kind::ALL {
                        enabled[k.idx()] = on && (k != Kind::Find || finder.is_some());
                    }
                    structs.iter_mut().for_each(|s| *s = on);
                } else if let Some(k) = Kind::ALL.iter().find(|k| k.name() == n) {
                    known = true;
                    enabled[k.idx()] = on;
                    asked_find |= on && *k == Kind::Find;
                } else if let Some(i) = records::find(n) {
                    known = true;
                    structs[i] = on;
                } else if let Some(i) = layer(n) {
                    known = true;
                    layers[i] = on;
                }
            }
            if !known {
                return Err(FeatureError::Settings(format!(
                    "unknown feature scanner {raw:?} (trawl scan --list-scanners lists them)"
                )));
            }
        }
        if enabled[Kind::Find.idx()] && finder.is_none() {
            if asked_find {
                return Err(FeatureError::Settings(
                    "the find scanner needs a keyword list (--find FILE)".into(),
                ));
            }
            enabled[Kind::Find.idx()] = false;
        }
        let max_depth = if opts.max_recursion_depth == 0 {
            DEFAULT_MAX_DEPTH
        } else {
            opts.max_recursion_depth
        };
        let max_inflate = if opts.max_inflate_bytes == 0 {
            DEFAULT_MAX_INFLATE
        } else {
            opts.max_inflate_bytes
        };
        Ok(Self {
            enabled,
            structs,
            layers,
            finder,
            stop: lists::WordList::parse(&opts.stop_list, "stop list")?,
            alert: lists::WordList::parse(&opts.alert_list, "alert list")?,
            signatures: inflate::signatures()
                .map_err(|e| FeatureError::Internal(format!("stream signatures: {e}")))?,
            max_depth,
            max_inflate: usize::try_from(max_inflate).unwrap_or(usize::MAX),
        })
    }

    /// The text scanners that run.
    pub fn enabled(&self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| self.enabled[k.idx()])
            .collect()
    }

    /// The structure scanners that run (their names).
    pub fn enabled_structs(&self) -> Vec<&'static str> {
        records::STRUCTS
            .iter()
            .zip(&self.structs)
            .filter(|(_, on)| **on)
            .map(|(s, _)| s.name)
            .collect()
    }

    /// Whether decoding layer `name` (one of [`LAYERS`]) is on.
    pub fn layer_on(&self, name: &str) -> bool {
        layer(name).is_some_and(|i| self.layers[i])
    }

    /// Scans `data` (`[shard.start, shard.scan_end)`), keeping the features
    /// that start in `[shard.start, shard.end)`. Reads up to [`CTX`] bytes
    /// around the shard, and compressed streams that run past the margin,
    /// through `evidence`.
    ///
    /// # Errors
    /// Cancellation, evidence read errors.
    pub fn scan_shard(
        &self,
        evidence: &dyn Evidence,
        shard: &Shard,
        data: &[u8],
        cancel: &AtomicBool,
    ) -> Result<FeatureOutput, FeatureError> {
        let owned = usize::try_from(shard.len())
            .map_err(|_| FeatureError::Internal("shard too large".into()))?;
        let size = evidence.size();
        let left = shard.start.min(CTX as u64) as usize;
        let right_have = (shard.scan_end - shard.end) as usize;
        let right_extra = if shard.scan_end < size && right_have < CTX {
            ((CTX - right_have) as u64).min(size - shard.scan_end) as usize
        } else {
            0
        };
        let read = |off: u64, len: usize| -> Result<Vec<u8>, FeatureError> {
            let mut v = vec![0u8; len];
            evidence.read_exact_at(off, &mut v)?;
            Ok(v)
        };
        let mut st = State::new(self, Some(evidence), cancel, owned);
        if left == 0 && right_extra == 0 {
            st.scan_image(data, shard.start, 0..owned)?;
        } else if data.len() <= 16 << 20 || owned < 4 * CTX {
            let mut v = read(shard.start - left as u64, left)?;
            v.reserve(data.len() + right_extra);
            v.extend_from_slice(data);
            v.extend(read(shard.scan_end, right_extra)?);
            st.scan_image(&v, shard.start - left as u64, left..left + owned)?;
        } else {
            // head and tail stitched with their context, the middle in place
            let h = if left > 0 { CTX } else { 0 };
            let t = if right_extra > 0 { CTX } else { 0 };
            if h > 0 {
                let mut v = read(shard.start - left as u64, left)?;
                v.extend_from_slice(&data[..(h + CTX).min(data.len())]);
                st.scan_image(&v, shard.start - left as u64, left..left + h)?;
            }
            st.scan_image(data, shard.start, h..owned - t)?;
            if t > 0 {
                let from = owned - t - CTX;
                let mut v = data[from..].to_vec();
                v.extend(read(shard.scan_end, right_extra)?);
                st.scan_image(&v, shard.start + from as u64, CTX..CTX + t)?;
            }
        }
        Ok(st.finish(shard))
    }

    /// Scans a whole buffer as an image of its own (tests, benchmarks,
    /// single files): features at offsets from the buffer's start.
    ///
    /// # Errors
    /// Cancellation.
    pub fn scan_buffer(
        &self,
        data: &[u8],
        cancel: &AtomicBool,
    ) -> Result<FeatureOutput, FeatureError> {
        let mut st = State::new(self, None, cancel, data.len());
        st.scan_image(data, 0, 0..data.len())?;
        let shard = Shard {
            index: 0,
            start: 0,
            end: data.len() as u64,
            scan_end: data.len() as u64,
        };
        Ok(st.finish(&shard))
    }
}

/// Where the bytes being scanned come from.
#[derive(Clone, Copy)]
enum Origin<'p> {
    /// The image: `buf[0]` is at image offset `base`.
    Image { base: u64 },
    /// Inflated data of the stream at image offset `top`, forensic path
    /// prefix `prefix` (`1234-GZIP`), nesting `depth`.
    Inner {
        top: u64,
        prefix: &'p str,
        depth: u32,
    },
}

struct State<'a> {
    sc: &'a FeatureScanner,
    evidence: Option<&'a dyn Evidence>,
    cancel: &'a AtomicBool,
    features: Vec<Feature>,
    notes: Vec<Note>,
    /// Per text scanner, then per structure scanner.
    nanos: Vec<Duration>,
    found: Vec<u64>,
    capped: Vec<bool>,
    records: Vec<records::Record>,
    b64_time: Duration,
    b16_time: Duration,
    cap: u64,
    utf16_time: Duration,
    inflate_time: Duration,
    streams: u64,
    inflated: u64,
    skipped: u64,
    budget_noted: bool,
    hits: Vec<Hit>,
    spans: Vec<Range<usize>>,
    digit_runs: Vec<(usize, usize)>,
    digits_time: Duration,
    raw: Decompress,
    zlib: Decompress,
}

impl<'a> State<'a> {
    fn new(
        sc: &'a FeatureScanner,
        evidence: Option<&'a dyn Evidence>,
        cancel: &'a AtomicBool,
        owned: usize,
    ) -> Self {
        Self {
            sc,
            evidence,
            cancel,
            features: Vec::new(),
            notes: Vec::new(),
            nanos: vec![Duration::ZERO; HEX_IDX + 1],
            found: vec![0; HEX_IDX + 1],
            capped: vec![false; HEX_IDX + 1],
            b64_time: Duration::ZERO,
            b16_time: Duration::ZERO,
            records: Vec::new(),
            cap: (owned as u64 / 256).max(100_000),
            utf16_time: Duration::ZERO,
            inflate_time: Duration::ZERO,
            streams: 0,
            inflated: 0,
            skipped: 0,
            budget_noted: false,
            hits: Vec::new(),
            spans: Vec::new(),
            digit_runs: Vec::new(),
            digits_time: Duration::ZERO,
            raw: Decompress::new(false),
            zlib: Decompress::new(true),
        }
    }

    fn note(&mut self, offset: u64, message: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(Note {
                analysis: "features".into(),
                offset,
                message,
            });
        }
    }

    fn finish(self, shard: &Shard) -> FeatureOutput {
        let mut stats = Vec::new();
        for k in Kind::ALL {
            if self.sc.enabled[k.idx()] {
                stats.push(ScannerStat {
                    scanner: format!("{STAT_PREFIX}{}", k.name()),
                    bytes: shard.len() + self.inflated,
                    nanos: self.nanos[k.idx()].as_nanos() as u64,
                    findings: self.found[k.idx()],
                    skipped_bytes: self.skipped,
                });
            }
        }
        for (i, s) in records::STRUCTS.iter().enumerate() {
            if self.sc.structs[i] {
                stats.push(ScannerStat {
                    scanner: format!("{STAT_PREFIX}{}", s.name),
                    bytes: shard.len() + self.inflated,
                    nanos: self.nanos[NKIND + i].as_nanos() as u64,
                    findings: self.found[NKIND + i],
                    skipped_bytes: self.skipped,
                });
            }
        }
        for (name, t) in [("base64", self.b64_time), ("base16", self.b16_time)] {
            if self.sc.layer_on(name) {
                stats.push(ScannerStat {
                    scanner: format!("{STAT_PREFIX}{name}"),
                    bytes: shard.len() + self.inflated,
                    nanos: t.as_nanos() as u64,
                    findings: if name == "base16" {
                        self.found[HEX_IDX]
                    } else {
                        0
                    },
                    skipped_bytes: 0,
                });
            }
        }
        stats.push(ScannerStat {
            scanner: format!("{STAT_PREFIX}utf16"),
            bytes: shard.len() + self.inflated,
            nanos: self.utf16_time.as_nanos() as u64,
            findings: 0,
            skipped_bytes: self.skipped,
        });
        stats.push(ScannerStat {
            scanner: format!("{STAT_PREFIX}digits"),
            bytes: shard.len() + self.inflated,
            nanos: self.digits_time.as_nanos() as u64,
            findings: 0,
            skipped_bytes: self.skipped,
        });
        stats.push(ScannerStat {
            scanner: format!("{STAT_PREFIX}inflate"),
            bytes: self.inflated,
            nanos: self.inflate_time.as_nanos() as u64,
            findings: self.streams,
            skipped_bytes: 0,
        });
        let mut features = self.features;
        features.sort_by(|a, b| a.sort_cmp(b));
        FeatureOutput {
            features,
            notes: self.notes,
            stats,
        }
    }

    fn check_cancel(&self) -> Result<(), FeatureError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(FeatureError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn scan_image(&mut self, buf: &[u8], base: u64, own: Range<usize>) -> Result<(), FeatureError> {
        self.scan_region(buf, Origin::Image { base }, own)
    }

    /// Scans `buf[own]` in cache-sized chunks: text scanners, UTF-16 runs,
    /// compressed streams.
    fn scan_region(
        &mut self,
        buf: &[u8],
        origin: Origin<'_>,
        own: Range<usize>,
    ) -> Result<(), FeatureError> {
        let abs = match origin {
            Origin::Image { base } => base,
            Origin::Inner { .. } => 0,
        };
        let mut lo = own.start;
        while lo < own.end {
            self.check_cancel()?;
            // chunk boundaries at absolute multiples of CHUNK
            let a = abs + lo as u64;
            let hi = ((a / CHUNK as u64 + 1) * CHUNK as u64 - abs) as usize;
            let hi = hi.min(own.end);
            self.make_spans(buf, abs, lo..hi);
            let spans = std::mem::take(&mut self.spans);
            self.hits.clear();
            self.run_scanners(buf, &spans);
            self.emit_hits(buf, origin, None);
            self.run_structs(buf, origin, &spans);
            self.scan_utf16(buf, origin, lo..hi, &spans);
            self.scan_streams(buf, origin, &spans)?;
            self.scan_radix(buf, origin, lo..hi)?;
            self.spans = spans;
            lo = hi;
        }
        Ok(())
    }

    /// The parts of `r` outside inert 4 KiB blocks (aligned at absolute
    /// offsets); inert bytes are counted as skipped.
    fn make_spans(&mut self, buf: &[u8], abs: u64, r: Range<usize>) {
        self.spans.clear();
        let mut cur: Option<Range<usize>> = None;
        let mut i = r.start;
        while i < r.end {
            let a = abs + i as u64;
            let next = (((a / BLOCK as u64) + 1) * BLOCK as u64 - abs) as usize;
            let j = next.min(r.end);
            let inert = a.is_multiple_of(BLOCK as u64)
                && j - i == BLOCK
                && text::is_inert_block(&buf[i..j]);
            if inert {
                self.skipped += BLOCK as u64;
                if let Some(c) = cur.take() {
                    self.spans.push(c);
                }
            } else {
                cur = Some(match cur.take() {
                    Some(c) => c.start..j,
                    None => i..j,
                });
            }
            i = j;
        }
        if let Some(c) = cur {
            self.spans.push(c);
        }
    }

    /// Runs every enabled text scanner over the spans, into `self.hits`.
    fn run_scanners(&mut self, buf: &[u8], spans: &[Range<usize>]) {
        let en = self.sc.enabled;
        let want = |k: Kind| en[k.idx()];
        let domains = want(Kind::Domain);
        let timed = |nanos: &mut [Duration], k: Kind, f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            nanos[k.idx()] += t.elapsed();
        };
        let hits = &mut self.hits;
        let nanos = &mut self.nanos;
        if want(Kind::Email) || domains {
            let k = if want(Kind::Email) {
                Kind::Email
            } else {
                Kind::Domain
            };
            timed(nanos, k, &mut || {
                for s in spans {
                    web::email(buf, s.clone(), want(Kind::Email), domains, hits);
                }
            });
        }
        if want(Kind::Url) || domains {
            let k = if want(Kind::Url) {
                Kind::Url
            } else {
                Kind::Domain
            };
            timed(nanos, k, &mut || {
                for s in spans {
                    web::url(buf, s.clone(), want(Kind::Url), domains, hits);
                }
            });
        }
        type ScanFn = fn(&[u8], Range<usize>, &mut Vec<Hit>);
        let simple: [(Kind, ScanFn); 4] = [
            (Kind::Domain, web::domain),
            (Kind::Ipv4, net::ipv4),
            (Kind::Ipv6, net::ipv6),
            (Kind::Ether, net::ether),
        ];
        for (k, f) in simple {
            if want(k) {
                timed(nanos, k, &mut || {
                    for s in spans {
                        f(buf, s.clone(), hits);
                    }
                });
            }
        }
        // the scanners anchored on digit runs share one list of the runs
        type RunFn = fn(&[u8], Range<usize>, &[(usize, usize)], &mut Vec<Hit>);
        let numeric: [(Kind, RunFn); 4] = [
            (Kind::Ccn, accts::ccn_in),
            (Kind::Iban, accts::iban_in),
            (Kind::Phone, accts::phone_in),
            (Kind::Bitcoin, accts::bitcoin_in),
        ];
        if numeric.iter().any(|(k, _)| want(*k)) {
            let t = Instant::now();
            let runs = &mut self.digit_runs;
            runs.clear();
            let mut bounds = Vec::with_capacity(spans.len());
            for s in spans {
                let from = runs.len();
                text::digit_runs(buf, s.start, (s.end + 2).min(buf.len()), |a, b| {
                    if accts::run_may_anchor(buf, a, b) {
                        runs.push((a, b))
                    }
                });
                bounds.push(from..runs.len());
            }
            self.digits_time += t.elapsed();
            for (k, f) in numeric {
                if want(k) {
                    timed(nanos, k, &mut || {
                        for (s, b) in spans.iter().zip(&bounds) {
                            f(buf, s.clone(), &runs[b.clone()], hits);
                        }
                    });
                }
            }
        }
        if want(Kind::Find)
            && let Some(fd) = &self.sc.finder
        {
            timed(nanos, Kind::Find, &mut || {
                for s in spans {
                    fd.scan(buf, s.clone(), hits);
                }
            });
        }
        hits.sort_unstable();
        hits.dedup();
    }

    /// Turns `self.hits` (over `buf`) into features. `utf16`: the hits are
    /// over decoded UTF-16 text (`dec`) of `run`, whose character `i` is at
    /// raw `first + 2 i`; only those starting in `own` (raw) are kept.
    fn emit_hits(
        &mut self,
        buf: &[u8],
        origin: Origin<'_>,
        utf16: Option<(&[u8], &utf16::Run, usize, Range<usize>)>,
    ) {
        let hits = std::mem::take(&mut self.hits);
        for h in &hits {
            let (pos, len, feature, wide) = match &utf16 {
                None => (
                    h.start,
                    h.end - h.start,
                    buf[h.start..h.end].to_vec(),
                    false,
                ),
                Some((dec, run, first, own)) => {
                    let first = *first;
                    let f = first + 2 * h.start;
                    let g = first + 2 * (h.end - 1);
                    let be = utf16::big_endian(buf, run, f, g);
                    let pos = if be { f - 1 } else { f };
                    if !own.contains(&pos) {
                        continue;
                    }
                    (
                        pos,
                        2 * (h.end - h.start),
                        dec[h.start..h.end].to_vec(),
                        true,
                    )
                }
            };
            let c0 = pos.saturating_sub(CONTEXT);
            let c1 = (pos + len + CONTEXT).min(buf.len());
            let context = buf[c0..c1].to_vec();
            let (offset, path) = match origin {
                Origin::Image { base } => {
                    let off = base + pos as u64;
                    (off, off.to_string())
                }
                Origin::Inner { top, prefix, .. } => (top, format!("{prefix}-{pos}")),
            };
            self.emit(
                h.kind.idx(),
                h.kind.name(),
                offset,
                path,
                feature,
                context,
                wide,
            );
        }
        self.hits = hits;
        self.hits.clear();
    }

    /// The structure scanners over the spans: their records, as features.
    fn run_structs(&mut self, buf: &[u8], origin: Origin<'_>, spans: &[Range<usize>]) {
        for (i, def) in records::STRUCTS.iter().enumerate() {
            if !self.sc.structs[i] {
                continue;
            }
            let t = Instant::now();
            let mut recs = std::mem::take(&mut self.records);
            recs.clear();
            for s in spans {
                (def.scan)(buf, s.clone(), &mut recs);
            }
            self.nanos[NKIND + i] += t.elapsed();
            for r in recs.drain(..) {
                debug_assert!(def.recorders.contains(&r.recorder));
                let (offset, path) = Self::path_at(origin, r.pos);
                let (feature, context) = if matches!(r.recorder, "kml" | "vcard") {
                    // the carved-file name bulk_extractor gives: the
                    // forensic path, known only here
                    let name = path.replace('/', "_");
                    (fill_pos(&r.feature, &name), fill_pos(&r.context, &name))
                } else {
                    (r.feature, r.context)
                };
                self.emit(NKIND + i, r.recorder, offset, path, feature, context, false);
            }
            self.records = recs;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        i: usize,
        recorder: &str,
        offset: u64,
        path: String,
        feature: Vec<u8>,
        context: Vec<u8>,
        utf16: bool,
    ) {
        if self.found[i] >= self.cap {
            if !self.capped[i] {
                self.capped[i] = true;
                self.note(
                    offset,
                    format!(
                        "{recorder}: more than {} features in one shard; the rest of the shard's {recorder} features are not reported",
                        self.cap,
                    ),
                );
            }
            return;
        }
        self.found[i] += 1;
        let mut scanner = recorder.to_string();
        if !self.sc.stop.is_empty() || !self.sc.alert.is_empty() {
            let f = format::escape(&feature);
            let c = format::escape(&context);
            if self.sc.stop.matches(&f, &c) {
                scanner.push_str(STOPPED_SUFFIX);
            } else if self.sc.alert.matches(&f, &c) {
                self.features.push(Feature {
                    scanner: ALERTS.into(),
                    offset,
                    path: path.clone(),
                    feature: feature.clone(),
                    context: context.clone(),
                    utf16,
                });
            }
        }
        self.features.push(Feature {
            scanner,
            offset,
            path,
            feature,
            context,
            utf16,
        });
    }

    /// UTF-16 runs with characters in `chunk`: decoded and scanned.
    fn scan_utf16(
        &mut self,
        buf: &[u8],
        origin: Origin<'_>,
        chunk: Range<usize>,
        spans: &[Range<usize>],
    ) {
        let t0 = Instant::now();
        let mut scan_time = Duration::ZERO;
        let mut found: Vec<utf16::Run> = Vec::new();
        for s in spans {
            utf16::runs(buf, s.start, (s.end + 8).min(buf.len()), |r| found.push(r));
        }
        // runs that start right after the chunk, whose big-endian reading
        // begins inside it
        if chunk.end + 8 <= buf.len() {
            utf16::runs(buf, chunk.end.saturating_sub(8), chunk.end + 1, |r| {
                found.push(r)
            });
        }
        found.sort_unstable_by_key(|r| (r.first, r.last));
        found.dedup();
        let mut dec = Vec::new();
        for run in &found {
            // characters considered: raw positions in [chunk.start, chunk.end + 1)
            let lo = chunk.start.max(run.first);
            let hi = (chunk.end + 1).min(run.last + 1);
            if lo >= hi {
                continue;
            }
            let d0 = lo.saturating_sub(utf16::DECODE_CTX).max(run.first);
            let d0 = run.first + (d0 - run.first).div_ceil(2) * 2;
            let d1 = (hi + utf16::DECODE_CTX).min(run.last);
            dec.clear();
            dec.extend((d0..=d1).step_by(2).map(|i| buf[i]));
            // own characters: index range of raw [lo, hi)
            let i0 = (lo.max(d0) - d0).div_ceil(2);
            let i1 = (hi - d0).div_ceil(2).min(dec.len());
            if i0 >= i1 {
                continue;
            }
            let t = Instant::now();
            self.hits.clear();
            self.run_scanners(&dec, std::slice::from_ref(&(i0..i1)));
            scan_time += t.elapsed();
            self.emit_hits(buf, origin, Some((&dec, run, d0, chunk.clone())));
        }
        self.utf16_time += t0.elapsed().saturating_sub(scan_time);
    }

    /// Compressed streams starting in the spans: inflated and scanned.
    fn scan_streams(
        &mut self,
        buf: &[u8],
        origin: Origin<'_>,
        spans: &[Range<usize>],
    ) -> Result<(), FeatureError> {
        let mut cands = Vec::new();
        for s in spans {
            cands.clear();
            let t0 = Instant::now();
            // 8 bytes past the span: a PDF stream is owned by its "stream"
            // keyword, up to 8 bytes before the zlib header
            inflate::candidates(
                &self.sc.signatures,
                buf,
                s.start..(s.end + 8).min(buf.len()),
                &mut cands,
            );
            self.inflate_time += t0.elapsed();
            for &(z, kind) in &cands {
                self.stream_at(buf, origin, s, z, kind)?;
            }
        }
        Ok(())
    }

    fn path_at(origin: Origin<'_>, p: usize) -> (u64, String) {
        match origin {
            Origin::Image { base } => (base + p as u64, format!("{}", base + p as u64)),
            Origin::Inner { top, prefix, .. } => (top, format!("{prefix}-{p}")),
        }
    }

    /// Inflates and scans the stream of `kind` at `buf[z]` if `own` owns it.
    fn stream_at(
        &mut self,
        buf: &[u8],
        origin: Origin<'_>,
        own: &Range<usize>,
        z: usize,
        kind: StreamKind,
    ) -> Result<(), FeatureError> {
        let (depth, base) = match origin {
            Origin::Image { base } => (0, base),
            Origin::Inner { depth, .. } => (depth, 0),
        };
        if !self.sc.layer_on(&kind.tag().to_ascii_lowercase()) {
            return Ok(());
        }
        let pdf_kw = if kind == StreamKind::Zlib && self.sc.layer_on("pdf") {
            textlayer::pdf_keyword(buf, z)
        } else {
            None
        };
        if !own.contains(&z) && !pdf_kw.is_some_and(|k| own.contains(&k)) {
            return Ok(());
        }
        let t = Instant::now();
        let src = Source {
            buf,
            base,
            evidence: match origin {
                Origin::Image { .. } => self.evidence,
                Origin::Inner { .. } => None,
            },
        };
        let Some(h) = inflate::header(&src, kind, base + z as u64)? else {
            self.inflate_time += t.elapsed();
            return Ok(());
        };
        let (top_z, path_z) = Self::path_at(origin, z);
        if depth >= self.sc.max_depth {
            self.inflate_time += t.elapsed();
            if own.contains(&z) {
                self.note(
                    top_z,
                    format!(
                        "{path_z}: {} stream not inflated: recursion depth limit {} reached",
                        kind.tag(),
                        self.sc.max_depth
                    ),
                );
            }
            return Ok(());
        }
        if self.inflated >= SHARD_INFLATE_BUDGET {
            self.inflate_time += t.elapsed();
            if !self.budget_noted {
                self.budget_noted = true;
                self.note(
                    top_z,
                    format!("{path_z}: compressed streams from here on not inflated: {SHARD_INFLATE_BUDGET} bytes inflated in this shard"),
                );
            }
            return Ok(());
        }
        let r = inflate::inflate(&src, &h, self.sc.max_inflate, &mut self.raw, &mut self.zlib)?;
        self.inflate_time += t.elapsed();
        let usable = kind != StreamKind::Zlib || r.complete || r.truncated;
        if !usable || r.data.len() < MIN_INFLATED {
            return Ok(());
        }
        // a PDF content stream: its text, as bulk_extractor extracts it
        if let Some(kw) = pdf_kw
            && textlayer::mostly_printable(&r.data)
        {
            if !own.contains(&kw) {
                return Ok(());
            }
            let (top, path) = Self::path_at(origin, kw);
            self.limit_note(&r, top, &path, kind);
            let text = textlayer::pdf_text(&r.data);
            return self.scan_layer(&text, top, format!("{path}-PDF"), depth + 1);
        }
        if !own.contains(&z) {
            return Ok(());
        }
        self.limit_note(&r, top_z, &path_z, kind);
        self.streams += 1;
        let prefix = format!("{path_z}-{}", kind.tag());
        self.scan_layer(&r.data, top_z, prefix.clone(), depth + 1)?;
        // Office XML: its text, as bulk_extractor's MSXML scanner extracts it
        if r.data.starts_with(b"<?xml ") && self.sc.layer_on("msxml") {
            let text = textlayer::msxml_text(&r.data);
            self.scan_layer(&text, top_z, format!("{prefix}-0-MSXML"), depth + 1)?;
        }
        Ok(())
    }

    /// Base64 blocks and hex runs starting in `own`: decoded and scanned
    /// (hex strings of key sizes reported).
    fn scan_radix(
        &mut self,
        buf: &[u8],
        origin: Origin<'_>,
        own: Range<usize>,
    ) -> Result<(), FeatureError> {
        let depth = match origin {
            Origin::Image { .. } => 0,
            Origin::Inner { depth, .. } => depth,
        };
        if self.sc.layer_on("base64") {
            let t = Instant::now();
            let from = radix::base64_sync(buf, own.start, CTX);
            let mut blocks = Vec::new();
            radix::base64_blocks(buf, from, own.clone(), |b| blocks.push(b));
            self.b64_time += t.elapsed();
            for b in blocks {
                let t = Instant::now();
                let data = self.base64_block(buf, origin, b)?;
                self.b64_time += t.elapsed();
                let (top, path) = Self::path_at(origin, b.start);
                if !self.layer_allowed(top, &path, "BASE64", depth) {
                    continue;
                }
                self.streams += 1;
                self.scan_layer(&data, top, format!("{path}-BASE64"), depth + 1)?;
            }
        }
        if self.sc.layer_on("base16") {
            let t = Instant::now();
            let mut runs = Vec::new();
            radix::hex_runs(buf, own, records::WINDOW, |r| runs.push(r));
            self.b16_time += t.elapsed();
            for r in runs {
                let Some(data) = radix::decode_hex(&buf[r.clone()]) else {
                    continue;
                };
                let (top, path) = Self::path_at(origin, r.start);
                if matches!(data.len(), 6 | 16 | 32) {
                    let c0 = r.start.saturating_sub(CONTEXT);
                    let c1 = (r.end + CONTEXT).min(buf.len());
                    let (feature, context) = (buf[r.clone()].to_vec(), buf[c0..c1].to_vec());
                    self.emit(HEX_IDX, HEX_RECORDER, top, path, feature, context, false);
                } else if data.len() > 64 && self.layer_allowed(top, &path, "BASE16", depth) {
                    self.streams += 1;
                    self.scan_layer(&data, top, format!("{path}-BASE16"), depth + 1)?;
                }
            }
        }
        Ok(())
    }

    /// The decoded bytes of base64 block `b`; a block that runs to the end
    /// of the buffer is read on through the evidence (up to the layer
    /// bound).
    fn base64_block(
        &mut self,
        buf: &[u8],
        origin: Origin<'_>,
        b: radix::Block,
    ) -> Result<Vec<u8>, FeatureError> {
        let cap = self.sc.max_inflate.saturating_mul(4) / 3 + 4096;
        let mut data = match (b.open, origin, self.evidence) {
            (true, Origin::Image { base }, Some(ev)) if base + (b.end as u64) < ev.size() => {
                let at = base + b.start as u64;
                let mut want = ((b.end - b.start) * 2).max(1 << 20).min(cap);
                loop {
                    let mut v = vec![0u8; want];
                    let n = ev.read_at(at, &mut v)?;
                    v.truncate(n);
                    let mut first = None;
                    radix::base64_blocks(&v, 0, 0..1, |blk| {
                        first.get_or_insert(blk);
                    });
                    match first {
                        Some(blk) if blk.open && n == want && want < cap => {
                            want = (want * 2).min(cap);
                        }
                        Some(blk) => break radix::decode_base64(&v[..blk.end]),
                        None => break radix::decode_base64(&buf[b.start..b.end]),
                    }
                }
            }
            _ => radix::decode_base64(&buf[b.start..b.end]),
        };
        data.truncate(self.sc.max_inflate);
        Ok(data)
    }

    /// Whether a decoded layer at `path` may be scanned: the depth and the
    /// shard's decoding budget (notes when not).
    fn layer_allowed(&mut self, top: u64, path: &str, tag: &str, depth: u32) -> bool {
        if depth >= self.sc.max_depth {
            self.note(
                top,
                format!(
                    "{path}: {tag} data not decoded: recursion depth limit {} reached",
                    self.sc.max_depth
                ),
            );
            return false;
        }
        if self.inflated >= SHARD_INFLATE_BUDGET {
            if !self.budget_noted {
                self.budget_noted = true;
                self.note(
                    top,
                    format!("{path}: decoded data from here on not scanned: {SHARD_INFLATE_BUDGET} bytes decoded in this shard"),
                );
            }
            return false;
        }
        true
    }

    fn limit_note(&mut self, r: &inflate::Inflated, top: u64, path: &str, kind: StreamKind) {
        if r.truncated {
            self.note(
                top,
                format!(
                    "{path}: {} stream inflated to the limit of {} bytes; the rest was not scanned",
                    kind.tag(),
                    self.sc.max_inflate
                ),
            );
        }
    }

    /// Scans decoded data (inflated, or text extracted from it).
    fn scan_layer(
        &mut self,
        data: &[u8],
        top: u64,
        prefix: String,
        depth: u32,
    ) -> Result<(), FeatureError> {
        if data.len() < MIN_INFLATED {
            return Ok(());
        }
        self.inflated += data.len() as u64;
        // listed, for the job-wide deduplication of identical buffers
        {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(data);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            self.features.push(Feature {
                scanner: DECODED_RECORDER.into(),
                offset: top,
                path: prefix.clone(),
                feature: hex.into_bytes(),
                context: format!("size={}", data.len()).into_bytes(),
                utf16: false,
            });
        }
        let inner = Origin::Inner {
            top,
            prefix: &prefix,
            depth,
        };
        let saved = std::mem::take(&mut self.spans);
        let res = self.scan_region(data, inner, 0..data.len());
        self.spans = saved;
        res
    }
}

#[cfg(test)]
mod recorder_name_tests {
    use super::*;

    #[test]
    fn recorder_names_are_the_scanners_their_stop_lists_and_alerts() {
        for k in Kind::ALL {
            assert!(is_recorder_name(k.name()));
            assert!(is_recorder_name(&format!("{}{STOPPED_SUFFIX}", k.name())));
        }
        assert!(is_recorder_name(ALERTS));
        for bad in [
            "",
            "..",
            "/tmp/x",
            "../../../../tmp/y",
            "email/x",
            "email\0",
            "Email",
            "alerts_stopped",
            "_stopped",
            "email_stopped_stopped",
            "ip6",
            "all",
        ] {
            assert!(!is_recorder_name(bad), "{bad:?}");
        }
    }
}
