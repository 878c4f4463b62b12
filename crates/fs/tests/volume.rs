//! Volume systems: MBR with extended and logical partitions, GPT checked
//! against its backup, damaged tables; a bit-flip fuzz over both (a few
//! hundred cases here, `TRAWL_FUZZ_SECS=600` for a long run).

use proptest::prelude::*;
use trawl_evidence::MemEvidence;
use trawl_fs::volume::{VolumeKind, VolumeSystemKind};
use trawl_fs::{list_image, list_volumes};

const S: usize = 512;

fn entry(t: &mut [u8], slot: usize, kind: u8, start: u32, count: u32) {
    let e = &mut t[446 + 16 * slot..446 + 16 * (slot + 1)];
    e[4] = kind;
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&count.to_le_bytes());
}

fn sig(t: &mut [u8]) {
    t[510] = 0x55;
    t[511] = 0xAA;
}

/// An MBR disk: two primaries, an extended partition whose first EBR holds
/// two logical partitions and links on in its third slot, then a second
/// EBR with one more.
fn mbr_disk() -> Vec<u8> {
    let mut d = vec![0u8; 4096 * S];
    entry(&mut d[..S], 0, 0x83, 64, 100);
    entry(&mut d[..S], 1, 0x07, 200, 100);
    entry(&mut d[..S], 2, 0x05, 1000, 2000);
    sig(&mut d[..S]);
    let e1 = 1000 * S;
    entry(&mut d[e1..e1 + S], 0, 0x0B, 10, 100);
    entry(&mut d[e1..e1 + S], 1, 0x0C, 200, 100);
    entry(&mut d[e1..e1 + S], 2, 0x05, 500, 500);
    sig(&mut d[e1..e1 + S]);
    let e2 = 1500 * S;
    entry(&mut d[e2..e2 + S], 0, 0x83, 1, 300);
    sig(&mut d[e2..e2 + S]);
    d
}

fn guid_bytes(seed: u8) -> [u8; 16] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

const BASIC_DATA: [u8; 16] = [
    0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7,
];

/// A GPT disk of `sectors` sectors with two partitions, primary and backup.
fn gpt_disk(sectors: u64) -> Vec<u8> {
    let mut d = vec![0u8; sectors as usize * S];
    entry(&mut d[..S], 0, 0xEE, 1, (sectors - 1) as u32);
    sig(&mut d[..S]);
    let mut entries = vec![0u8; 128 * 128];
    for (i, (first, last, name)) in [(34u64, 133u64, "alpha"), (200, 399, "b\u{e9}ta")]
        .iter()
        .enumerate()
    {
        let e = &mut entries[i * 128..(i + 1) * 128];
        e[0..16].copy_from_slice(&BASIC_DATA);
        e[16..32].copy_from_slice(&guid_bytes(i as u8 + 1));
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&last.to_le_bytes());
        for (j, c) in name.encode_utf16().enumerate() {
            e[56 + 2 * j..58 + 2 * j].copy_from_slice(&c.to_le_bytes());
        }
    }
    let ecrc = crc32fast::hash(&entries);
    let last = sectors - 1;
    let header = |current: u64, backup: u64, entries_lba: u64| {
        let mut h = vec![0u8; 92];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&current.to_le_bytes());
        h[32..40].copy_from_slice(&backup.to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[48..56].copy_from_slice(&(last - 33).to_le_bytes());
        h[56..72].copy_from_slice(&guid_bytes(9));
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&ecrc.to_le_bytes());
        let crc = crc32fast::hash(&h);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };
    d[S..S + 92].copy_from_slice(&header(1, last, 2));
    d[2 * S..2 * S + entries.len()].copy_from_slice(&entries);
    let bl = last as usize * S;
    d[bl..bl + 92].copy_from_slice(&header(last, 1, last - 32));
    let be = (last as usize - 32) * S;
    d[be..be + entries.len()].copy_from_slice(&entries);
    d
}

fn ev(d: Vec<u8>) -> MemEvidence {
    MemEvidence::new("disk", d, false)
}

#[test]
fn mbr_primary_extended_and_logical_partitions() {
    let vs = list_volumes(&ev(mbr_disk())).unwrap();
    assert_eq!(vs.kind, VolumeSystemKind::Mbr);
    let data: Vec<(u64, u64)> = vs
        .volumes
        .iter()
        .filter(|v| v.is_data())
        .map(|v| (v.offset / S as u64, v.length / S as u64))
        .collect();
    // Logical partitions start relative to their EBR.
    assert_eq!(
        data,
        [(64, 100), (200, 100), (1010, 100), (1200, 100), (1501, 300)]
    );
    assert!(vs.limitations.is_empty(), "{:?}", vs.limitations);
    let logical = vs
        .volumes
        .iter()
        .filter(|v| matches!(v.kind, VolumeKind::Mbr { logical: true, .. }))
        .count();
    assert_eq!(logical, 3);
}

#[test]
fn mbr_ebr_loop_and_partition_past_the_end_are_limitations() {
    let mut d = mbr_disk();
    // The second EBR links back to the first.
    let e2 = 1500 * S;
    entry(&mut d[e2..e2 + S], 1, 0x05, 0, 500);
    // A primary partition past the image end.
    entry(&mut d[..S], 3, 0x83, 4000, 1000);
    let vs = list_volumes(&ev(d)).unwrap();
    let what: Vec<&str> = vs
        .limitations
        .iter()
        .map(|l| l.structure.as_str())
        .collect();
    assert!(what.contains(&"extended boot record"), "{what:?}");
    assert!(what.contains(&"partition"), "{what:?}");
    assert!(vs.limitations.iter().any(|l| l.what.contains("loops")));
}

#[test]
fn gpt_partitions_names_and_backup() {
    let d = gpt_disk(2048);
    let vs = list_volumes(&ev(d.clone())).unwrap();
    assert_eq!(vs.kind, VolumeSystemKind::Gpt);
    assert!(vs.limitations.is_empty(), "{:?}", vs.limitations);
    let v: Vec<(u64, u64, Option<String>, String)> = vs
        .volumes
        .iter()
        .map(|v| {
            (
                v.offset / S as u64,
                v.length / S as u64,
                v.label.clone(),
                v.type_name.clone(),
            )
        })
        .collect();
    assert_eq!(
        v,
        [
            (34, 100, Some("alpha".into()), "Microsoft basic data".into()),
            (
                200,
                200,
                Some("b\u{e9}ta".into()),
                "Microsoft basic data".into()
            ),
        ]
    );
    // Primary header destroyed: the backup is used, and said.
    let mut broken = d.clone();
    broken[S + 30] ^= 0xFF;
    let vs2 = list_volumes(&ev(broken)).unwrap();
    assert_eq!(vs2.volumes, vs.volumes);
    assert!(
        vs2.limitations
            .iter()
            .any(|l| l.structure == "GPT primary header"),
        "{:?}",
        vs2.limitations
    );
    // Backup damaged: the primary is used, the backup named.
    let mut broken = d.clone();
    let last = d.len() - S;
    broken[last + 3] ^= 1;
    let vs3 = list_volumes(&ev(broken)).unwrap();
    assert_eq!(vs3.volumes, vs.volumes);
    assert!(
        vs3.limitations
            .iter()
            .any(|l| l.structure == "GPT backup header"),
        "{:?}",
        vs3.limitations
    );
    // The image truncated: the backup is not at the last LBA any more.
    let vs4 = list_volumes(&ev(d[..1900 * S].to_vec())).unwrap();
    assert_eq!(vs4.volumes, vs.volumes);
    assert!(!vs4.limitations.is_empty());
}

#[test]
fn a_boot_sector_at_zero_is_one_volume() {
    let mut d = vec![0u8; 64 * S];
    d[0] = 0xEB;
    d[3..11].copy_from_slice(b"NTFS    ");
    sig(&mut d[..S]);
    let vs = list_volumes(&ev(d)).unwrap();
    assert_eq!(vs.kind, VolumeSystemKind::None);
    assert_eq!(vs.volumes.len(), 1);
}

fn fuzz_one(base: &[u8], flips: &[(usize, u8)]) {
    let mut d = base.to_vec();
    let n = d.len();
    for &(at, x) in flips {
        // Flips in the table areas: the first 34 sectors and the last 33.
        let at = at % (67 * S);
        let at = if at < 34 * S {
            at
        } else {
            n - (at - 34 * S) - 1
        };
        d[at] ^= x;
    }
    let e = ev(d);
    let _ = list_volumes(&e).unwrap();
    let _ = list_image(&e).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn bit_flips_never_panic(flips in prop::collection::vec((0usize..1_000_000, 1u8..=255), 1..12), gpt in any::<bool>()) {
        let base = if gpt { gpt_disk(2048) } else { mbr_disk() };
        fuzz_one(&base, &flips);
    }
}

/// The long run: `TRAWL_FUZZ_SECS=600 cargo test --release -p trawl-fs
/// --test volume long_fuzz -- --nocapture`.
#[test]
fn long_fuzz() {
    let secs: u64 = std::env::var("TRAWL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if secs == 0 {
        return;
    }
    let bases = [gpt_disk(2048), mbr_disk()];
    let start = std::time::Instant::now();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut cases = 0u64;
    while start.elapsed().as_secs() < secs {
        let mut flips = Vec::new();
        for _ in 0..(1 + cases % 11) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            flips.push(((x >> 8) as usize, (x as u8) | 1));
        }
        fuzz_one(&bases[(cases % 2) as usize], &flips);
        cases += 1;
    }
    println!("volume fuzz: {cases} cases in {secs} s, no panic");
}
