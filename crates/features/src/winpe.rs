//! `winpe`: Windows PE headers (bulk_extractor's `scan_winpe`), written to
//! `winpe.txt`.
//!
//! bulk_extractor tries every offset `pos` as the start of an image: the
//! 32-bit `e_lfanew` at `pos + 0x3c` must point at `PE\0\0`; it does not
//! look at `MZ`. This scanner finds the same candidates from the other end:
//! it looks for `PE\0\0` (memmem) and, for each, for the `pos` before it
//! whose `e_lfanew` points there, so random data costs one memmem pass.
//! The COFF header must name a machine of bulk_extractor's table (AMD64,
//! ARM, ARMv7, I386, IA64), have 1..=256 sections, a plausible symbol
//! table, an even optional-header size, a PE32 or PE32+ magic and entry
//! point and code base below 0x10000000.
//!
//! * feature: the SHA-1 (bulk_extractor 2.x's default hasher; its test
//!   `test_winpe` expects 40 hex digits) of the first 4096 bytes from `pos`;
//! * context: `<PE><FileHeader Machine=".." NumberOfSections=".."
//!   TimeDateStamp=".." TimeDateStampISO=".." PointerToSymbolTable=".."
//!   NumberOfSymbols=".." SizeOfOptionalHeader=".."><Characteristics>
//!   <IMAGE_FILE_.. />...</Characteristics></FileHeader>
//!   <OptionalHeaderStandard Magic="PE32" ... />
//!   <OptionalHeaderWindows ...><DllCharacteristics>...
//!   </DllCharacteristics></OptionalHeaderWindows><Sections><SectionHeader
//!   Name=".." ... ><Characteristics>...</Characteristics></SectionHeader>
//!   ...</Sections><dlls><dll>KERNEL32.dll</dll>...</dlls></PE>`.
//!
//! bulk_extractor's quirks are reproduced on purpose:
//! * the C++ stream's `std::hex` set for `AddressOfEntryPoint` stays set:
//!   every later number (the whole `OptionalHeaderWindows` and the section
//!   headers) is in hex, with `0x` only where the source writes it;
//! * `SubSystem` is always empty (its lookup loop stops at the table's
//!   first entry, `IMAGE_SUBSYSTEM_UNKNOWN = 0`);
//! * in a PE32+ optional header, `Win32VersionValue` is read at +30 (not
//!   +28) and `SizeOfStackCommit`, the heap sizes, `LoaderFlags` and
//!   `NumberOfRvaAndSizes` as 32-bit values at +52, +56, +60, +64, +68
//!   (not +56, +64, +72, +80, +84), as bulk_extractor reads them;
//! * section flags are tested with `flags & FLAG`, so a multi-bit
//!   `IMAGE_SCN_ALIGN_*` value also lists the alignments sharing a bit,
//!   and `IMAGE_SCN_MEM_PURGEABLE` and `IMAGE_SCN_MEM_16BIT` come together.
//!
//! Deviations: bulk_extractor reads to the end of its 16 MiB page (plus
//! margin); this scanner reads [`records::WINDOW`] bytes from `pos`, so an
//! `e_lfanew` beyond ~60 KiB, or sections, an import table or DLL names
//! past that window, are treated as bulk_extractor treats data past the end
//! of its buffer (usually: the `<dlls>` list of a large image is shorter or
//! absent). The DLL list stops after 65536 (import entry, section) pairs
//! (real images need a few thousand; bulk_extractor has no bound).
//! bulk_extractor also carves the image (`winpe_carved`); trawl does not.

use crate::binfmt::{Xml, byte_or0, bytes, decode_flags, iso8601, le16, le32, le64, sha1_first_4k};
use crate::records::{Record, WINDOW};
use memchr::memmem;
use std::ops::Range;

const MACHINE: &[(u32, &str)] = &[
    (0x8664, "IMAGE_FILE_MACHINE_AMD64"),
    (0x1c0, "IMAGE_FILE_MACHINE_ARM"),
    (0x1c4, "IMAGE_FILE_MACHINE_ARMV7"),
    (0x14c, "IMAGE_FILE_MACHINE_I386"),
    (0x200, "IMAGE_FILE_MACHINE_IA64"),
];

const FILE_CHARS: &[(u32, &str)] = &[
    (0x0001, "IMAGE_FILE_RELOCS_STRIPPED"),
    (0x0002, "IMAGE_FILE_EXECUTABLE_IMAGE"),
    (0x0004, "IMAGE_FILE_LINE_NUMS_STRIPPED"),
    (0x0008, "IMAGE_FILE_LOCAL_SYMS_STRIPPED"),
    (0x0010, "IMAGE_FILE_AGRESSIVE_WS_TRIM"),
    (0x0020, "IMAGE_FILE_LARGE_ADDRESS_AWARE"),
    (0x0040, "IMAGE_FILE_16BIT_MACHINE"),
    (0x0080, "IMAGE_FILE_BYTES_REVERSED_LO"),
    (0x0100, "IMAGE_FILE_32BIT_MACHINE"),
    (0x0200, "IMAGE_FILE_DEBUG_STRIPPED"),
    (0x0400, "IMAGE_FILE_REMOVABLE_RUN_FROM_SWAP"),
    (0x1000, "IMAGE_FILE_SYSTEM"),
    (0x2000, "IMAGE_FILE_DLL"),
    (0x4000, "IMAGE_FILE_UP_SYSTEM_ONLY"),
    (0x8000, "IMAGE_FILE_BYTES_REVERSE_HI"),
];

const DLL_CHARS: &[(u32, &str)] = &[
    (0x0040, "IMAGE_DLL_CHARACTERISTICS_DYNAMIC_BASE"),
    (0x0080, "IMAGE_DLL_CHARACTERISTICS_FORCE_INTEGRITY"),
    (0x0100, "IMAGE_DLL_CHARACTERISTICS_NX_COMPAT"),
    (0x0200, "IMAGE_DLL_CHARACTERISTICS_NO_ISOLATION"),
    (0x0400, "IMAGE_DLL_CHARACTERISTICS_NO_SEH"),
    (0x0800, "IMAGE_DLL_CHARACTERISTICS_NO_BIND"),
    (0x2000, "IMAGE_DLL_CHARACTERISTICS_WDM_DRIVER"),
    (0x8000, "IMAGE_DLL_CHARACTERISTICS_TERMINAL_SERVER_AWARE"),
];

const SCN_CHARS: &[(u32, &str)] = &[
    (0x0000_0000, "IMAGE_SCN_TYPE_REG"),
    (0x0000_0001, "IMAGE_SCN_TYPE_DSECT"),
    (0x0000_0002, "IMAGE_SCN_TYPE_NOLOAD"),
    (0x0000_0004, "IMAGE_SCN_TYPE_GROUP"),
    (0x0000_0008, "IMAGE_SCN_TYPE_NO_PAD"),
    (0x0000_0010, "IMAGE_SCN_TYPE_COPY"),
    (0x0000_0020, "IMAGE_SCN_CNT_CODE"),
    (0x0000_0040, "IMAGE_SCN_CNT_INITIALIZED_DATA"),
    (0x0000_0080, "IMAGE_SCN_CNT_UNINITIALIZED_DATA"),
    (0x0000_0100, "IMAGE_SCN_LNK_OTHER"),
    (0x0000_0200, "IMAGE_SCN_LNK_INFO"),
    (0x0000_0400, "IMAGE_SCN_TYPE_OVER"),
    (0x0000_0800, "IMAGE_SCN_LNK_REMOVE"),
    (0x0000_1000, "IMAGE_SCN_LNK_COMDAT"),
    (0x0000_8000, "IMAGE_SCN_MEM_FARDATA"),
    (0x0002_0000, "IMAGE_SCN_MEM_PURGEABLE"),
    (0x0002_0000, "IMAGE_SCN_MEM_16BIT"),
    (0x0004_0000, "IMAGE_SCN_MEM_LOCKED"),
    (0x0008_0000, "IMAGE_SCN_MEM_PRELOAD"),
    (0x0010_0000, "IMAGE_SCN_ALIGN_1BYTES"),
    (0x0020_0000, "IMAGE_SCN_ALIGN_2BYTES"),
    (0x0030_0000, "IMAGE_SCN_ALIGN_4BYTES"),
    (0x0040_0000, "IMAGE_SCN_ALIGN_8BYTES"),
    (0x0050_0000, "IMAGE_SCN_ALIGN_16BYTES"),
    (0x0060_0000, "IMAGE_SCN_ALIGN_32BYTES"),
    (0x0070_0000, "IMAGE_SCN_ALIGN_64BYTES"),
    (0x0080_0000, "IMAGE_SCN_ALIGN_128BYTES"),
    (0x0090_0000, "IMAGE_SCN_ALIGN_256BYTES"),
    (0x00A0_0000, "IMAGE_SCN_ALIGN_512BYTES"),
    (0x00B0_0000, "IMAGE_SCN_ALIGN_1024BYTES"),
    (0x00C0_0000, "IMAGE_SCN_ALIGN_2048BYTES"),
    (0x00D0_0000, "IMAGE_SCN_ALIGN_4096BYTES"),
    (0x00E0_0000, "IMAGE_SCN_ALIGN_8192BYTES"),
    (0x0100_0000, "IMAGE_SCN_LNK_NRELOC_OVFL"),
    (0x0200_0000, "IMAGE_SCN_MEM_DISCARDABLE"),
    (0x0400_0000, "IMAGE_SCN_MEM_NOT_CACHED"),
    (0x0800_0000, "IMAGE_SCN_MEM_NOT_PAGED"),
    (0x1000_0000, "IMAGE_SCN_MEM_SHARED"),
    (0x2000_0000, "IMAGE_SCN_MEM_EXECUTE"),
    (0x4000_0000, "IMAGE_SCN_MEM_READ"),
    (0x8000_0000, "IMAGE_SCN_MEM_WRITE"),
];

const PE32: u16 = 0x10b;
const PE32PLUS: u16 = 0x20b;
const FILE_HEADER: u64 = 20;
const OHS: u64 = 28;
const OHS_PLUS: u64 = 24;
const OHW: u64 = 68;
const OHW_PLUS: u64 = 88;
const SECTION: u64 = 40;
const RESERVED_SECTION_FLAGS: u32 = 0x0000_0417;
/// (import entry, section) pairs examined per image at most: a real
/// image needs a few thousand; a crafted one sharing its tables among
/// thousands of candidate offsets must not cost millions each.
const DLL_BUDGET: u32 = 1 << 16;

/// The records of PE images starting in `own`.
pub(crate) fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    if own.is_empty() {
        return;
    }
    // `PE\0\0` at q = pos + e_lfanew, with q + 4 within pos's window
    let end = (own.end - 1).saturating_add(WINDOW).min(buf.len());
    if own.start >= end {
        return;
    }
    let first = out.len();
    let hits: Vec<usize> = memmem::find_iter(&buf[own.start..end], b"PE\0\0")
        .map(|m| own.start + m)
        .collect();
    // Each hit costs a backward look over up to WINDOW offsets; where hits
    // are dense, testing every offset forwards (as bulk_extractor does) is
    // cheaper. Both find the same candidates.
    if hits.len().saturating_mul(WINDOW / 16) > own.len() {
        for pos in own.clone() {
            let Some(l) = buf.get(pos + 0x3c..pos + 0x40) else {
                break;
            };
            let l = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
            if l < WINDOW && buf.get(pos + l..pos + l + 4) == Some(b"PE\0\0") {
                candidate(buf, pos, pos + l, out);
            }
        }
    } else {
        for q in hits {
            let lo = q.saturating_sub(WINDOW - 4).max(own.start);
            let hi = q.min(own.end - 1);
            for pos in lo..=hi {
                let Some(l) = buf.get(pos + 0x3c..pos + 0x40) else {
                    continue;
                };
                if u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize == q - pos {
                    candidate(buf, pos, q, out);
                }
            }
        }
    }
    out[first..].sort_by_key(|r| r.pos);
}

/// Checks the image at `pos` whose `PE\0\0` is at `q`.
fn candidate(buf: &[u8], pos: usize, q: usize, out: &mut Vec<Record>) {
    let d = &buf[pos..pos.saturating_add(WINDOW).min(buf.len())];
    if q + 4 > pos + d.len() {
        return;
    }
    if let Some(xml) = verify(d) {
        out.push(Record {
            recorder: "winpe",
            pos,
            feature: sha1_first_4k(d),
            context: xml,
        });
    }
}

/// bulk_extractor's `validASCIIName`: no control, DEL or high-bit bytes.
fn valid_ascii(s: &[u8]) -> bool {
    s.iter().all(|&c| (0x20..0x7f).contains(&c))
}

/// A section header.
struct Sh {
    name: Vec<u8>,
    virtual_size: u32,
    virtual_address: u32,
    size_of_raw_data: u32,
    pointer_to_raw_data: u32,
    pointer_to_relocations: u32,
    pointer_to_linenumbers: u32,
    characteristics: u32,
}

fn section(d: &[u8], off: u64) -> Option<Sh> {
    let raw: [u8; 40] = bytes(d, off)?;
    let w = |k: usize| u32::from_le_bytes([raw[k], raw[k + 1], raw[k + 2], raw[k + 3]]);
    let n = raw[..8].iter().position(|&c| c == 0).unwrap_or(8);
    Some(Sh {
        name: raw[..n].to_vec(),
        virtual_size: w(8),
        virtual_address: w(12),
        size_of_raw_data: w(16),
        pointer_to_raw_data: w(20),
        pointer_to_relocations: w(24),
        pointer_to_linenumbers: w(28),
        characteristics: w(36),
    })
}

/// bulk_extractor's `scan_winpe_verify`: the XML, or `None` if not a PE
/// image it accepts. `d` runs from `pos` to the end of the window.
fn verify(d: &[u8]) -> Option<Vec<u8>> {
    let size = d.len() as u64;
    let ho = u64::from(le32(d, 0x3c)?.wrapping_add(4));
    if ho + FILE_HEADER > size {
        return None;
    }
    let machine = le16(d, ho)?;
    let nsec = le16(d, ho + 2)?;
    let stamp = le32(d, ho + 4)?;
    let psym = le32(d, ho + 8)?;
    let nsym = le32(d, ho + 12)?;
    let soh = le16(d, ho + 16)?;
    let chars = le16(d, ho + 18)?;
    let machine = MACHINE
        .iter()
        .find(|e| e.0 == u32::from(machine))
        .map(|e| e.1)?;
    if nsec == 0 || nsec > 256 {
        return None;
    }
    if (nsym == 0 && psym != 0) || nsym > 1_000_000 {
        return None;
    }
    if soh & 1 != 0 {
        return None;
    }
    let mut x = Xml::default();
    x.s("<PE><FileHeader");
    x.s(" Machine=\"").s(machine).s("\"");
    x.s(" NumberOfSections=\"").n(u64::from(nsec)).s("\"");
    x.s(" TimeDateStamp=\"").n(u64::from(stamp)).s("\"");
    x.s(" TimeDateStampISO=\"")
        .s(&iso8601(i64::from(stamp)))
        .s("\"");
    x.s(" PointerToSymbolTable=\"").n(u64::from(psym)).s("\"");
    x.s(" NumberOfSymbols=\"").n(u64::from(nsym)).s("\"");
    x.s(" SizeOfOptionalHeader=\"").n(u64::from(soh)).s("\"");
    x.s(">");
    decode_flags(&mut x, "Characteristics", FILE_CHARS, u32::from(chars));
    x.s("</FileHeader>");

    // OptionalHeaderStandard (the PE32 size is required for both kinds)
    x.s("<OptionalHeaderStandard");
    if ho + FILE_HEADER + OHS > size {
        return None;
    }
    let ohs = ho + FILE_HEADER;
    let magic = le16(d, ohs)?;
    let kind = match magic {
        PE32 => "PE32",
        PE32PLUS => "PE32+",
        _ => return None,
    };
    let major_linker = byte_or0(d, ohs + 2);
    let minor_linker = byte_or0(d, ohs + 3);
    let size_of_code = le32(d, ohs + 4)?;
    let size_init = le32(d, ohs + 8)?;
    let size_uninit = le32(d, ohs + 12)?;
    let entry = le32(d, ohs + 16)?;
    let base_of_code = le32(d, ohs + 20)?;
    if base_of_code > 0x1000_0000 || entry > 0x1000_0000 {
        return None;
    }
    x.s(" Magic=\"").s(kind).s("\"");
    x.s(" MajorLinkerVersion=\"")
        .i(i32::from(major_linker))
        .s("\"");
    x.s(" MinorLinkerVersion=\"")
        .i(i32::from(minor_linker))
        .s("\"");
    x.s(" SizeOfCode=\"").n(u64::from(size_of_code)).s("\"");
    x.s(" SizeOfInitializedData=\"")
        .n(u64::from(size_init))
        .s("\"");
    x.s(" SizeOfUninitializedData=\"")
        .n(u64::from(size_uninit))
        .s("\"");
    x.s(" AddressOfEntryPoint=\"0x")
        .hex()
        .n(u64::from(entry))
        .s("\"");
    x.s(" BaseOfCode=\"0x")
        .hex()
        .n(u64::from(base_of_code))
        .s("\"");
    x.s(" />");

    // OptionalHeaderWindows, at bulk_extractor's offsets
    let soh64 = u64::from(soh);
    let mut ohw = 0u64;
    if magic == PE32 && soh64 > OHS + OHW && ho + FILE_HEADER + OHS + OHW <= size {
        ohw = ohs + OHS;
        let w = |k: u64| le32(d, ohw + k).map(u64::from);
        let h = |k: u64| le16(d, ohw + k).map(u64::from);
        let f = [
            w(0)?,
            w(4)?,
            w(8)?,
            h(12)?,
            h(14)?,
            h(16)?,
            h(18)?,
            h(20)?,
            h(22)?,
            w(24)?,
            w(28)?,
            w(32)?,
            w(36)?,
            h(42)?,
            w(44)?,
            w(48)?,
            w(52)?,
            w(56)?,
            w(60)?,
            w(64)?,
        ];
        windows_header(&mut x, &f);
    } else if magic == PE32PLUS
        && soh64 > OHS_PLUS + OHW_PLUS
        && ho + FILE_HEADER + OHS_PLUS + OHW_PLUS <= size
    {
        ohw = ohs + OHS_PLUS;
        let w = |k: u64| le32(d, ohw + k).map(u64::from);
        let h = |k: u64| le16(d, ohw + k).map(u64::from);
        let f = [
            le64(d, ohw)?,
            w(8)?,
            w(12)?,
            h(16)?,
            h(18)?,
            h(20)?,
            h(22)?,
            h(24)?,
            h(26)?,
            w(30)?,
            w(32)?,
            w(36)?,
            w(40)?,
            h(46)?,
            le64(d, ohw + 48)?,
            w(52)?,
            w(56)?,
            w(60)?,
            w(64)?,
            w(68)?,
        ];
        windows_header(&mut x, &f);
    }

    // the import table's data directory (index 1)
    let idd = if ohw == 0 {
        None
    } else {
        let o = if magic == PE32 {
            ho + FILE_HEADER + OHS + OHW + 8
        } else {
            ho + FILE_HEADER + OHS_PLUS + OHW_PLUS + 8
        };
        bytes::<8>(d, o).map(|b| {
            (
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            )
        })
    };

    let sec_base = ho + FILE_HEADER + soh64;
    let mut shi: Option<Sh> = None;
    x.s("<Sections>");
    for i in 0..u64::from(nsec) {
        let Some(sh) = section(d, sec_base + SECTION * i) else {
            break;
        };
        if sh.characteristics & RESERVED_SECTION_FLAGS != 0
            || sh.virtual_size & 0x8000_0000 != 0
            || sh.size_of_raw_data & 0xe000_0000 != 0
        {
            break;
        }
        if sh.name.is_empty() || !valid_ascii(&sh.name) {
            shi = None;
            break;
        }
        x.s("<SectionHeader");
        x.s(" Name=\"").b(&sh.name).s("\"");
        x.s(" VirtualSize=\"").n(u64::from(sh.virtual_size)).s("\"");
        x.s(" VirtualAddress=\"")
            .n(u64::from(sh.virtual_address))
            .s("\"");
        x.s(" SizeOfRawData=\"")
            .n(u64::from(sh.size_of_raw_data))
            .s("\"");
        x.s(" PointerToRawData=\"")
            .n(u64::from(sh.pointer_to_raw_data))
            .s("\"");
        x.s(" PointerToRelocations=\"")
            .n(u64::from(sh.pointer_to_relocations))
            .s("\"");
        x.s(" PointerToLinenumbers=\"")
            .n(u64::from(sh.pointer_to_linenumbers))
            .s("\"");
        x.s(" >");
        decode_flags(&mut x, "Characteristics", SCN_CHARS, sh.characteristics);
        x.s("</SectionHeader>");
        if let Some((va, _)) = idd
            && va >= sh.virtual_address
            && va < sh.virtual_address.wrapping_add(sh.size_of_raw_data)
        {
            shi = Some(sh);
        }
    }
    x.s("</Sections>");

    if let (Some(shi), Some((idd_va, _))) = (shi, idd) {
        x.s("<dlls>");
        dlls(&mut x, d, &shi, idd_va, sec_base, nsec);
        x.s("</dlls>");
    }
    x.s("</PE>");
    Some(x.buf)
}

/// `<OptionalHeaderWindows ...>` from the 20 fields bulk_extractor reads
/// (ImageBase .. NumberOfRvaAndSizes, with Subsystem skipped: it prints
/// as empty), in the stream's (by now sticky hex) base.
fn windows_header(x: &mut Xml, f: &[u64; 20]) {
    const NAMES: [&str; 11] = [
        "SectionAlignment",
        "FileAlignment",
        "MajorOperatingSystemVersion",
        "MinorOperatingSystemVersion",
        "MajorImageVersion",
        "MinorImageVersion",
        "MajorSubsystemVersion",
        "MinorSubsystemVersion",
        "Win32VersionValue",
        "SizeOfImage",
        "SizeOfHeaders",
    ];
    x.s("<OptionalHeaderWindows");
    x.s(" ImageBase=\"0x").hex().n(f[0]).s("\"");
    for (k, name) in NAMES.iter().enumerate() {
        x.s(" ").s(name).s("=\"").n(f[1 + k]).s("\"");
    }
    x.s(" CheckSum=\"0x").hex().n(f[12]).s("\"");
    x.s(" SubSystem=\"\"");
    x.s(" SizeOfStackReserve=\"").n(f[14]).s("\"");
    x.s(" SizeOfStackCommit=\"").n(f[15]).s("\"");
    x.s(" SizeOfHeapReserve=\"").n(f[16]).s("\"");
    x.s(" SizeOfHeapCommit=\"").n(f[17]).s("\"");
    x.s(" LoaderFlags=\"").n(f[18]).s("\"");
    x.s(" NumberOfRvaAndSizes=\"").n(f[19]).s("\">");
    decode_flags(x, "DllCharacteristics", DLL_CHARS, f[13] as u32);
    x.s("</OptionalHeaderWindows>");
}

/// The `<dll>` names of the import directory in section `shi`.
fn dlls(x: &mut Xml, d: &[u8], shi: &Sh, idd_va: u32, sec_base: u64, nsec: u16) {
    let size = d.len() as u64;
    let table = u64::from(
        shi.pointer_to_raw_data
            .wrapping_add(idd_va.wrapping_sub(shi.virtual_address)),
    );
    let mut budget = DLL_BUDGET;
    for i in 0u64.. {
        let Some(e) = bytes::<20>(d, table + 20 * i) else {
            return;
        };
        if e.iter().all(|&c| c == 0) {
            return;
        }
        let name_rva = u32::from_le_bytes([e[12], e[13], e[14], e[15]]);
        for si in 0..u64::from(nsec) {
            if budget == 0 {
                return;
            }
            budget -= 1;
            if sec_base + SECTION * (si + 1) > size {
                break;
            }
            let Some(sht) = section(d, sec_base + SECTION * si) else {
                break;
            };
            if sht.virtual_address < name_rva
                && sht.virtual_address.wrapping_add(sht.size_of_raw_data) > name_rva
            {
                let off = sht
                    .pointer_to_raw_data
                    .wrapping_add(name_rva.wrapping_sub(sht.virtual_address));
                if u64::from(off.wrapping_add(32)) >= size {
                    break;
                }
                let off = u64::from(off);
                let len = (0..32u64)
                    .find(|&k| byte_or0(d, off + k) == 0)
                    .unwrap_or(32);
                let Some(name) = d.get(off as usize..(off + len) as usize) else {
                    return;
                };
                if !valid_ascii(name) || name.len() < 5 || name[name.len() - 4] != b'.' {
                    return;
                }
                x.s("<dll>").b(name).s("</dll>");
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal PE32 console image: `.text` and `.idata` sections, an
    /// import table naming KERNEL32.dll and msvcrt.dll.
    pub(crate) fn tiny_pe32() -> Vec<u8> {
        let mut f = vec![0u8; 0x600];
        let p16 = |f: &mut Vec<u8>, o: usize, v: u16| f[o..o + 2].copy_from_slice(&v.to_le_bytes());
        let p32 = |f: &mut Vec<u8>, o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_le_bytes());
        f[..2].copy_from_slice(b"MZ");
        p32(&mut f, 0x3c, 0x80);
        f[0x80..0x84].copy_from_slice(b"PE\0\0");
        let fh = 0x84;
        p16(&mut f, fh, 0x14c);
        p16(&mut f, fh + 2, 2);
        p32(&mut f, fh + 4, 1_234_567_890);
        p16(&mut f, fh + 16, 0xe0);
        p16(&mut f, fh + 18, 0x0102);
        let oh = fh + 20;
        p16(&mut f, oh, PE32);
        f[oh + 2] = 14;
        f[oh + 3] = 0;
        p32(&mut f, oh + 4, 0x200);
        p32(&mut f, oh + 8, 0x200);
        p32(&mut f, oh + 16, 0x1000);
        p32(&mut f, oh + 20, 0x1000);
        let ow = oh + 28;
        p32(&mut f, ow, 0x40_0000);
        p32(&mut f, ow + 4, 0x1000);
        p32(&mut f, ow + 8, 0x200);
        p16(&mut f, ow + 12, 6);
        p16(&mut f, ow + 20, 6);
        p32(&mut f, ow + 28, 0x3000);
        p32(&mut f, ow + 32, 0x200);
        p32(&mut f, ow + 36, 0xabcd);
        p16(&mut f, ow + 40, 3);
        p16(&mut f, ow + 42, 0x8140);
        p32(&mut f, ow + 44, 0x10_0000);
        p32(&mut f, ow + 48, 0x1000);
        p32(&mut f, ow + 52, 0x10_0000);
        p32(&mut f, ow + 56, 0x1000);
        p32(&mut f, ow + 64, 16);
        // data directory 1 (imports): RVA 0x2000
        p32(&mut f, ow + 68 + 8, 0x2000);
        p32(&mut f, ow + 68 + 12, 60);
        let sh = fh + 20 + 0xe0;
        let sec = |f: &mut Vec<u8>, i: usize, name: &[u8], va: u32, raw: u32, ch: u32| {
            let o = sh + 40 * i;
            f[o..o + name.len()].copy_from_slice(name);
            f[o + 8..o + 12].copy_from_slice(&0x200u32.to_le_bytes());
            f[o + 12..o + 16].copy_from_slice(&va.to_le_bytes());
            f[o + 16..o + 20].copy_from_slice(&0x200u32.to_le_bytes());
            f[o + 20..o + 24].copy_from_slice(&raw.to_le_bytes());
            f[o + 36..o + 40].copy_from_slice(&ch.to_le_bytes());
        };
        sec(&mut f, 0, b".text", 0x1000, 0x200, 0x6000_0020);
        sec(&mut f, 1, b".idata", 0x2000, 0x400, 0xc000_0040);
        // import directory at file 0x400: two entries and a null one
        p32(&mut f, 0x400 + 12, 0x2080);
        p32(&mut f, 0x400 + 16, 0x2100);
        p32(&mut f, 0x414 + 12, 0x2090);
        p32(&mut f, 0x414 + 16, 0x2110);
        f[0x480..0x48d].copy_from_slice(b"KERNEL32.dll\0");
        f[0x490..0x49b].copy_from_slice(b"msvcrt.dll\0");
        f
    }

    fn run(buf: &[u8]) -> Vec<Record> {
        let mut v = Vec::new();
        scan(buf, 0..buf.len(), &mut v);
        v
    }

    #[test]
    fn tiny_pe32_xml() {
        let f = tiny_pe32();
        let r = run(&f);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].pos, 0);
        assert_eq!(r[0].recorder, "winpe");
        assert_eq!(r[0].feature, sha1_first_4k(&f));
        let want = concat!(
            r#"<PE><FileHeader Machine="IMAGE_FILE_MACHINE_I386" NumberOfSections="2" TimeDateStamp="1234567890" TimeDateStampISO="2009-02-13T23:31:30Z" PointerToSymbolTable="0" NumberOfSymbols="0" SizeOfOptionalHeader="224">"#,
            "<Characteristics><IMAGE_FILE_EXECUTABLE_IMAGE /><IMAGE_FILE_32BIT_MACHINE /></Characteristics></FileHeader>",
            r#"<OptionalHeaderStandard Magic="PE32" MajorLinkerVersion="14" MinorLinkerVersion="0" SizeOfCode="512" SizeOfInitializedData="512" SizeOfUninitializedData="0" AddressOfEntryPoint="0x1000" BaseOfCode="0x1000" />"#,
            r#"<OptionalHeaderWindows ImageBase="0x400000" SectionAlignment="1000" FileAlignment="200" MajorOperatingSystemVersion="6" MinorOperatingSystemVersion="0" MajorImageVersion="0" MinorImageVersion="0" MajorSubsystemVersion="6" MinorSubsystemVersion="0" Win32VersionValue="0" SizeOfImage="3000" SizeOfHeaders="200" CheckSum="0xabcd" SubSystem="" SizeOfStackReserve="100000" SizeOfStackCommit="1000" SizeOfHeapReserve="100000" SizeOfHeapCommit="1000" LoaderFlags="0" NumberOfRvaAndSizes="10">"#,
            "<DllCharacteristics><IMAGE_DLL_CHARACTERISTICS_DYNAMIC_BASE /><IMAGE_DLL_CHARACTERISTICS_NX_COMPAT /><IMAGE_DLL_CHARACTERISTICS_TERMINAL_SERVER_AWARE /></DllCharacteristics></OptionalHeaderWindows>",
            "<Sections>",
            r#"<SectionHeader Name=".text" VirtualSize="200" VirtualAddress="1000" SizeOfRawData="200" PointerToRawData="200" PointerToRelocations="0" PointerToLinenumbers="0" >"#,
            "<Characteristics><IMAGE_SCN_CNT_CODE /><IMAGE_SCN_MEM_EXECUTE /><IMAGE_SCN_MEM_READ /></Characteristics></SectionHeader>",
            r#"<SectionHeader Name=".idata" VirtualSize="200" VirtualAddress="2000" SizeOfRawData="200" PointerToRawData="400" PointerToRelocations="0" PointerToLinenumbers="0" >"#,
            "<Characteristics><IMAGE_SCN_CNT_INITIALIZED_DATA /><IMAGE_SCN_MEM_READ /><IMAGE_SCN_MEM_WRITE /></Characteristics></SectionHeader>",
            "</Sections><dlls><dll>KERNEL32.dll</dll><dll>msvcrt.dll</dll></dlls></PE>"
        );
        assert_eq!(String::from_utf8_lossy(&r[0].context), want);
    }

    #[test]
    fn rejections_and_quirks() {
        let f = tiny_pe32();
        // unknown machine (ARM64 is not in bulk_extractor's table)
        let mut g = f.clone();
        g[0x84..0x86].copy_from_slice(&0xaa64u16.to_le_bytes());
        assert!(run(&g).is_empty());
        // zero sections
        let mut g = f.clone();
        g[0x86] = 0;
        assert!(run(&g).is_empty());
        // bad magic
        let mut g = f.clone();
        g[0x98] = 0x0c;
        assert!(run(&g).is_empty());
        // entry point too high
        let mut g = f.clone();
        g[0x98 + 16 + 3] = 0x20;
        assert!(run(&g).is_empty());
        // symbol pointer without symbols
        let mut g = f.clone();
        g[0x84 + 8] = 1;
        assert!(run(&g).is_empty());
        // a bad section name ends the section list and drops the DLLs
        let mut g = f.clone();
        g[0x84 + 20 + 0xe0 + 40] = 0x01;
        let r = run(&g);
        assert_eq!(r.len(), 1);
        assert!(r[0].context.ends_with(b"</SectionHeader></Sections></PE>"));
        // no MZ needed, as in bulk_extractor
        let mut g = f.clone();
        g[..2].copy_from_slice(b"XX");
        assert_eq!(run(&g).len(), 1);
        // 0x00300000 (ALIGN_4BYTES) intersects every ALIGN_* value sharing
        // one of its two bits
        let mut g = f.clone();
        let o = 0x84 + 20 + 0xe0 + 36;
        g[o..o + 4].copy_from_slice(&0x6030_0020u32.to_le_bytes());
        let r = run(&g);
        let s = String::from_utf8_lossy(&r[0].context).into_owned();
        assert!(s.contains(
            "<IMAGE_SCN_CNT_CODE /><IMAGE_SCN_ALIGN_1BYTES /><IMAGE_SCN_ALIGN_2BYTES /><IMAGE_SCN_ALIGN_4BYTES /><IMAGE_SCN_ALIGN_16BYTES /><IMAGE_SCN_ALIGN_32BYTES /><IMAGE_SCN_ALIGN_64BYTES /><IMAGE_SCN_ALIGN_256BYTES /><IMAGE_SCN_ALIGN_512BYTES /><IMAGE_SCN_ALIGN_1024BYTES /><IMAGE_SCN_ALIGN_4096BYTES /><IMAGE_SCN_ALIGN_8192BYTES /><IMAGE_SCN_MEM_EXECUTE />"
        ), "{s}");
    }

    #[test]
    fn dense_signatures_same_result() {
        let f = tiny_pe32();
        let mut buf = b"PE\0\0x".repeat(3000);
        buf.extend_from_slice(&f);
        buf.extend(b"PE\0\0y".repeat(3000));
        let r = run(&buf);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].pos, 15000);
        assert_eq!(r[0].context, run(&f)[0].context);
        // one owned offset: the same record
        let mut v = Vec::new();
        scan(&buf, 15000..15001, &mut v);
        assert_eq!(v, r);
    }

    #[test]
    fn owned_range_offsets_and_truncation() {
        let f = tiny_pe32();
        let mut buf = vec![0x41u8; 333];
        buf.extend_from_slice(&f);
        let mut v = Vec::new();
        scan(&buf, 0..333, &mut v);
        assert!(v.is_empty());
        scan(&buf, 333..334, &mut v);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pos, 333);
        for n in 0..f.len() {
            let r = run(&f[..n]);
            assert!(r.len() <= 1);
        }
        // import table cut off: an empty DLL list, as bulk_extractor
        let r = run(&f[..0x300]);
        assert_eq!(r.len(), 1);
        assert!(r[0].context.ends_with(b"</Sections><dlls></dlls></PE>"));
    }
}
