//! The sets the golden and validator tests write.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use trawl_share::{Identity, Item, ItemKind, ShareSet, Tlp, YaraSource};

/// 2026-12-07T10:00:00Z
pub const T0: i64 = 1_796_637_600_000;
pub const DAY: i64 = 86_400_000;

pub fn lab() -> Identity {
    Identity {
        name: "Example forensic lab".into(),
        uuid: "6f1c2c43-8a4e-4d0b-9b55-2f0d7e3c9a11".into(),
    }
}

/// `fixtures/sharing/` of the repository.
pub fn sharing_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/sharing")
}

fn it(kind: ItemKind, value: &str, days_ago: i64, sightings: u64, jobs: u32, marking: Tlp) -> Item {
    Item {
        kind,
        value: value.into(),
        first_ms: T0 - days_ago * DAY,
        last_ms: T0 - 3_600_000,
        sightings,
        jobs,
        marking,
    }
}

/// The fixed set of the golden files: every kind, a value with a quote and
/// a backslash, a punycode domain, items marked amber+strict and red (never
/// in an amber or green export), a flash's YARA source.
pub fn golden_set(tlp: Tlp, title: &str) -> ShareSet {
    use ItemKind::*;
    ShareSet {
        identity: lab(),
        tlp,
        title: title.into(),
        created_ms: T0,
        items: vec![
            it(Domain, "evil.example", 30, 12, 3, Tlp::Clear),
            it(Domain, "xn--bcher-kva.example", 2, 1, 1, Tlp::Green),
            it(Url, "http://evil.example/dl?f=a'b\\c&x=\"y\"", 5, 4, 2, Tlp::Amber),
            it(Ipv4, "203.0.113.7", 9, 7, 2, Tlp::Green),
            it(Ipv6, "2001:db8::7", 9, 2, 1, Tlp::Amber),
            it(Email, "mallory@evil.example", 14, 3, 1, Tlp::Clear),
            it(Md5, "d41d8cd98f00b204e9800998ecf8427f", 1, 1, 1, Tlp::Clear),
            it(Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d", 1, 2, 1, Tlp::Clear),
            it(
                Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                1,
                2,
                1,
                Tlp::Green,
            ),
            it(Bitcoin, "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", 20, 1, 1, Tlp::Amber),
            it(Iban, "FR1420041010050500013M02606", 20, 1, 1, Tlp::Amber),
            it(Phone, "+33612345678", 3, 5, 2, Tlp::Green),
            it(YaraRule, "dropper.yar/evil_dropper", 3, 2, 2, Tlp::Amber),
            it(Domain, "strict.example", 1, 1, 1, Tlp::AmberStrict),
            it(Domain, "red-only.example", 1, 1, 1, Tlp::Red),
        ],
        yara: vec![YaraSource {
            name: "F000001/dropper.yar".into(),
            text: "rule evil_dropper {\n  strings:\n    $a = \"evil.example\"\n  condition:\n    $a\n}\n"
                .into(),
        }],
    }
}

const TLDS: [&str; 4] = ["example", "test", "invalid", "example.org"];

fn label(r: &mut ChaCha8Rng) -> String {
    let n = r.gen_range(1..20);
    (0..n)
        .map(|_| {
            let c = r.gen_range(0..37u8);
            match c {
                0..=25 => (b'a' + c) as char,
                26..=35 => (b'0' + c - 26) as char,
                _ => '-',
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
        + "x"
}

fn hex(r: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(r.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// Internationalised labels in A-label form (IDNA: bücher, münchen, 例子,
/// пример, δοκιμή, straße, café).
const A_LABELS: [&str; 7] = [
    "xn--bcher-kva",
    "xn--mnchen-3ya",
    "xn--fsqu00a",
    "xn--e1afmkfd",
    "xn--jxalpdlp",
    "xn--strae-oqa",
    "xn--caf-dma",
];

/// Hostile pieces for the free-text kinds.
const HOSTILE: [&str; 8] = [
    "'",
    "\\",
    "\"",
    "\\'",
    "%27%5C",
    "é漢字🦀",
    "]",
    "' OR '1'='1",
];

fn value(r: &mut ChaCha8Rng, kind: ItemKind) -> String {
    use ItemKind::*;
    let domain = |r: &mut ChaCha8Rng| {
        let first = if r.gen_bool(0.3) {
            A_LABELS[r.gen_range(0..A_LABELS.len())].to_string()
        } else {
            label(r)
        };
        format!("{first}.{}.{}", label(r), TLDS[r.gen_range(0..TLDS.len())])
    };
    match kind {
        Domain => domain(r),
        Url => {
            let host = domain(r);
            let mut path = String::new();
            for _ in 0..r.gen_range(0..6) {
                path.push('/');
                path.push_str(&label(r));
                if r.gen_bool(0.4) {
                    path.push_str(HOSTILE[r.gen_range(0..HOSTILE.len())]);
                }
            }
            if r.gen_bool(0.2) {
                // a long URL
                path.push_str("?q=");
                path.push_str(&"a".repeat(r.gen_range(500..3000)));
            }
            format!("https://{host}{path}")
        }
        Ipv4 => format!(
            "{}.{}.{}.{}",
            r.gen_range(1..224),
            r.gen_range(0..256),
            r.gen_range(0..256),
            r.gen_range(0..256)
        ),
        Ipv6 => format!(
            "2001:db8:{:x}::{:x}",
            r.gen_range(0..0xffffu32),
            r.gen_range(1..0xffffu32)
        ),
        Email => {
            let mut local = label(r);
            if r.gen_bool(0.3) {
                local.push_str("+tag.x_y");
            }
            format!("{local}@{}", domain(r))
        }
        Md5 => hex(r, 32),
        Sha1 => hex(r, 40),
        Sha256 => hex(r, 64),
        Bitcoin => format!("bc1q{}", label(r)),
        Iban => format!("FR76{}", r.gen_range(10_000_000_000u64..99_999_999_999)),
        Phone => format!("+336{}", r.gen_range(10_000_000..99_999_999)),
        YaraRule => format!("{}.yar/{}", label(r), label(r).replace('-', "_")),
    }
}

/// Random-ish sets (the seed fixes them), with hostile values.
pub fn random_sets(seed: u64, n: usize) -> Vec<ShareSet> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let tlp = Tlp::ALL[r.gen_range(0..Tlp::ALL.len())];
            let mut items: Vec<Item> = Vec::new();
            for _ in 0..r.gen_range(0..40) {
                let kind = ItemKind::ALL[r.gen_range(0..ItemKind::ALL.len())];
                let v = value(&mut r, kind);
                if items.iter().any(|x| x.kind == kind && x.value == v) {
                    continue;
                }
                let first_ms = T0 - r.gen_range(0..400) * DAY;
                items.push(Item {
                    kind,
                    value: v,
                    first_ms,
                    last_ms: first_ms + r.gen_range(0..DAY),
                    sightings: r.gen_range(0..100_000),
                    jobs: r.gen_range(1..20),
                    marking: Tlp::ALL[r.gen_range(0..Tlp::ALL.len())],
                });
            }
            let yara = (0..r.gen_range(0..3))
                .map(|k| YaraSource {
                    name: format!("F{i:06}/r{k}.yar"),
                    text: format!(
                        "rule r{k} {{\n  strings:\n    $a = \"{}\"\n  condition:\n    $a\n}}\n",
                        label(&mut r)
                    ),
                })
                .collect();
            ShareSet {
                identity: lab(),
                tlp,
                title: format!("export {i} of seed {seed}: \"quoted\" \\ é"),
                created_ms: T0 + i as i64 * 1000,
                items,
                yara,
            }
        })
        .collect()
}
