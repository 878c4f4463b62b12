//! PE (DOS stub, PE header, optional header, section table, certificate
//! table; DLLs told apart) and ELF (32/64-bit, both byte orders: header,
//! program and section header tables).

use super::{Cx, Verdict};
use crate::CarveError;
use crate::kinds::{DLL, ELF, ELF_SO, EXE, Kind, SYS};
use crate::src::rd;

const PE_MACHINES: [u16; 16] = [
    0x014C, 0x8664, 0x01C0, 0x01C4, 0xAA64, 0x0200, 0x0166, 0x0169, 0x01A2, 0x01A6, 0x01F0, 0x01F1,
    0x0EBC, 0x5064, 0x6232, 0x0000,
];

pub(crate) fn pe(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(dos) = src.array::<64>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    let lfanew = u64::from(rd::le32(&dos, 0x3C).unwrap_or(0));
    if !(4..=0x10000).contains(&lfanew) {
        return Ok(Verdict::Reject("bad e_lfanew"));
    }
    let Some(h) = src.array::<24>(start + lfanew)? else {
        return Ok(Verdict::Reject("short"));
    };
    if &h[..4] != b"PE\0\0" {
        return Ok(Verdict::Reject("no PE signature"));
    }
    let machine = rd::le16(&h, 4).unwrap_or(0);
    let nsec = u64::from(rd::le16(&h, 6).unwrap_or(0));
    let opt_size = u64::from(rd::le16(&h, 20).unwrap_or(0));
    let chars = rd::le16(&h, 22).unwrap_or(0);
    if !PE_MACHINES.contains(&machine) || machine == 0 {
        return Ok(Verdict::Reject("unknown machine"));
    }
    if nsec == 0 || nsec > 96 || chars & 0x0002 == 0 {
        return Ok(Verdict::Reject("not an executable image"));
    }
    let opt_at = start + lfanew + 24;
    let opt = src.view(opt_at, opt_size)?;
    if opt.len() as u64 != opt_size || opt_size < 96 {
        return Ok(Verdict::Reject("short optional header"));
    }
    let magic = rd::le16(&opt, 0).unwrap_or(0);
    let pe64 = match magic {
        0x10B => false,
        0x20B => true,
        _ => return Ok(Verdict::Reject("bad optional header magic")),
    };
    let salign = rd::le32(&opt, 32).unwrap_or(0);
    let falign = rd::le32(&opt, 36).unwrap_or(0);
    let size_headers = u64::from(rd::le32(&opt, 60).unwrap_or(0));
    let checksum = rd::le32(&opt, 64).unwrap_or(0);
    let subsystem = rd::le16(&opt, 68).unwrap_or(0);
    if !falign.is_power_of_two() || !(512..=0x10000).contains(&falign) && falign != salign {
        return Ok(Verdict::Reject("bad file alignment"));
    }
    if salign < falign && salign != 0 {
        // Tolerated only in the degenerate case where both are small.
        if falign > 0x1000 {
            return Ok(Verdict::Reject("bad section alignment"));
        }
    }
    let (ndd_at, dd_at) = if pe64 { (108usize, 112usize) } else { (92, 96) };
    let ndd = u64::from(rd::le32(&opt, ndd_at).unwrap_or(0)).min(16);
    let sec_at = opt_at + opt_size;
    let table = src.view(sec_at, nsec * 40)?;
    if table.len() as u64 != nsec * 40 {
        return Ok(Verdict::Reject("short section table"));
    }
    if size_headers < sec_at + nsec * 40 - start || size_headers > 0x10_0000 {
        return Ok(Verdict::Reject("bad SizeOfHeaders"));
    }
    let mut end = size_headers;
    for i in 0..nsec as usize {
        let s = &table[i * 40..i * 40 + 40];
        if !s[..8].iter().all(|&c| c == 0 || (0x20..0x7F).contains(&c)) {
            return Ok(Verdict::Reject("bad section name"));
        }
        let raw = u64::from(rd::le32(s, 16).unwrap_or(0));
        let ptr = u64::from(rd::le32(s, 20).unwrap_or(0));
        if raw == 0 {
            continue;
        }
        if ptr == 0 || ptr < size_headers.min(falign.into()) {
            return Ok(Verdict::Reject("bad section pointer"));
        }
        end = end.max(ptr + raw);
    }
    // Certificate table: its "address" is a file offset.
    if ndd > 4 {
        let at = dd_at + 4 * 8;
        let off = u64::from(rd::le32(&opt, at).unwrap_or(0));
        let len = u64::from(rd::le32(&opt, at + 4).unwrap_or(0));
        if off != 0 && len != 0 && off >= end && off - end <= 0x10_0000 {
            end = off + len;
        }
    }
    let kind: Kind = if chars & 0x2000 != 0 {
        DLL
    } else if subsystem == 1 {
        SYS
    } else {
        EXE
    };
    let fend = start + end;
    if end > cx.max {
        return Ok(Verdict::Reject("larger than the maximum size"));
    }
    if fend > src.size() {
        return Ok(cx.too_long(kind, start, fend, "section table"));
    }
    let mut note = String::new();
    if checksum != 0 {
        let ck_at = lfanew + 24 + 64;
        if pe_checksum(cx, start, end, ck_at)? != checksum {
            // Sections in place but the bytes are not the ones the linker
            // summed: fragmented, overlaid (installer data past the last
            // section) or modified.
            return Ok(Verdict::broken(
                kind,
                end,
                "PE checksum does not match: fragmented, an overlay past the last section, or modified",
            ));
        }
        note.push_str("PE checksum matches");
    }
    Ok(Verdict::valid_note(kind, end, note))
}

fn pe_checksum(cx: &Cx, start: u64, len: u64, ck_at: u64) -> Result<u32, CarveError> {
    let mut sum: u64 = 0;
    let mut odd: Option<u8> = None;
    let mut idx = 0u64;
    cx.src.each_chunk(start, start + len, 1 << 20, |_, c| {
        for &b in c {
            match odd.take() {
                None => odd = Some(b),
                Some(lo) => {
                    let at = idx - 1;
                    if at != ck_at && at != ck_at + 2 {
                        sum += u64::from(u16::from_le_bytes([lo, b]));
                        sum = (sum & 0xFFFF) + (sum >> 16);
                    }
                }
            }
            idx += 1;
        }
        None::<()>
    })?;
    if let Some(lo) = odd {
        sum += u64::from(lo);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    Ok((sum as u32).wrapping_add(len as u32))
}

pub(crate) fn elf(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<64>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    let class = h[4];
    let data = h[5];
    if !matches!(class, 1 | 2) || !matches!(data, 1 | 2) || h[6] != 1 {
        return Ok(Verdict::Reject("bad ident"));
    }
    let be = data == 2;
    let u16_ = |b: &[u8], i: usize| if be { rd::be16(b, i) } else { rd::le16(b, i) }.unwrap_or(0);
    let u32_ = |b: &[u8], i: usize| if be { rd::be32(b, i) } else { rd::le32(b, i) }.unwrap_or(0);
    let u64_ = |b: &[u8], i: usize| if be { rd::be64(b, i) } else { rd::le64(b, i) }.unwrap_or(0);
    let is64 = class == 2;
    let e_type = u16_(&h, 16);
    let version = u32_(&h, 20);
    if !(1..=4).contains(&e_type) || version != 1 {
        return Ok(Verdict::Reject("bad type or version"));
    }
    let (phoff, shoff, ehsize, phentsize, phnum, shentsize, shnum, shstrndx) = if is64 {
        (
            u64_(&h, 32),
            u64_(&h, 40),
            u16_(&h, 52),
            u16_(&h, 54),
            u16_(&h, 56),
            u16_(&h, 58),
            u16_(&h, 60),
            u16_(&h, 62),
        )
    } else {
        (
            u64::from(u32_(&h, 28)),
            u64::from(u32_(&h, 32)),
            u16_(&h, 40),
            u16_(&h, 42),
            u16_(&h, 44),
            u16_(&h, 46),
            u16_(&h, 48),
            u16_(&h, 50),
        )
    };
    let (eh, ph, sh) = if is64 { (64, 56, 64) } else { (52, 32, 40) };
    if ehsize != eh
        || (phnum > 0 && phentsize != ph)
        || (shnum > 0 && shentsize != sh)
        || (phnum == 0 && shnum == 0)
    {
        return Ok(Verdict::Reject("bad header sizes"));
    }
    let (phnum, shnum) = (u64::from(phnum), u64::from(shnum));
    let mut end = u64::from(eh);
    let mut interp = false;
    let max = cx.max;
    let fits = |off: u64, len: u64| off.checked_add(len).filter(|&e| e <= max);
    if phnum > 0 {
        let Some(e) = fits(phoff, phnum * u64::from(ph)) else {
            return Ok(Verdict::Reject("program headers out of range"));
        };
        if phoff < u64::from(eh) {
            return Ok(Verdict::Reject("program headers overlap the header"));
        }
        end = end.max(e);
        let t = src.view(start + phoff, phnum * u64::from(ph))?;
        if t.len() as u64 != phnum * u64::from(ph) {
            return Ok(cx.too_long(ELF, start, start + e, "program header table"));
        }
        for i in 0..phnum as usize {
            let p = &t[i * usize::from(ph)..];
            let (off, filesz) = if is64 {
                (u64_(p, 8), u64_(p, 32))
            } else {
                (u64::from(u32_(p, 4)), u64::from(u32_(p, 16)))
            };
            let ptype = u32_(p, 0);
            interp |= ptype == 3;
            if ptype == 0 || filesz == 0 {
                continue;
            }
            let Some(e) = fits(off, filesz) else {
                return Ok(Verdict::Reject("segment out of range"));
            };
            end = end.max(e);
        }
    }
    let mut note = String::new();
    if shnum > 0 {
        let Some(e) = fits(shoff, shnum * u64::from(sh)) else {
            return Ok(Verdict::Reject("section headers out of range"));
        };
        if shstrndx as u64 >= shnum && shstrndx != 0xFFFF {
            return Ok(Verdict::Reject("bad shstrndx"));
        }
        end = end.max(e);
        let t = src.view(start + shoff, shnum * u64::from(sh))?;
        if t.len() as u64 != shnum * u64::from(sh) {
            return Ok(cx.too_long(ELF, start, start + e, "section header table"));
        }
        // Section 0 is all zeros.
        if t[..usize::from(sh)].iter().any(|&b| b != 0) {
            return Ok(Verdict::Reject("section 0 not null"));
        }
        for i in 1..shnum as usize {
            let s = &t[i * usize::from(sh)..];
            let stype = u32_(s, 4);
            let (off, size) = if is64 {
                (u64_(s, 24), u64_(s, 32))
            } else {
                (u64::from(u32_(s, 16)), u64::from(u32_(s, 20)))
            };
            if stype == 8 || stype == 0 || size == 0 {
                continue; // NOBITS / NULL
            }
            let Some(e) = fits(off, size) else {
                return Ok(Verdict::Reject("section out of range"));
            };
            end = end.max(e);
        }
    } else {
        note.push_str("no section header table: end from the program headers");
    }
    // ET_DYN with an interpreter is a position-independent executable.
    let kind = if e_type == 3 && !interp { ELF_SO } else { ELF };
    let fend = start + end;
    if fend > src.size() {
        return Ok(cx.too_long(kind, start, fend, "header tables"));
    }
    Ok(Verdict::valid_note(kind, end, note))
}
