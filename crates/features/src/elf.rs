//! `elf`: ELF headers (bulk_extractor's `scan_elf`), written to `elf.txt`.
//!
//! At every `\x7fELF` the header is decoded as bulk_extractor does:
//! `EI_CLASS` must be 1 or 2 and `EI_DATA` 1 or 2; `e_phentsize` and
//! `e_shentsize` even, `e_shstrndx <= e_shnum`, `e_type` and `e_machine`
//! in its tables, `e_ehsize` at least the header's size; more than ten
//! `SHT_NULL` sections, or an `SHT_DYNAMIC` section with a zero size or
//! entry size, reject the header.
//!
//! * feature: the SHA-1 (bulk_extractor 2.x's default hasher) of the first
//!   4096 bytes from the magic;
//! * context: `<ELF class=".." data=".." osabi=".." abiversion=".." ><ehdr
//!   type=".." machine=".." version=".." entry=".." ... /><sections><section
//!   name=".." type=".." addr="0x.." offset=".." ...><flags>...</flags>
//!   </section>...</sections><shared_objects><so>libc.so.6</so>...
//!   </shared_objects></ELF>`.
//!
//! bulk_extractor's quirks are reproduced on purpose:
//! * every field is read little-endian, as bulk_extractor reads its packed
//!   structs on a little-endian host, whatever `EI_DATA` says (so nearly
//!   every big-endian ELF fails the `e_type`/`e_machine` tables);
//! * the C++ stream's `std::hex` set for the first section's `addr` stays
//!   set: every later section number is in hex, without `0x`;
//! * the 64-bit `sh_flags` are truncated to 32 bits for `<flags>`, and the
//!   64-bit `DT_STRTAB` address to 32 bits;
//! * section names and shared-object names are raw bytes, not escaped.
//!
//! Deviation: bulk_extractor reads to the end of its 16 MiB page (plus
//! margin); this scanner reads [`records::WINDOW`] bytes from the magic,
//! so sections, names or dynamic entries beyond 60 KiB are treated as
//! bulk_extractor treats data past the end of its buffer. The `DT_NEEDED`
//! search reads at most 65536 dynamic entries and section headers per
//! header (a real ELF needs a few hundred; bulk_extractor has no bound).

use crate::binfmt::{Xml, byte_or0, decode_flags, le16, le32, le64, sha1_first_4k};
use crate::records::{Record, window};
use memchr::memmem;
use std::ops::Range;

const OSABI: &[(u32, &str)] = &[
    (0, "ELFOSABI_NONE"),
    (0, "ELFOSABI_SYSV"),
    (1, "ELFOSABI_HPUX"),
    (2, "ELFOSABI_NETBSD"),
    (3, "ELFOSABI_GNU"),
    (3, "ELFOSABI_LINUX"),
    (6, "ELFOSABI_SOLARIS"),
    (7, "ELFOSABI_AIX"),
    (8, "ELFOSABI_IRIX"),
    (9, "ELFOSABI_FREEBSD"),
    (10, "ELFOSABI_TRU64"),
    (11, "ELFOSABI_MODESTO"),
    (12, "ELFOSABI_OPENBSD"),
    (64, "ELFOSABI_ARM_AEABI"),
    (97, "ELFOSABI_ARM"),
    (255, "ELFOSABI_STANDALONE"),
];

const ET: &[(u32, &str)] = &[
    (0, "ET_NONE"),
    (1, "ET_REL"),
    (2, "ET_EXEC"),
    (3, "ET_DYN"),
    (4, "ET_CORE"),
    (5, "ET_NUM"),
    (0xfe00, "ET_LOOS"),
    (0xfeff, "ET_HIOS"),
    (0xff00, "ET_LOPROC"),
    (0xffff, "ET_HIPROC"),
];

const EM: &[(u32, &str)] = &[
    (0, "EM_NONE"),
    (1, "EM_M32"),
    (2, "EM_SPARC"),
    (3, "EM_386"),
    (4, "EM_68K"),
    (5, "EM_88K"),
    (7, "EM_860"),
    (8, "EM_MIPS"),
    (9, "EM_S370"),
    (10, "EM_MIPS_RS3_LE"),
    (15, "EM_PARISC"),
    (17, "EM_VPP500"),
    (18, "EM_SPARC32PLUS"),
    (19, "EM_960"),
    (20, "EM_PPC"),
    (21, "EM_PPC64"),
    (22, "EM_S390"),
    (36, "EM_V800"),
    (37, "EM_FR20"),
    (38, "EM_RH32"),
    (39, "EM_RCE"),
    (40, "EM_ARM"),
    (41, "EM_FAKE_ALPHA"),
    (42, "EM_SH"),
    (43, "EM_SPARCV9"),
    (44, "EM_TRICORE"),
    (45, "EM_ARC"),
    (46, "EM_H8_300"),
    (47, "EM_H8_300H"),
    (48, "EM_H8S"),
    (49, "EM_H8_500"),
    (50, "EM_IA_64"),
    (51, "EM_MIPS_X"),
    (52, "EM_COLDFIRE"),
    (53, "EM_68HC12"),
    (54, "EM_MMA"),
    (55, "EM_PCP"),
    (56, "EM_NCPU"),
    (57, "EM_NDR1"),
    (58, "EM_STARCORE"),
    (59, "EM_ME16"),
    (60, "EM_ST100"),
    (61, "EM_TINYJ"),
    (62, "EM_X86_64"),
    (63, "EM_PDSP"),
    (66, "EM_FX66"),
    (67, "EM_ST9PLUS"),
    (68, "EM_ST7"),
    (69, "EM_68HC16"),
    (70, "EM_68HC11"),
    (71, "EM_68HC08"),
    (72, "EM_68HC05"),
    (73, "EM_SVX"),
    (74, "EM_ST19"),
    (75, "EM_VAX"),
    (76, "EM_CRIS"),
    (77, "EM_JAVELIN"),
    (78, "EM_FIREPATH"),
    (79, "EM_ZSP"),
    (80, "EM_MMIX"),
    (81, "EM_HUANY"),
    (82, "EM_PRISM"),
    (83, "EM_AVR"),
    (84, "EM_FR30"),
    (85, "EM_D10V"),
    (86, "EM_D30V"),
    (87, "EM_V850"),
    (88, "EM_M32R"),
    (89, "EM_MN10300"),
    (90, "EM_MN10200"),
    (91, "EM_PJ"),
    (92, "EM_OPENRISC"),
    (93, "EM_ARC_A5"),
    (94, "EM_XTENSA"),
];

const SHT: &[(u32, &str)] = &[
    (0, "SHT_NULL"),
    (1, "SHT_PROGBITS"),
    (2, "SHT_SYMTAB"),
    (3, "SHT_STRTAB"),
    (4, "SHT_RELA"),
    (5, "SHT_HASH"),
    (6, "SHT_DYNAMIC"),
    (7, "SHT_NOTE"),
    (8, "SHT_NOBITS"),
    (9, "SHT_REL"),
    (10, "SHT_SHLIB"),
    (11, "SHT_DYNSYM"),
    (14, "SHT_INIT_ARRAY"),
    (15, "SHT_FINI_ARRAY"),
    (16, "SHT_PREINIT_ARRAY"),
    (17, "SHT_GROUP"),
    (18, "SHT_SYMTAB_SHNDX"),
    (19, "SHT_NUM"),
    (0x6000_0000, "SHT_LOOS"),
    (0x6fff_fff5, "SHT_GNU_ATTRIBUTES"),
    (0x6fff_fff6, "SHT_GNU_HASH"),
    (0x6fff_fff7, "SHT_GNU_LIBLIST"),
    (0x6fff_fff8, "SHT_CHECKSUM"),
    (0x6fff_fffa, "SHT_LOSUNW"),
    (0x6fff_fffb, "SHT_SUNW_COMDAT"),
    (0x6fff_fffc, "SHT_SUNW_syminfo"),
    (0x6fff_fffd, "SHT_GNU_verdef"),
    (0x6fff_fffe, "SHT_GNU_verneed"),
    (0x6fff_ffff, "SHT_GNU_versym"),
    (0x7000_0000, "SHT_LOPROC"),
    (0x7fff_ffff, "SHT_HIPROC"),
    (0x8000_0000, "SHT_LOUSER"),
    (0x8fff_ffff, "SHT_HIUSER"),
];

const SHF: &[(u32, &str)] = &[
    (1, "SHF_WRITE"),
    (1 << 1, "SHF_ALLOC"),
    (1 << 2, "SHF_EXECINSTR"),
    (1 << 4, "SHF_MERGE"),
    (1 << 5, "SHF_STRINGS"),
    (1 << 6, "SHF_INFO_LINK"),
    (1 << 7, "SHF_LINK_ORDER"),
    (1 << 8, "SHF_OS_NONCONFORMING"),
    (1 << 9, "SHF_GROUP"),
    (1 << 10, "SHF_TLS"),
    (0x0ff0_0000, "SHF_MASKOS"),
    (0xf000_0000, "SHF_MASKPROC"),
    (1 << 30, "SHF_ORDERED"),
    (1 << 31, "SHF_EXCLUDE"),
];

const SHT_NULL: u32 = 0;
const SHT_DYNAMIC: u32 = 6;
/// bulk_extractor's `sht_null_counter_max`.
const MAX_SHT_NULL: u32 = 10;
/// Dynamic entries and section headers the `DT_NEEDED` search reads per
/// header at most: a real ELF needs a few hundred; a crafted one with a
/// thousand overlapping `SHT_DYNAMIC` sections must not cost 10^8.
const DYN_BUDGET: u32 = 1 << 16;
/// bulk_extractor's `slt_max_name_size`.
const MAX_NAME: usize = 65535;

fn lookup(table: &[(u32, &'static str)], v: u32) -> Option<&'static str> {
    table.iter().find(|e| e.0 == v).map(|e| e.1)
}

/// The records of ELF headers starting in `own`.
pub(crate) fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let end = own.end.saturating_add(3).min(buf.len());
    if own.start >= end {
        return;
    }
    for m in memmem::find_iter(&buf[own.start..end], b"\x7fELF") {
        let pos = own.start + m;
        let (w, p) = window(buf, pos);
        let data = &w[p..];
        // cheap rejections before any allocation
        if !matches!(byte_or0(data, 4), 1 | 2) || !matches!(byte_or0(data, 5), 1 | 2) {
            continue;
        }
        if let Some(xml) = verify(data) {
            out.push(Record {
                recorder: "elf",
                pos,
                feature: sha1_first_4k(data),
                context: xml,
            });
        }
    }
}

/// The 32- or 64-bit layout.
#[derive(Clone, Copy)]
struct Class {
    is64: bool,
}

/// A section header, widened.
struct Shdr {
    name: u32,
    typ: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    addralign: u64,
    entsize: u64,
}

impl Class {
    fn ehdr_size(self) -> u64 {
        if self.is64 { 64 } else { 52 }
    }
    /// A word (`Elf32_Addr`/`Elf64_Addr`-sized) at `off`.
    fn word(self, d: &[u8], off: u64) -> Option<u64> {
        if self.is64 {
            le64(d, off)
        } else {
            le32(d, off).map(u64::from)
        }
    }
    /// `base + k` in the C type of `base` (`uint32_t` or `uint64_t`).
    fn add(self, base: u64, k: u64) -> u64 {
        if self.is64 {
            base.wrapping_add(k)
        } else {
            (base as u32).wrapping_add(k as u32) as u64
        }
    }
    fn shdr(self, d: &[u8], off: u64) -> Option<Shdr> {
        if self.is64 {
            let _ =
                d.get(usize::try_from(off).ok()?..usize::try_from(off.checked_add(64)?).ok()?)?;
            Some(Shdr {
                name: le32(d, off)?,
                typ: le32(d, off + 4)?,
                flags: le64(d, off + 8)?,
                addr: le64(d, off + 16)?,
                offset: le64(d, off + 24)?,
                size: le64(d, off + 32)?,
                link: le32(d, off + 40)?,
                info: le32(d, off + 44)?,
                addralign: le64(d, off + 48)?,
                entsize: le64(d, off + 56)?,
            })
        } else {
            let _ =
                d.get(usize::try_from(off).ok()?..usize::try_from(off.checked_add(40)?).ok()?)?;
            let w = |k: u64| le32(d, off + k).map(u64::from);
            Some(Shdr {
                name: le32(d, off)?,
                typ: le32(d, off + 4)?,
                flags: w(8)?,
                addr: w(12)?,
                offset: w(16)?,
                size: w(20)?,
                link: le32(d, off + 24)?,
                info: le32(d, off + 28)?,
                addralign: w(32)?,
                entsize: w(36)?,
            })
        }
    }
    /// A dynamic entry: (`d_tag`, `d_un`).
    fn dyn_at(self, d: &[u8], off: u64) -> Option<(i64, u64)> {
        if self.is64 {
            Some((le64(d, off)? as i64, le64(d, off.checked_add(8)?)?))
        } else {
            Some((
                i64::from(le32(d, off)? as i32),
                u64::from(le32(d, off.checked_add(4)?)?),
            ))
        }
    }
}

/// bulk_extractor's `getAsciiString`: bytes up to a NUL (or the end), or
/// nothing if one has its high bit set.
fn ascii_string(d: &[u8], off: u64) -> &[u8] {
    let Some(s) = usize::try_from(off).ok().and_then(|o| d.get(o..)) else {
        return &[];
    };
    let n = memchr::memchr(0, s).unwrap_or(s.len());
    let s = &s[..n];
    if s.iter().any(|&c| c & 0x80 != 0) {
        &[]
    } else {
        s
    }
}

/// The header fields used by the section walk.
struct Ehdr {
    shoff: u64,
    shentsize: u16,
    shnum: u16,
}

/// `scan_elf{32,64}_dynamic_needed`: `<so>NAME</so>` per `DT_NEEDED`.
fn dynamic_needed(c: Class, d: &[u8], eh: &Ehdr, sh: &Shdr, so: &mut Vec<u8>, budget: &mut u32) {
    const DT_NEEDED: i64 = 1;
    const DT_STRTAB: i64 = 5;
    let n = sh.size / sh.entsize; // entsize != 0: checked by the caller
    let n = if c.is64 { n } else { n & 0xffff_ffff };
    let at = |i: u64| c.add(sh.offset, sh.entsize.wrapping_mul(i));
    // first DT_STRTAB; bulk_extractor keeps it in a uint32_t
    let mut strtab_addr: u32 = 0;
    let mut i = 0u64;
    while i < n {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Some((tag, val)) = c.dyn_at(d, at(i)) else {
            break;
        };
        if tag == DT_STRTAB {
            strtab_addr = val as u32;
            break;
        }
        i += 1;
    }
    if strtab_addr == 0 {
        return;
    }
    let addr = u64::from(strtab_addr);
    let mut strtab = None;
    for k in 0..u64::from(eh.shnum) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let off = c.add(eh.shoff, u64::from(eh.shentsize) * k);
        let Some(t) = c.shdr(d, off) else {
            break;
        };
        if t.addr <= addr && c.add(t.addr, t.size) > addr {
            strtab = Some(t);
            break;
        }
    }
    let Some(strtab) = strtab else {
        return;
    };
    let mut i = 0u64;
    while i < n {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Some((tag, val)) = c.dyn_at(d, at(i)) else {
            break;
        };
        if tag == DT_NEEDED {
            so.extend_from_slice(b"<so>");
            so.extend_from_slice(ascii_string(d, c.add(strtab.offset, val)));
            so.extend_from_slice(b"</so>");
        }
        i += 1;
    }
}

/// bulk_extractor's `scan_elf_verify`: the XML, or `None` if not an ELF
/// header it accepts. `d` runs from the magic to the end of the window.
fn verify(d: &[u8]) -> Option<Vec<u8>> {
    let mut x = Xml::default();
    x.s("<ELF");
    let c = match byte_or0(d, 4) {
        1 => {
            x.s(" class=\"ELFCLASS32\"");
            Class { is64: false }
        }
        2 => {
            x.s(" class=\"ELFCLASS64\"");
            Class { is64: true }
        }
        _ => return None,
    };
    match byte_or0(d, 5) {
        1 => x.s(" data=\"ELFDATA2LSB\""),
        2 => x.s(" data=\"ELFDATA2MSB\""),
        _ => return None,
    };
    x.s(" osabi=\"")
        .s(lookup(OSABI, u32::from(byte_or0(d, 7))).unwrap_or(""))
        .s("\"");
    x.s(" abiversion=\"").i(i32::from(byte_or0(d, 8))).s("\" >");

    if (d.len() as u64) < c.ehdr_size() {
        return None;
    }
    let r16 = |o: u64| le16(d, o);
    let e_type = r16(16)?;
    let e_machine = r16(18)?;
    let e_version = le32(d, 20)?;
    let e_entry = c.word(d, 24)?;
    let (e_phoff, e_shoff, rest) = if c.is64 {
        (le64(d, 32)?, le64(d, 40)?, 48)
    } else {
        (u64::from(le32(d, 28)?), u64::from(le32(d, 32)?), 36)
    };
    let e_flags = le32(d, rest)?;
    let e_ehsize = r16(rest + 4)?;
    let e_phentsize = r16(rest + 6)?;
    let e_phnum = r16(rest + 8)?;
    let e_shentsize = r16(rest + 10)?;
    let e_shnum = r16(rest + 12)?;
    let e_shstrndx = r16(rest + 14)?;

    if e_phentsize & 1 != 0 || e_shentsize & 1 != 0 || e_shstrndx > e_shnum {
        return None;
    }
    let typ = lookup(ET, u32::from(e_type))?;
    let machine = lookup(EM, u32::from(e_machine))?;
    if u64::from(e_ehsize) < c.ehdr_size() {
        return None;
    }
    x.s("<ehdr");
    x.s(" type=\"").s(typ).s("\"");
    x.s(" machine=\"").s(machine).s("\"");
    x.s(" version=\"").n(u64::from(e_version)).s("\"");
    x.s(" entry=\"").n(e_entry).s("\"");
    x.s(" phoff=\"").n(e_phoff).s("\"");
    x.s(" shoff=\"").n(e_shoff).s("\"");
    x.s(" flags=\"").n(u64::from(e_flags)).s("\"");
    x.s(" ehsize=\"").n(u64::from(e_ehsize)).s("\"");
    x.s(" phentsize=\"").n(u64::from(e_phentsize)).s("\"");
    x.s(" phnum=\"").n(u64::from(e_phnum)).s("\"");
    x.s(" shentsize=\"").n(u64::from(e_shentsize)).s("\"");
    x.s(" shnum=\"").n(u64::from(e_shnum)).s("\"");
    x.s(" shstrndx=\"").n(u64::from(e_shstrndx)).s("\"");
    x.s(" />");
    x.s("<sections>");

    let eh = Ehdr {
        shoff: e_shoff,
        shentsize: e_shentsize,
        shnum: e_shnum,
    };
    let shstr = c.shdr(
        d,
        c.add(e_shoff, u64::from(e_shentsize) * u64::from(e_shstrndx)),
    );
    let mut so = Vec::new();
    let mut budget = DYN_BUDGET;
    let mut nulls = 0u32;
    for si in 0..u64::from(e_shnum) {
        let Some(sh) = c.shdr(d, c.add(e_shoff, u64::from(e_shentsize) * si)) else {
            break;
        };
        if sh.typ == SHT_NULL {
            nulls += 1;
            if nulls > MAX_SHT_NULL {
                return None;
            }
        }
        x.s("<section");
        if sh.typ == SHT_DYNAMIC {
            if sh.size == 0 || sh.entsize == 0 {
                return None;
            }
            dynamic_needed(c, d, &eh, &sh, &mut so, &mut budget);
        }
        if let Some(st) = &shstr {
            let name = ascii_string(d, c.add(st.offset, u64::from(sh.name)));
            if name.len() > MAX_NAME {
                return None;
            }
            x.s(" name=\"").b(name).s("\"");
        }
        x.s(" type=\"").s(lookup(SHT, sh.typ).unwrap_or("")).s("\"");
        x.s(" addr=\"0x").hex().n(sh.addr).s("\"");
        x.s(" offset=\"").n(sh.offset).s("\"");
        x.s(" size=\"").n(sh.size).s("\"");
        x.s(" link=\"").n(u64::from(sh.link)).s("\"");
        x.s(" info=\"").n(u64::from(sh.info)).s("\"");
        x.s(" addralign=\"").n(sh.addralign).s("\"");
        x.s(" shentsize=\"").n(sh.entsize).s("\"");
        x.s(">");
        decode_flags(&mut x, "flags", SHF, sh.flags as u32);
        x.s("</section>");
    }
    x.s("</sections>");
    x.s("<shared_objects>").b(&so).s("</shared_objects>");
    x.s("</ELF>");
    Some(x.buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit little-endian ET_DYN x86-64 ELF: null section,
    /// .dynstr, .dynamic (DT_NEEDED libc.so.6, DT_STRTAB), .shstrtab.
    pub(crate) fn tiny_elf64() -> Vec<u8> {
        let mut f = vec![0u8; 0x400];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[7] = 3; // GNU
        let put16 =
            |f: &mut Vec<u8>, o: usize, v: u16| f[o..o + 2].copy_from_slice(&v.to_le_bytes());
        let put32 =
            |f: &mut Vec<u8>, o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_le_bytes());
        let put64 =
            |f: &mut Vec<u8>, o: usize, v: u64| f[o..o + 8].copy_from_slice(&v.to_le_bytes());
        put16(&mut f, 16, 3);
        put16(&mut f, 18, 62);
        put32(&mut f, 20, 1);
        put64(&mut f, 24, 0x1040);
        put64(&mut f, 32, 64);
        put64(&mut f, 40, 0x200);
        put16(&mut f, 52, 64);
        put16(&mut f, 54, 56);
        put16(&mut f, 56, 0);
        put16(&mut f, 58, 64);
        put16(&mut f, 60, 4);
        put16(&mut f, 62, 3);
        // .dynstr at file 0x100, address 0x2100
        f[0x100..0x10c].copy_from_slice(b"\0libc.so.6\0\0");
        // .dynamic at 0x140: NEEDED 1, STRTAB 0x2100, NULL
        put64(&mut f, 0x140, 1);
        put64(&mut f, 0x148, 1);
        put64(&mut f, 0x150, 5);
        put64(&mut f, 0x158, 0x2100);
        // .shstrtab at 0x180
        f[0x180..0x19b].copy_from_slice(b"\0.dynstr\0.dynamic\0.shstrtab");
        // section headers at 0x200
        let sh = |f: &mut Vec<u8>,
                  i: usize,
                  name: u32,
                  typ: u32,
                  flags: u64,
                  addr: u64,
                  off: u64,
                  size: u64,
                  ent: u64| {
            let o = 0x200 + 64 * i;
            f[o..o + 4].copy_from_slice(&name.to_le_bytes());
            f[o + 4..o + 8].copy_from_slice(&typ.to_le_bytes());
            f[o + 8..o + 16].copy_from_slice(&flags.to_le_bytes());
            f[o + 16..o + 24].copy_from_slice(&addr.to_le_bytes());
            f[o + 24..o + 32].copy_from_slice(&off.to_le_bytes());
            f[o + 32..o + 40].copy_from_slice(&size.to_le_bytes());
            f[o + 48..o + 56].copy_from_slice(&1u64.to_le_bytes());
            f[o + 56..o + 64].copy_from_slice(&ent.to_le_bytes());
        };
        sh(&mut f, 1, 1, 3, 2, 0x2100, 0x100, 12, 0);
        sh(&mut f, 2, 9, 6, 3, 0x2140, 0x140, 48, 16);
        sh(&mut f, 3, 18, 3, 0, 0, 0x180, 27, 0);
        f
    }

    fn run(buf: &[u8]) -> Vec<Record> {
        let mut v = Vec::new();
        scan(buf, 0..buf.len(), &mut v);
        v
    }

    #[test]
    fn tiny_elf64_xml() {
        let f = tiny_elf64();
        let r = run(&f);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].pos, 0);
        assert_eq!(r[0].feature, sha1_first_4k(&f));
        let want = concat!(
            r#"<ELF class="ELFCLASS64" data="ELFDATA2LSB" osabi="ELFOSABI_GNU" abiversion="0" >"#,
            r#"<ehdr type="ET_DYN" machine="EM_X86_64" version="1" entry="4160" phoff="64" shoff="512" flags="0" ehsize="64" phentsize="56" phnum="0" shentsize="64" shnum="4" shstrndx="3" />"#,
            "<sections>",
            r#"<section name="" type="SHT_NULL" addr="0x0" offset="0" size="0" link="0" info="0" addralign="0" shentsize="0"><flags></flags></section>"#,
            r#"<section name=".dynstr" type="SHT_STRTAB" addr="0x2100" offset="100" size="c" link="0" info="0" addralign="1" shentsize="0"><flags><SHF_ALLOC /></flags></section>"#,
            r#"<section name=".dynamic" type="SHT_DYNAMIC" addr="0x2140" offset="140" size="30" link="0" info="0" addralign="1" shentsize="10"><flags><SHF_WRITE /><SHF_ALLOC /></flags></section>"#,
            r#"<section name=".shstrtab" type="SHT_STRTAB" addr="0x0" offset="180" size="1b" link="0" info="0" addralign="1" shentsize="0"><flags></flags></section>"#,
            "</sections><shared_objects><so>libc.so.6</so></shared_objects></ELF>"
        );
        assert_eq!(String::from_utf8_lossy(&r[0].context), want);
    }

    #[test]
    fn rejections() {
        let f = tiny_elf64();
        // odd e_shentsize
        let mut g = f.clone();
        g[58] = 65;
        assert!(run(&g).is_empty());
        // shstrndx > shnum
        let mut g = f.clone();
        g[62] = 5;
        assert!(run(&g).is_empty());
        // unknown machine (AArch64 is not in bulk_extractor's table)
        let mut g = f.clone();
        g[18] = 183;
        assert!(run(&g).is_empty());
        // bad class / data
        let mut g = f.clone();
        g[4] = 3;
        assert!(run(&g).is_empty());
        let mut g = f.clone();
        g[5] = 0;
        assert!(run(&g).is_empty());
        // e_ehsize too small
        let mut g = f.clone();
        g[52] = 52;
        assert!(run(&g).is_empty());
        // dynamic section with zero entsize
        let mut g = f.clone();
        g[0x200 + 128 + 56] = 0;
        assert!(run(&g).is_empty());
        // truncated header
        assert!(run(&f[..40]).is_empty());
        // the big-endian flag alone keeps the (little-endian-read) header
        let mut g = f.clone();
        g[5] = 2;
        let r = run(&g);
        assert_eq!(r.len(), 1);
        assert!(
            r[0].context
                .starts_with(br#"<ELF class="ELFCLASS64" data="ELFDATA2MSB""#)
        );
    }

    #[test]
    fn crafted_dynamic_sections_are_bounded() {
        // 900 overlapping SHT_DYNAMIC sections of 4 GiB with 1-byte entries
        let mut f = tiny_elf64();
        f.resize(64 + 900 * 64, 0);
        f[40..48].copy_from_slice(&64u64.to_le_bytes());
        f[60..62].copy_from_slice(&900u16.to_le_bytes());
        f[62..64].copy_from_slice(&0u16.to_le_bytes());
        for i in 0..900 {
            let o = 64 + 64 * i;
            f[o..o + 64].fill(0);
            f[o + 4..o + 8].copy_from_slice(&6u32.to_le_bytes());
            f[o + 32..o + 40].copy_from_slice(&u64::from(u32::MAX).to_le_bytes());
            f[o + 56..o + 64].copy_from_slice(&1u64.to_le_bytes());
        }
        let r = run(&f);
        assert_eq!(r.len(), 1);
        assert_eq!(
            String::from_utf8_lossy(&r[0].context)
                .matches("SHT_DYNAMIC")
                .count(),
            900
        );
    }

    #[test]
    fn owned_range_and_truncation() {
        let f = tiny_elf64();
        let mut buf = vec![0x55u8; 100];
        buf.extend_from_slice(&f);
        let mut v = Vec::new();
        scan(&buf, 0..100, &mut v);
        assert!(v.is_empty());
        scan(&buf, 100..101, &mut v);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pos, 100);
        // section table cut off: sections stop, header still reported
        let r = run(&f[..0x200 + 64 * 2 + 10]);
        assert_eq!(r.len(), 1);
        assert!(
            r[0].context
                .ends_with(b"</sections><shared_objects></shared_objects></ELF>")
        );
        for n in 0..f.len() {
            let _ = run(&f[..n]);
        }
    }
}
