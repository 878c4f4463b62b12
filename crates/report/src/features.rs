//! Feature files in bulk_extractor's format.
//!
//! ```text
//! DIR/features/NAME.txt            one line per feature: OFFSET<TAB>FEATURE<TAB>CONTEXT
//! DIR/features/NAME_histogram.txt  n=COUNT<TAB>FEATURE[<TAB>(utf16=N)], most frequent first
//! DIR/features/NAME_stopped.txt    features on the stop list (never dropped)
//! DIR/features/alerts.txt          features on the alert list (also in their own file)
//! ```
//!
//! * `OFFSET` is the forensic path (`1234`, `1234-GZIP-56`), the same for a
//!   feature found in UTF-16 text (converted to UTF-8), as bulk_extractor
//!   writes it.
//! * Features and contexts are escaped as bulk_extractor 2.x escapes them:
//!   bytes below 0x20 and `\` as `\ooo` octal, invalid UTF-8 byte by byte.
//! * Header lines start with `#`: `# Feature-Recorder: NAME`,
//!   `# Filename: …`, `# Feature-File-Version: 1.1`.
//! * A fourth column, named in a `# Columns:` header line, holds what the
//!   feature is: the class of an IP address (`ipv4`, `ipv6`: `private`,
//!   `public`, `loopback`, `link-local`, …), the brand of a card (`ccn`), the
//!   country of an IBAN (`iban`), the format of a phone number (`phone`),
//!   the type of a bitcoin address (`bitcoin`), and in `alerts.txt` the
//!   scanner that found the feature.
//! * Lines are in image order: offset, then forensic path numerically.
//! * Histograms count identical features (e-mail addresses in lower case,
//!   as bulk_extractor counts them), most frequent first, then by feature;
//!   `(utf16=N)` tells how many were found in UTF-16 text.
//! * Every scanner that ran has its file, empty but for the header when it
//!   found nothing.

use crate::attrib::Attribution;
use crate::paths::{RelPath, ReportDir};
use crate::write::io_err;
use crate::{JobResults, ReportError};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use trawl_core::Feature;
use trawl_features::records::pcap_link_type;
use trawl_features::{ALERTS, STAT_PREFIX, format};

/// Writes this part of the report directory. Each file's name is built
/// from its recorder's name by [`RelPath::feature_file`], which refuses
/// anything but a recorder of trawl's scanners.
pub(crate) fn write(
    dir: &ReportDir,
    r: &JobResults,
    attr: Option<&Attribution<'_>>,
) -> Result<(), ReportError> {
    let mut by: BTreeMap<&str, Vec<&Feature>> = BTreeMap::new();
    for f in &r.features {
        by.entry(f.scanner.as_str()).or_default().push(f);
    }
    // every scanner that ran, from the statistics
    let mut ran: BTreeSet<&str> = BTreeSet::new();
    for s in &r.stats {
        if let Some(name) = s.scanner.strip_prefix(STAT_PREFIX) {
            ran.extend(trawl_features::recorders_of(name));
        }
    }
    if by.is_empty() && ran.is_empty() {
        return Ok(());
    }
    let names: BTreeSet<&str> = by.keys().copied().chain(ran.iter().copied()).collect();
    // source scanner of each alert
    let mut source: BTreeMap<(u64, &str, &[u8]), &str> = BTreeMap::new();
    if by.contains_key(ALERTS) {
        for f in &r.features {
            if f.scanner != ALERTS {
                source.insert(
                    (f.offset, f.path.as_str(), f.feature.as_slice()),
                    f.scanner.as_str(),
                );
            }
        }
    }
    for name in names {
        let mut list: Vec<&Feature> = by.get(name).cloned().unwrap_or_default();
        if let Some(link_type) = pcap_link_type(name) {
            list.sort_by(|a, b| {
                a.offset
                    .cmp(&b.offset)
                    .then_with(|| format::path_cmp(&a.path, &b.path))
            });
            write_pcap(dir, name, link_type, &list)?;
            continue;
        }
        list.sort_by(|a, b| {
            a.offset
                .cmp(&b.offset)
                .then_with(|| format::path_cmp(&a.path, &b.path))
                .then_with(|| a.feature.cmp(&b.feature))
                .then_with(|| a.context.cmp(&b.context))
        });
        let column = if name == ALERTS {
            Some("scanner")
        } else {
            format::annotation_column(name)
        };
        let (path, w) = dir.create_file(&RelPath::feature_file(name)?)?;
        let mut w = BufWriter::new(w);
        let mut text = header(r, name, "Feature-File-Version");
        if let Some(c) = column {
            text.push_str(&format!("# Columns: offset\tfeature\tcontext\t{c}\n"));
        }
        for f in &list {
            text.push_str(&f.path);
            text.push('\t');
            text.push_str(&format::escape(&f.feature));
            text.push('\t');
            text.push_str(&format::escape(&f.context));
            if column.is_some() {
                text.push('\t');
                let note = if name == ALERTS {
                    source
                        .get(&(f.offset, f.path.as_str(), f.feature.as_slice()))
                        .map(|s| s.to_string())
                } else {
                    format::annotate(name, &f.feature)
                };
                text.push_str(&note.unwrap_or_default());
            }
            text.push('\n');
            if text.len() > 1 << 16 {
                w.write_all(text.as_bytes()).map_err(io_err(&path))?;
                text.clear();
            }
        }
        w.write_all(text.as_bytes()).map_err(io_err(&path))?;
        w.flush().map_err(io_err(&path))?;
        if let Some(a) = attr {
            write_annotated(dir, r, name, &list, a)?;
        }
        if histogram_of(name) {
            write_histogram(r, dir, name, &list)?;
        }
    }
    Ok(())
}

/// Whether recorder `name` has a histogram: the text scanners' recorders,
/// and of the structure scanners' those bulk_extractor histograms (IP
/// addresses and TCP flows of packets).
fn histogram_of(name: &str) -> bool {
    trawl_features::Kind::ALL.iter().any(|k| k.name() == name) || matches!(name, "ip" | "tcp")
}

/// `features/NAME.pcap` (`packets.pcap`, `packets_80211.pcap`): a pcap
/// file (microsecond timestamps, the recorder's link type) whose records
/// are the packet features in image order; each feature is one record, its
/// 16-byte header included.
fn write_pcap(
    dir: &ReportDir,
    name: &str,
    link_type: u32,
    list: &[&Feature],
) -> Result<(), ReportError> {
    let (path, w) = dir.create_file(&RelPath::pcap_file(name)?)?;
    let mut w = BufWriter::new(w);
    let mut head = Vec::with_capacity(24);
    head.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    head.extend_from_slice(&2u16.to_le_bytes());
    head.extend_from_slice(&4u16.to_le_bytes());
    head.extend_from_slice(&0i32.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&65535u32.to_le_bytes());
    head.extend_from_slice(&link_type.to_le_bytes());
    w.write_all(&head).map_err(io_err(&path))?;
    for f in list {
        w.write_all(&f.feature).map_err(io_err(&path))?;
    }
    w.flush().map_err(io_err(&path))?;
    Ok(())
}

/// `features/annotated/NAME.txt`: see [`crate::attrib`].
fn write_annotated(
    dir: &ReportDir,
    r: &JobResults,
    name: &str,
    list: &[&Feature],
    a: &Attribution<'_>,
) -> Result<(), ReportError> {
    let (path, w) = dir.create_file(&RelPath::annotated_feature_file(name)?)?;
    let mut w = BufWriter::new(w);
    let mut text = String::from("# Position\tFeature\tContext\tMD5\n");
    text.push_str(&format!(
        "# trawl {} attribution of features/{name}.txt to the files of the file-system listing\n",
        r.provenance.version
    ));
    text.push_str(&header(r, name, "Feature-File-Version"));
    let (mut located, mut encoded) = (0u64, 0u64);
    let mut buf = Vec::new();
    for f in list {
        text.push_str(&f.path);
        text.push('\t');
        text.push_str(&format::escape(&f.feature));
        text.push('\t');
        text.push_str(&format::escape(&f.context));
        if f.path.contains('-') {
            encoded += 1;
        }
        if let (_, _, Some(file)) = a.file_at(f.offset, &mut buf) {
            located += 1;
            text.push('\t');
            if file.alloc != "allocated" {
                text.push('*');
            }
            text.push_str(&file.path);
            text.push('\t');
            text.push_str(file.md5.as_deref().unwrap_or(""));
        }
        text.push('\n');
        if text.len() > 1 << 16 {
            w.write_all(text.as_bytes()).map_err(io_err(&path))?;
            text.clear();
        }
    }
    let n = list.len() as u64;
    text.push_str(&format!(
        "# Total features input: {n}\n# Total features located to files: {located}\n# Total features in unallocated space: {}\n# Total features in encoded regions: {encoded}\n",
        n - located
    ));
    w.write_all(text.as_bytes()).map_err(io_err(&path))?;
    w.flush().map_err(io_err(&path))
}

fn header(r: &JobResults, name: &str, version_line: &str) -> String {
    let mut h = format!("# Feature-Recorder: {name}\n");
    if !r.evidence.path.is_empty() {
        h.push_str(&format!("# Filename: {}\n", r.evidence.path));
    }
    h.push_str(&format!("# {version_line}: 1.1\n"));
    let tool = if r.provenance.tool.is_empty() {
        "trawl"
    } else {
        r.provenance.tool.as_str()
    };
    h.push_str(&format!("# Generator: {tool} {}\n", r.provenance.version));
    h
}

fn write_histogram(
    r: &JobResults,
    dir: &ReportDir,
    name: &str,
    list: &[&Feature],
) -> Result<(), ReportError> {
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for f in list {
        let key = if name == "email" {
            format::escape(&f.feature.to_ascii_lowercase())
        } else {
            format::escape(&f.feature)
        };
        let e = counts.entry(key).or_default();
        e.0 += 1;
        if f.utf16 {
            e.1 += 1;
        }
    }
    let mut rows: Vec<(String, (u64, u64))> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    let (path, w) = dir.create_file(&RelPath::histogram_file(name)?)?;
    let mut w = BufWriter::new(w);
    let mut text = header(r, name, "Histogram-File-Version");
    for (key, (n, n16)) in rows {
        text.push_str(&format!("n={n}\t{key}"));
        if n16 > 0 {
            text.push_str(&format!("\t(utf16={n16})"));
        }
        text.push('\n');
    }
    w.write_all(text.as_bytes()).map_err(io_err(&path))?;
    w.flush().map_err(io_err(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_core::ScannerStat;

    fn feat(scanner: &str, offset: u64, path: &str, feature: &[u8], context: &[u8]) -> Feature {
        Feature {
            scanner: scanner.into(),
            offset,
            path: path.into(),
            feature: feature.to_vec(),
            context: context.to_vec(),
            utf16: false,
        }
    }

    #[test]
    fn writes_bulk_extractor_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = JobResults::default();
        r.evidence.path = "/cases/disk.E01".into();
        r.provenance.version = "0.1.0".into();
        r.features = vec![
            feat("email", 10, "10", b"Bob@x.com", b"to: Bob@x.com\n"),
            feat("email", 200, "100-GZIP-10", b"bob@x.com", b"\0bob@x.com\\"),
            feat("email", 100, "100-GZIP-9", b"eve@y.org", b"eve@y.org"),
            Feature {
                utf16: true,
                ..feat("email", 300, "300", b"bob@x.com", b"b\0o\0b\0")
            },
            feat(
                "email_stopped",
                400,
                "400",
                b"noreply@x.com",
                b"noreply@x.com",
            ),
            feat("alerts", 10, "10", b"Bob@x.com", b"to: Bob@x.com\n"),
            feat("ipv4", 50, "50", b"10.1.2.3", b" 10.1.2.3 "),
            feat(
                "ccn",
                60,
                "60",
                b"4111 1111 1111 1111",
                b"card 4111 1111 1111 1111.",
            ),
        ];
        r.stats = vec![
            ScannerStat {
                scanner: "features/url".into(),
                ..Default::default()
            },
            ScannerStat {
                scanner: "hash".into(),
                ..Default::default()
            },
        ];
        write(&ReportDir::new(dir.path()), &r, None).unwrap();
        let read = |n: &str| std::fs::read_to_string(dir.path().join("features").join(n)).unwrap();
        let email = read("email.txt");
        assert_eq!(
            email,
            "# Feature-Recorder: email\n# Filename: /cases/disk.E01\n# Feature-File-Version: 1.1\n# Generator: trawl 0.1.0\n\
             10\tBob@x.com\tto: Bob@x.com\\012\n\
             100-GZIP-9\teve@y.org\teve@y.org\n\
             100-GZIP-10\tbob@x.com\t\\000bob@x.com\\134\n\
             300\tbob@x.com\tb\\000o\\000b\\000\n"
        );
        let h = read("email_histogram.txt");
        assert!(h.contains("# Histogram-File-Version: 1.1\n"));
        assert!(
            h.ends_with("n=3\tbob@x.com\t(utf16=1)\nn=1\teve@y.org\n"),
            "{h}"
        );
        assert!(read("email_stopped.txt").contains("400\tnoreply@x.com\tnoreply@x.com\n"));
        let alerts = read("alerts.txt");
        assert!(alerts.contains("# Columns: offset\tfeature\tcontext\tscanner\n"));
        assert!(alerts.contains("10\tBob@x.com\tto: Bob@x.com\\012\temail\n"));
        assert!(read("ipv4.txt").contains("50\t10.1.2.3\t 10.1.2.3 \tprivate\n"));
        assert!(read("ccn.txt").contains("\tvisa\n"));
        // a scanner that ran and found nothing has its (empty) file
        assert!(read("url.txt").starts_with("# Feature-Recorder: url\n"));
        assert!(!dir.path().join("features/alerts_histogram.txt").exists());
        assert!(
            !dir.path()
                .join("features/email_stopped_histogram.txt")
                .exists()
        );
    }

    #[test]
    fn nothing_without_features() {
        let dir = tempfile::tempdir().unwrap();
        write(&ReportDir::new(dir.path()), &JobResults::default(), None).unwrap();
        assert!(!dir.path().join("features").exists());
    }
}
