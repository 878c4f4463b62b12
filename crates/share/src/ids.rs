//! Identifiers and timestamps: UUIDv5 (STIX cyber-observable ids),
//! deterministic UUIDs of the version-4 layout (every other id), and the
//! text forms of instants STIX and MISP want.

use sha1::Digest as _;

/// STIX 2.1's namespace for the UUIDv5 ids of cyber-observable objects.
pub const STIX_NAMESPACE: [u8; 16] = [
    0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x46, 0x6c, 0x9c, 0x01, 0xfe, 0xd2, 0x33, 0x15, 0xa9, 0xb7,
];

/// The latest instant either format can write: 9999-12-31T23:59:59.999Z.
pub const MAX_MS: i64 = 253_402_300_799_999;

fn text(b: [u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// RFC 4122 UUID version 5 (SHA-1 of namespace ‖ name), text form.
pub fn uuid5(namespace: &[u8; 16], name: &str) -> String {
    let mut h = sha1::Sha1::new();
    h.update(namespace);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    text(b)
}

/// A UUID with the version-4 layout (version nibble 4, variant 10) whose
/// bits are the first 16 bytes of SHA-256 over the parts, each preceded by
/// its length: the same parts always give the same id, distinct parts
/// (even ones holding NUL bytes) distinct ids.
pub fn derived(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"trawl-share v1");
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    text(b)
}

/// The lower-case text of a UUID given as 8-4-4-4-12 hex digits (either
/// case), `None` for anything else.
pub fn parse_uuid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    for (i, c) in b.iter().enumerate() {
        let dash = matches!(i, 8 | 13 | 18 | 23);
        if dash != (*c == b'-') || (!dash && !c.is_ascii_hexdigit()) {
            return None;
        }
    }
    Some(s.to_ascii_lowercase())
}

/// The UTC date and time of `ms` (Unix milliseconds), or `None` outside
/// 1970-01-01 ..= 9999-12-31.
fn parts(ms: i64) -> Option<(time::OffsetDateTime, i64)> {
    if !(0..=MAX_MS).contains(&ms) {
        return None;
    }
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000).ok()?;
    Some((t, ms % 1000))
}

/// `2026-12-07T10:00:00.000Z` (STIX timestamps, milliseconds).
pub fn stix_time(ms: i64) -> Option<String> {
    let (t, milli) = parts(ms)?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        milli
    ))
}

/// `2026-12-07T10:00:00.000000+00:00` (MISP's `first_seen`/`last_seen`).
pub fn misp_time(ms: i64) -> Option<String> {
    let (t, milli) = parts(ms)?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}000+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        milli
    ))
}

/// `2026-12-07` (MISP's event date).
pub fn date(ms: i64) -> Option<String> {
    let (t, _) = parts(ms)?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        t.year(),
        u8::from(t.month()),
        t.day()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from Python's `uuid.uuid5(uuid.UUID('00abedb4-…'), name)`
    /// and from the stix2 library's own ids.
    #[test]
    fn uuid5_matches_python() {
        assert_eq!(
            uuid5(&STIX_NAMESPACE, "{\"value\":\"example.com\"}"),
            "bedb4899-d24b-5401-bc86-8f6b4cc18ec7"
        );
        let file = format!("{{\"hashes\":{{\"SHA-256\":\"{}\"}}}}", "ab".repeat(32));
        assert_eq!(
            uuid5(&STIX_NAMESPACE, &file),
            "20432b06-75d2-54b6-80ef-6d923b5d925d"
        );
    }

    #[test]
    fn derived_ids_have_the_v4_layout_and_separate_their_parts() {
        let a = derived(&["x", "yz"]);
        assert_eq!(a, derived(&["x", "yz"]));
        assert_ne!(a, derived(&["xy", "z"]));
        assert_ne!(a, derived(&["x\0", "yz"]));
        assert!(parse_uuid(&a).is_some());
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn uuids_parse_in_their_text_form_only() {
        assert_eq!(
            parse_uuid("0F6B4D2C-5A8E-4B7E-9C3A-1B2C3D4E5F60").as_deref(),
            Some("0f6b4d2c-5a8e-4b7e-9c3a-1b2c3d4e5f60")
        );
        for bad in [
            "",
            "0f6b4d2c5a8e4b7e9c3a1b2c3d4e5f60",
            "0f6b4d2c-5a8e-4b7e-9c3a-1b2c3d4e5f6g",
            "0f6b4d2c-5a8e-4b7e-9c3a1-b2c3d4e5f60",
            "0f6b4d2c-5a8e-4b7e-9c3a-1b2c3d4e5f6é",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn instants_in_both_formats() {
        // 2026-12-07T10:00:00.042Z
        let ms = 1_796_637_600_042;
        assert_eq!(stix_time(ms).unwrap(), "2026-12-07T10:00:00.042Z");
        assert_eq!(misp_time(ms).unwrap(), "2026-12-07T10:00:00.042000+00:00");
        assert_eq!(date(ms).unwrap(), "2026-12-07");
        assert_eq!(stix_time(0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(stix_time(MAX_MS).unwrap(), "9999-12-31T23:59:59.999Z");
        for bad in [-1, MAX_MS + 1, i64::MIN, i64::MAX] {
            assert_eq!(stix_time(bad), None);
            assert_eq!(misp_time(bad), None);
            assert_eq!(date(bad), None);
        }
    }
}
