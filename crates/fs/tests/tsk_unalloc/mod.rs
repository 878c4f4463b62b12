//! Unallocated space against The Sleuth Kit: `blkls -A -l` lists the
//! unallocated blocks of a file system (sectors for FAT and exFAT, clusters
//! for NTFS, blocks for ext); here they become merged image byte ranges to
//! compare with `FileSystemListing::unallocated`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use trawl_fs::{FileSystemListing, FsKind};

/// Image byte ranges `(offset, length)`.
pub type Ranges = Vec<(u64, u64)>;

/// TSK's name of the file-system type (`-f`), so that a partition where
/// TSK would detect two file systems is still read as ours.
fn tsk_type(k: FsKind) -> &'static str {
    match k {
        FsKind::Ntfs => "ntfs",
        FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32 => "fat",
        FsKind::Exfat => "exfat",
        FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => "ext",
    }
}

/// `blkls -A -l -f <type> -o <sectors>` of the `kind` file system at image
/// offset `part_off`, every listed block of `unit` bytes as an image range,
/// cut at the image's end (`img_len`), merged.
pub fn blkls_free(
    img: &Path,
    kind: FsKind,
    part_off: u64,
    unit: u64,
    img_len: u64,
) -> Vec<(u64, u64)> {
    assert_eq!(part_off % 512, 0);
    let out = Command::new("blkls")
        .args(["-A", "-l", "-f", tsk_type(kind), "-o"])
        .arg((part_off / 512).to_string())
        .arg(img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "blkls {}: {}",
        img.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("class|host|image|first_time|unit"));
    lines.next();
    assert_eq!(lines.next(), Some("addr|alloc"));
    let mut v: Vec<(u64, u64)> = Vec::new();
    for line in lines {
        let (a, f) = line.split_once('|').unwrap();
        assert_eq!(f, "f", "{line}");
        let o = part_off + a.parse::<u64>().unwrap() * unit;
        let e = (o + unit).min(img_len);
        if o >= e {
            continue;
        }
        match v.last_mut() {
            Some(l) if l.0 + l.1 == o => l.1 += e - o,
            _ => v.push((o, e - o)),
        }
    }
    v
}

/// `a` without `b` (both sorted and merged).
pub fn minus(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut j = 0;
    for &(o, n) in a {
        let (mut s, e) = (o, o + n);
        while j < b.len() && b[j].0 + b[j].1 <= s {
            j += 1;
        }
        let mut k = j;
        while s < e && k < b.len() && b[k].0 < e {
            if b[k].0 > s {
                out.push((s, b[k].0 - s));
            }
            s = s.max(b[k].0 + b[k].1);
            k += 1;
        }
        if s < e {
            out.push((s, e - s));
        }
    }
    out
}

/// Total bytes of `r`.
pub fn bytes(r: &[(u64, u64)]) -> u64 {
    r.iter().map(|x| x.1).sum()
}

/// The ranges are sorted, merged (a gap between neighbours), non-empty and
/// inside the file system and the image.
pub fn assert_well_formed(fs: &FileSystemListing, img_len: u64) {
    let end = (fs.partition_offset + fs.size).min(img_len);
    for w in fs.unallocated.windows(2) {
        assert!(w[0].0 + w[0].1 < w[1].0, "not sorted/merged: {w:?}");
    }
    for &(o, n) in &fs.unallocated {
        assert!(n > 0, "empty range at {o}");
        assert!(
            o >= fs.partition_offset && o + n <= end,
            "({o}, {n}) outside the file system [{}, {end})",
            fs.partition_offset
        );
    }
}

/// Ours against blkls: the bytes only we call unallocated, and only TSK.
pub fn compare(img: &Path, fs: &FileSystemListing, unit: u64, img_len: u64) -> (Ranges, Ranges) {
    assert_well_formed(fs, img_len);
    let tsk = blkls_free(img, fs.fs, fs.partition_offset, unit, img_len);
    let only_ours = minus(&fs.unallocated, &tsk);
    let only_tsk = minus(&tsk, &fs.unallocated);
    println!(
        "{}: {} unallocated bytes in {} ranges; TSK {} bytes; only ours {:?}, only TSK {:?}",
        img.display(),
        bytes(&fs.unallocated),
        fs.unallocated.len(),
        bytes(&tsk),
        &only_ours[..only_ours.len().min(8)],
        &only_tsk[..only_tsk.len().min(8)],
    );
    (only_ours, only_tsk)
}

/// Ours equal blkls, and there is some unallocated space.
pub fn assert_equal(img: &Path, fs: &FileSystemListing, unit: u64, img_len: u64) {
    let (a, b) = compare(img, fs, unit, img_len);
    assert!(
        a.is_empty() && b.is_empty(),
        "{}: only ours {a:?}, only TSK {b:?}",
        img.display()
    );
    assert!(
        !fs.unallocated.is_empty(),
        "{}: nothing unallocated",
        img.display()
    );
}

#[test]
fn minus_cuts_ranges() {
    let a = [(0, 10), (20, 10), (40, 5)];
    let b = [(2, 3), (8, 14), (25, 1), (44, 10)];
    assert_eq!(
        minus(&a, &b),
        vec![(0, 2), (5, 3), (22, 3), (26, 4), (40, 4)]
    );
    assert_eq!(minus(&a, &[]), a.to_vec());
    assert_eq!(minus(&[], &a), vec![]);
}
