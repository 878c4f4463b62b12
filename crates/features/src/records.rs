//! Structure scanners: features recognised by their binary or textual
//! structure (EXIF blocks, network packets, executable headers, key
//! schedules, ...) rather than by a text pattern, in bulk_extractor's
//! feature-file names and formats.
//!
//! Each scanner is a function over a buffer that pushes [`Record`]s: the
//! recorder (feature file) it writes to, the position of the structure's
//! first byte, and the feature and context columns exactly as
//! bulk_extractor writes them.
//!
//! # Exactness across shards
//!
//! A scanner is called with the range of positions it owns (`own`) and
//! reports only records whose `pos` lies in it. To decide about a structure
//! at `pos` it may read `buf[pos - BEFORE .. pos + WINDOW]` (clamped to the
//! buffer) and nothing else: the buffer always holds that much around the
//! owned range, or reaches the image's (or the decoded layer's) start or
//! end, so every shard plan sees the same bytes. [`window`] gives that view.

use std::ops::Range;

/// A feature found by a structure scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Feature file (`features/NAME.txt`); one of the scanner's
    /// [`StructDef::recorders`].
    pub recorder: &'static str,
    /// Position of the structure's first byte in the scanned buffer.
    pub pos: usize,
    /// The feature column.
    pub feature: Vec<u8>,
    /// The context column.
    pub context: Vec<u8>,
}

/// Bytes a structure scanner may read from a structure's first byte on.
pub const WINDOW: usize = 60 << 10;
/// Bytes a structure scanner may read before a structure's first byte.
pub const BEFORE: usize = 1024;

/// The bytes a scanner may read for a structure at `pos`: the slice and
/// the index of `pos` in it.
pub fn window(buf: &[u8], pos: usize) -> (&[u8], usize) {
    let a = pos.saturating_sub(BEFORE);
    let b = pos.saturating_add(WINDOW).min(buf.len());
    (&buf[a..b], pos - a)
}

/// A structure scanner's entry point: records for structures starting in
/// `own`, reading no more than [`window`] allows around each.
pub type ScanFn = fn(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>);

/// A structure scanner.
#[derive(Debug)]
pub struct StructDef {
    /// bulk_extractor's scanner name (`--enable NAME`, `--disable NAME`).
    pub name: &'static str,
    /// The feature files it writes.
    pub recorders: &'static [&'static str],
    /// On unless disabled.
    pub default: bool,
    /// One line for `--list-scanners`.
    pub about: &'static str,
    pub scan: ScanFn,
}

/// Every structure scanner, in `--list-scanners` order.
pub static STRUCTS: &[StructDef] = &[
    StructDef {
        name: "exif",
        recorders: &["exif", "gps"],
        default: true,
        about: "EXIF/TIFF metadata of JPEG, TIFF and PSD data (exif.txt, gps.txt)",
        scan: crate::exif::scan,
    },
    StructDef {
        name: "gps",
        recorders: &["gps"],
        default: true,
        about: "Garmin GPX track points (gps.txt: time, latitude, longitude, elevation, speed, course)",
        scan: crate::gpx::scan,
    },
    StructDef {
        name: "net",
        recorders: crate::netscan::RECORDERS,
        default: true,
        about: "IPv4/IPv6 packets, Ethernet frames and pcap records (ip, ether, tcp, packets.pcap)",
        scan: crate::netscan::scan,
    },
    StructDef {
        name: "json",
        recorders: &["json"],
        default: true,
        about: "JSON objects and arrays (json.txt: text, SHA-1)",
        scan: crate::json::scan,
    },
    StructDef {
        name: "aes",
        recorders: &["aes_keys"],
        default: false,
        about: "AES-128 and AES-256 key schedules in memory",
        scan: crate::aes::scan,
    },
    StructDef {
        name: "elf",
        recorders: &["elf"],
        default: false,
        about: "ELF executable headers (elf.txt)",
        scan: crate::elf::scan,
    },
    StructDef {
        name: "kml",
        recorders: &["kml"],
        default: false,
        about: "KML documents (kml.txt: carved-file record)",
        scan: crate::kml::scan,
    },
    StructDef {
        name: "rar",
        recorders: &["rar"],
        default: false,
        about: "RAR 1.5-4.x volumes and members (rar.txt)",
        scan: crate::rar::scan,
    },
    StructDef {
        name: "sqlite",
        recorders: &["sqlite_carved"],
        default: false,
        about: "SQLite 3 database headers (sqlite_carved.txt)",
        scan: crate::sqlite::scan,
    },
    StructDef {
        name: "utmp",
        recorders: &["utmp_carved"],
        default: false,
        about: "Linux utmp/wtmp records, both byte orders (utmp_carved.txt)",
        scan: crate::utmp::scan,
    },
    StructDef {
        name: "vcard",
        recorders: &["vcard"],
        default: false,
        about: "vCards (vcard.txt: carved-file record)",
        scan: crate::vcard::scan,
    },
    StructDef {
        name: "vin",
        recorders: &["vin"],
        default: false,
        about: "vehicle identification numbers, check digit verified",
        scan: crate::vin::scan,
    },
    StructDef {
        name: "winpe",
        recorders: &["winpe"],
        default: false,
        about: "Windows PE executable headers (winpe.txt)",
        scan: crate::winpe::scan,
    },
    StructDef {
        name: "winprefetch",
        recorders: &["winprefetch"],
        default: false,
        about: "Windows prefetch files, XP and Vista/7 formats (winprefetch.txt)",
        scan: crate::winprefetch::scan,
    },
];

/// The structure scanner of a name.
pub fn find(name: &str) -> Option<usize> {
    STRUCTS.iter().position(|s| s.name == name)
}

/// The recorder whose features are packets: written to
/// `features/packets.pcap` (one pcap record each) instead of a text file.
pub const PCAP_RECORDER: &str = "packets";

/// The pcap link type of a recorder whose features are pcap records
/// (`packets`: Ethernet; `packets_80211`: IEEE 802.11), written to
/// `features/NAME.pcap`; `None` for a text recorder.
pub fn pcap_link_type(recorder: &str) -> Option<u32> {
    match recorder {
        PCAP_RECORDER => Some(1),
        "packets_80211" => Some(105),
        _ => None,
    }
}
