//! Format detection from magic bytes, and the `open` entry points.

use crate::split::discover_segments;
use crate::{Evidence, EvidenceError, RawEvidence, SplitRawEvidence, ewf, vdisk};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An evidence container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A raw (dd) image in one file.
    Raw,
    /// A raw image split over several files.
    SplitRaw,
    /// Expert Witness Format (EnCase E01/Ex01), possibly multi-segment.
    Ewf,
    /// QEMU copy-on-write disk, version 2 or 3.
    Qcow2,
    /// VMware virtual disk (sparse, stream-optimized, or a descriptor
    /// naming flat or sparse extents).
    Vmdk,
    /// Microsoft Virtual PC / Hyper-V disk (fixed, dynamic, differencing).
    Vhd,
    /// Hyper-V virtual hard disk v2 (fixed, dynamic).
    Vhdx,
}

impl Format {
    /// The format name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::SplitRaw => "split-raw",
            Format::Ewf => "ewf",
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "vmdk",
            Format::Vhd => "vhd",
            Format::Vhdx => "vhdx",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Containers recognised by their magic but not read by trawl: refusing them
/// beats hashing a container as if it were the disk.
const UNSUPPORTED: &[(&[u8], usize, &str, &str)] = &[
    (
        b"LVF\x09\x0d\x0a\xff\x00",
        0,
        "EWF logical evidence (L01)",
        "L01 holds files, not a disk image; export them and scan the files",
    ),
    (
        b"LEF2\x0d\x0a\x81\x00",
        0,
        "EWF2 logical evidence (Lx01)",
        "Lx01 holds files, not a disk image; export them and scan the files",
    ),
    (
        b"AFF10\x0d\x0a\x00",
        0,
        "AFF",
        "convert to raw with `affconvert -r`",
    ),
    (b"AFF4", 0, "AFF4", "export to raw first"),
];

/// Detects the container format of `path` from its first bytes.
///
/// # Errors
/// Missing or unreadable file, or a container format trawl does not read
/// (AFF, AFF4, L01, Lx01), named with a conversion hint. Virtual disks
/// (QCOW2, VMDK, VHD, VHDX) by their header, fixed VHDs by their footer.
pub fn detect_format(path: &Path) -> Result<Format, EvidenceError> {
    let remote = crate::remote::is_remote(path);
    let format = probe(path)?;
    if remote
        && matches!(
            format,
            Format::Qcow2 | Format::Vmdk | Format::Vhd | Format::Vhdx
        )
    {
        return Err(EvidenceError::Unsupported {
            path: path.to_path_buf(),
            format: "virtual-machine disk in object storage",
            hint: "virtual disks are read from files: copy it to an evidence root, or convert it to raw or E01",
        });
    }
    Ok(format)
}

/// The format of a file or an object from its first 512 bytes and, for a
/// fixed VHD, its last 512 (files: by their metadata length, which is 0
/// for devices; objects: by their size).
fn probe(path: &Path) -> Result<Format, EvidenceError> {
    let (h, size) = crate::remote::Handle::open(path)?;
    let footer_at = match h.file() {
        Some(f) => f
            .metadata()
            .map_err(|e| EvidenceError::io(path, 0, e))?
            .len(),
        None => size,
    };
    let mut head = [0u8; 512];
    let n = h.pread_full(path, 0, &mut head)?;
    let head = &head[..n];
    if ewf::magic_version(head).is_some() {
        return Ok(Format::Ewf);
    }
    if vdisk::qcow2::probe(head) {
        return Ok(Format::Qcow2);
    }
    if vdisk::vmdk::probe(head) {
        return Ok(Format::Vmdk);
    }
    if vdisk::vhdx::probe(head) {
        return Ok(Format::Vhdx);
    }
    if vdisk::vhd::probe(head) {
        return Ok(Format::Vhd);
    }
    for (magic, at, name, hint) in UNSUPPORTED {
        if head.len() >= at + magic.len() && &head[*at..at + magic.len()] == *magic {
            return Err(EvidenceError::Unsupported {
                path: path.to_path_buf(),
                format: name,
                hint,
            });
        }
    }
    // A fixed VHD: a raw disk followed by a VHD footer.
    if footer_at >= 511 {
        let mut tail = [0u8; 512];
        let k = footer_at.min(512);
        let got = h.pread_full(path, footer_at - k, &mut tail[..k as usize])?;
        if vdisk::vhd::probe_footer(&tail[..got]) {
            return Ok(Format::Vhd);
        }
    }
    Ok(if discover_segments(path).len() > 1 {
        Format::SplitRaw
    } else {
        Format::Raw
    })
}

/// Opens an evidence item by its (first) file, detecting the format and
/// discovering further segments from the name.
///
/// # Errors
/// See [`detect_format`]; EWF structure errors; missing segments.
pub fn open(path: impl AsRef<Path>) -> Result<Arc<dyn Evidence>, EvidenceError> {
    let path = path.as_ref();
    match detect_format(path)? {
        Format::Ewf => Ok(Arc::new(ewf::EwfEvidence::open(path)?)),
        Format::SplitRaw => Ok(Arc::new(SplitRawEvidence::open(&discover_segments(path))?)),
        // An object: one segment, read by ranges.
        Format::Raw if crate::remote::is_remote(path) => {
            Ok(Arc::new(SplitRawEvidence::open(&[path.to_path_buf()])?))
        }
        Format::Raw => Ok(Arc::new(RawEvidence::open(path)?)),
        f @ (Format::Qcow2 | Format::Vmdk | Format::Vhd | Format::Vhdx) => {
            open_vdisk(f, &[path.to_path_buf()])
        }
    }
}

/// Opens a virtual disk: `paths[0]` the disk, the rest the files it refers
/// to (backing files, parents, extents) given as evidence too.
fn open_vdisk(format: Format, paths: &[PathBuf]) -> Result<Arc<dyn Evidence>, EvidenceError> {
    Ok(match format {
        Format::Qcow2 => Arc::new(vdisk::qcow2::Qcow2Evidence::open(paths)?),
        Format::Vmdk => Arc::new(vdisk::vmdk::VmdkEvidence::open(paths)?),
        Format::Vhd => Arc::new(vdisk::vhd::VhdEvidence::open(paths)?),
        Format::Vhdx => Arc::new(vdisk::vhdx::VhdxEvidence::open(paths)?),
        Format::Raw | Format::SplitRaw | Format::Ewf => {
            return Err(EvidenceError::UnknownFormat {
                path: paths.first().cloned().unwrap_or_default(),
                reason: format!("{format} is not a virtual disk"),
            });
        }
    })
}

/// Opens an evidence item from an explicit list of segment files, in order
/// (as given on a command line). One path behaves like [`open`].
///
/// # Errors
/// As [`open`]; mixing EWF and raw segments.
pub fn open_segments(paths: &[PathBuf]) -> Result<Arc<dyn Evidence>, EvidenceError> {
    match paths {
        [] => Err(EvidenceError::NotFound {
            path: PathBuf::new(),
        }),
        [one] => open(one),
        [first, ..] => {
            // A virtual disk first: the others are its backing files,
            // parents or extents, whatever their own format.
            let f = detect_format(first)?;
            if matches!(f, Format::Qcow2 | Format::Vmdk | Format::Vhd | Format::Vhdx) {
                return open_vdisk(f, paths);
            }
            let formats = paths
                .iter()
                .map(|p| detect_format(p))
                .collect::<Result<Vec<_>, _>>()?;
            if formats[0] == Format::Ewf {
                if let Some(i) = formats.iter().position(|f| *f != Format::Ewf) {
                    return Err(EvidenceError::UnknownFormat {
                        path: paths[i].clone(),
                        reason: format!(
                            "listed as a segment of EWF image {} but is not an EWF segment",
                            first.display()
                        ),
                    });
                }
                Ok(Arc::new(ewf::EwfEvidence::open_segments(paths)?))
            } else {
                if let Some(i) = formats.iter().position(|f| *f == Format::Ewf) {
                    return Err(EvidenceError::UnknownFormat {
                        path: paths[i].clone(),
                        reason: "an EWF segment listed among raw segments".into(),
                    });
                }
                Ok(Arc::new(SplitRawEvidence::open(paths)?))
            }
        }
    }
}
