//! OLE2 / Compound File Binary (v3 and v4): header, DIFAT and FAT; the file
//! ends after the highest sector the FAT marks as used. The directory is
//! walked to tell Word, Excel, PowerPoint, Outlook messages and MSI
//! packages apart by their stream names.

use super::{Cx, Verdict};
use crate::CarveError;
use crate::kinds::{DOC, Kind, MSG, MSI, OLE, PPT, XLS};
use crate::src::rd;

const FREESECT: u32 = 0xFFFF_FFFF;
const ENDOFCHAIN: u32 = 0xFFFF_FFFE;
const FATSECT: u32 = 0xFFFF_FFFD;
const DIFSECT: u32 = 0xFFFF_FFFC;
const MAXREG: u32 = 0xFFFF_FFFA;

pub(crate) fn validate(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<512>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    let major = rd::le16(&h, 26).unwrap_or(0);
    let order = rd::le16(&h, 28).unwrap_or(0);
    let shift = rd::le16(&h, 30).unwrap_or(0);
    let mini_shift = rd::le16(&h, 32).unwrap_or(0);
    if order != 0xFFFE || mini_shift != 6 || !matches!((major, shift), (3, 9) | (4, 12)) {
        return Ok(Verdict::Reject("bad header"));
    }
    let ssz = 1u64 << shift;
    let nfat = u64::from(rd::le32(&h, 44).unwrap_or(0));
    let dir_start = rd::le32(&h, 48).unwrap_or(ENDOFCHAIN);
    let cutoff = rd::le32(&h, 56).unwrap_or(0);
    let difat_start = rd::le32(&h, 68).unwrap_or(ENDOFCHAIN);
    let ndifat = u64::from(rd::le32(&h, 72).unwrap_or(0));
    if cutoff != 4096 || nfat == 0 || dir_start > MAXREG {
        return Ok(Verdict::Reject("bad header"));
    }
    let per = ssz / 4;
    // Entries of a FAT of nfat sectors cover nfat * per sectors.
    let Some(max_sectors) = nfat.checked_mul(per) else {
        return Ok(Verdict::Reject("bad FAT size"));
    };
    if max_sectors.saturating_mul(ssz) > cx.max.saturating_add(ssz * 2) * 2 || ndifat > nfat {
        return Ok(Verdict::Reject("FAT larger than the maximum size"));
    }
    let sector_at = |s: u64| start + (s + 1) * ssz;
    // FAT sector numbers: 109 in the header, the rest in the DIFAT chain.
    let mut fat_secs: Vec<u32> = Vec::with_capacity(nfat as usize);
    for i in 0..109usize {
        if fat_secs.len() as u64 == nfat {
            break;
        }
        let s = rd::le32(&h, 76 + 4 * i).unwrap_or(FREESECT);
        if s > MAXREG {
            return Ok(Verdict::Reject("missing FAT sector in the header DIFAT"));
        }
        fat_secs.push(s);
    }
    let mut difat_secs = Vec::new();
    let mut d = difat_start;
    while (fat_secs.len() as u64) < nfat {
        if d > MAXREG || difat_secs.len() as u64 > ndifat || difat_secs.contains(&d) {
            return Ok(Verdict::Reject("broken DIFAT chain"));
        }
        difat_secs.push(d);
        let b = src.view(sector_at(u64::from(d)), ssz)?;
        if b.len() as u64 != ssz {
            return Ok(truncated(cx, start, "DIFAT"));
        }
        for i in 0..(per - 1) as usize {
            if fat_secs.len() as u64 == nfat {
                break;
            }
            let s = rd::le32(&b, 4 * i).unwrap_or(FREESECT);
            if s > MAXREG {
                return Ok(Verdict::Reject("missing FAT sector in the DIFAT"));
            }
            fat_secs.push(s);
        }
        d = rd::le32(&b, (ssz - 4) as usize).unwrap_or(ENDOFCHAIN);
    }
    // Read the FAT.
    let mut fat: Vec<u32> = Vec::with_capacity(max_sectors as usize);
    for &s in &fat_secs {
        if u64::from(s) >= max_sectors {
            return Ok(Verdict::Reject("FAT sector out of range"));
        }
        let b = src.view(sector_at(u64::from(s)), ssz)?;
        if b.len() as u64 != ssz {
            return Ok(truncated(cx, start, "FAT"));
        }
        fat.extend(
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    // Consistency: FAT and DIFAT sectors are marked as such.
    if fat_secs
        .iter()
        .any(|&s| fat.get(s as usize).copied() != Some(FATSECT))
    {
        return Ok(Verdict::Reject("FAT sectors not marked in the FAT"));
    }
    if difat_secs
        .iter()
        .any(|&s| fat.get(s as usize).copied() != Some(DIFSECT))
    {
        return Ok(Verdict::Reject("DIFAT sectors not marked in the FAT"));
    }
    // Every used entry points inside the FAT or ends a chain.
    let mut last_used: Option<usize> = None;
    for (i, &v) in fat.iter().enumerate() {
        if v == FREESECT {
            continue;
        }
        last_used = Some(i);
        if v <= MAXREG && v as usize >= fat.len() {
            return Ok(Verdict::Reject("FAT entry out of range"));
        }
        if v == 0xFFFF_FFFB {
            return Ok(Verdict::Reject("invalid FAT entry"));
        }
    }
    let Some(last) = last_used else {
        return Ok(Verdict::Reject("empty FAT"));
    };
    let len = (last as u64 + 2) * ssz;
    if len > cx.max {
        return Ok(Verdict::Reject("larger than the maximum size"));
    }
    let end = start + len;
    if end > src.size() {
        return Ok(cx.too_long(OLE, start, end, "FAT"));
    }
    // Directory chain.
    let mut names: Vec<String> = Vec::new();
    let mut root_clsid = [0u8; 16];
    let mut entries: Vec<[u8; 128]> = Vec::new();
    let mut s = dir_start;
    let mut steps = 0usize;
    while s != ENDOFCHAIN {
        if s > MAXREG || s as usize >= fat.len() || steps > fat.len() || entries.len() > 1 << 20 {
            return Ok(Verdict::broken(OLE, len, "broken directory chain"));
        }
        let b = src.view(sector_at(u64::from(s)), ssz)?;
        for e in b.chunks_exact(128) {
            let mut a = [0u8; 128];
            a.copy_from_slice(e);
            entries.push(a);
        }
        s = fat[s as usize];
        steps += 1;
    }
    let Some(root) = entries.first() else {
        return Ok(Verdict::broken(OLE, len, "empty directory"));
    };
    if root[66] != 5 {
        return Ok(Verdict::broken(
            OLE,
            len,
            "directory entry 0 is not the root",
        ));
    }
    root_clsid.copy_from_slice(&root[80..96]);
    // The root's children: a tree of left/right siblings under its child.
    let mut stack = vec![rd::le32(root, 76).unwrap_or(FREESECT)];
    let mut visited = vec![false; entries.len()];
    while let Some(i) = stack.pop() {
        let Some(e) = entries.get(i as usize) else {
            continue;
        };
        if std::mem::replace(&mut visited[i as usize], true) {
            continue;
        }
        let nlen = usize::from(rd::le16(e, 64).unwrap_or(0)).min(64);
        let units: Vec<u16> = e[..nlen.saturating_sub(2)]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        names.push(String::from_utf16_lossy(&units));
        stack.push(rd::le32(e, 68).unwrap_or(FREESECT));
        stack.push(rd::le32(e, 72).unwrap_or(FREESECT));
    }
    let kind = classify(&names, &root_clsid);
    Ok(Verdict::valid(kind, len))
}

fn truncated(cx: &Cx, start: u64, what: &str) -> Verdict {
    Verdict::broken(
        OLE,
        cx.src.size() - start,
        format!("truncated by the end of the image inside the {what}"),
    )
}

const MSI_CLSIDS: [[u8; 4]; 3] = [
    [0x84, 0x10, 0x0C, 0x00],
    [0x86, 0x10, 0x0C, 0x00],
    [0x82, 0x10, 0x0C, 0x00],
];

fn classify(names: &[String], clsid: &[u8; 16]) -> Kind {
    let has = |n: &str| names.iter().any(|x| x == n);
    if has("WordDocument") {
        DOC
    } else if has("Workbook") || has("Book") {
        XLS
    } else if has("PowerPoint Document") {
        PPT
    } else if names
        .iter()
        .any(|n| n.starts_with("__substg1.0_") || n == "__properties_version1.0")
    {
        MSG
    } else if MSI_CLSIDS.iter().any(|c| clsid[..4] == c[..]) {
        MSI
    } else {
        OLE
    }
}
