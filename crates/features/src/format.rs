//! bulk_extractor's feature-file conventions: escaping, the per-scanner
//! annotation column, forensic-path order. Used by the stop and alert
//! lists here and by the report writer.

use super::validate;
use std::cmp::Ordering;

/// Escapes bytes as bulk_extractor 2.x writes features and contexts
/// (`validateOrEscapeUTF8` with backslash escaping): bytes below 0x20 and
/// the backslash become `\ooo` (three octal digits), valid UTF-8 sequences
/// of two and three bytes are kept, every other byte is escaped — including
/// four-byte sequences, which bulk_extractor 2.x escapes as well.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut i = 0;
    let oct = |out: &mut String, b: u8| {
        out.push('\\');
        out.push(char::from(b'0' + (b >> 6)));
        out.push(char::from(b'0' + ((b >> 3) & 7)));
        out.push(char::from(b'0' + (b & 7)));
    };
    let cont = |b: u8| b & 0xc0 == 0x80;
    while i < bytes.len() {
        let c = bytes[i];
        if c < 0x80 {
            if c < 0x20 || c == b'\\' {
                oct(&mut out, c);
            } else {
                out.push(char::from(c));
            }
            i += 1;
            continue;
        }
        if c & 0xe0 == 0xc0 && i + 1 < bytes.len() && cont(bytes[i + 1]) {
            let u = (u32::from(c & 0x1f) << 6) | u32::from(bytes[i + 1] & 0x3f);
            if u >= 0x80
                && let Some(ch) = char::from_u32(u)
            {
                out.push(ch);
                i += 2;
                continue;
            }
        }
        if c & 0xf0 == 0xe0 && i + 2 < bytes.len() && cont(bytes[i + 1]) && cont(bytes[i + 2]) {
            let u = (u32::from(c & 0x0f) << 12)
                | (u32::from(bytes[i + 1] & 0x3f) << 6)
                | u32::from(bytes[i + 2] & 0x3f);
            if u >= 0x800
                && u != 0xfffe
                && u != 0xffff
                && let Some(ch) = char::from_u32(u)
            {
                out.push(ch);
                i += 3;
                continue;
            }
        }
        oct(&mut out, c);
        i += 1;
    }
    out
}

/// Scanners whose feature files carry a fourth column, and its name.
pub fn annotation_column(scanner: &str) -> Option<&'static str> {
    match base_scanner(scanner) {
        "ipv4" | "ipv6" => Some("class"),
        "ccn" => Some("brand"),
        "iban" => Some("country"),
        "phone" => Some("format"),
        "bitcoin" => Some("type"),
        _ => None,
    }
}

/// `email` for `email` and `email_stopped`.
pub fn base_scanner(scanner: &str) -> &str {
    scanner.strip_suffix("_stopped").unwrap_or(scanner)
}

/// The fourth column of a feature line: the class of an IP address
/// (`private`, `public`, `loopback`, ...), the brand of a card, the country
/// of an IBAN, the format of a phone number (`e164 +CC` or `fr-national`),
/// the type of a bitcoin address (`p2pkh`, `p2sh`, `p2wpkh`, `p2wsh`,
/// `p2tr`).
pub fn annotate(scanner: &str, feature: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(feature).ok()?;
    let digits: Vec<u8> = feature.iter().copied().filter(u8::is_ascii_digit).collect();
    match base_scanner(scanner) {
        "ipv4" => text
            .parse()
            .ok()
            .map(|ip| validate::ipv4_class(ip).to_string()),
        "ipv6" => text
            .parse()
            .ok()
            .map(|ip| validate::ipv6_class(ip).to_string()),
        "ccn" => validate::ccn_brand(&digits).map(str::to_string),
        "iban" => Some(text.get(..2)?.to_string()),
        "phone" => Some(if text.starts_with('+') {
            let cc = validate::e164_country_code(&digits).unwrap_or(0);
            format!("e164 +{}", std::str::from_utf8(digits.get(..cc)?).ok()?)
        } else {
            "fr-national".to_string()
        }),
        "bitcoin" => validate::bitcoin_base58(feature)
            .or_else(|| validate::bitcoin_bech32(feature))
            .map(str::to_string),
        _ => None,
    }
}

/// Orders forensic paths by their numeric components
/// (`100-GZIP-9` < `100-GZIP-10` < `101`).
pub fn path_cmp(a: &str, b: &str) -> Ordering {
    let mut x = a.split('-');
    let mut y = b.split('-');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    _ => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_bulk_extractor() {
        assert_eq!(escape(b"plain@x.com"), "plain@x.com");
        assert_eq!(escape(b"a\0b\n\\"), "a\\000b\\012\\134");
        assert_eq!(escape(b"\xff\xfep\x00"), "\\377\\376p\\000");
        assert_eq!(escape("é ą €".as_bytes()), "é ą €");
        assert_eq!(escape(b"\xc0\x80"), "\\300\\200", "overlong");
        assert_eq!(escape("😀".as_bytes()), "\\360\\237\\230\\200");
        assert_eq!(escape(b"\xed\xa0\x80"), "\\355\\240\\200", "surrogate");
        assert_eq!(escape(b"\x7f~"), "\x7f~");
    }

    #[test]
    fn annotations() {
        assert_eq!(annotate("ipv4", b"10.0.0.1").as_deref(), Some("private"));
        assert_eq!(
            annotate("ipv4_stopped", b"8.8.8.8").as_deref(),
            Some("public")
        );
        assert_eq!(annotate("ipv6", b"fe80::1").as_deref(), Some("link-local"));
        assert_eq!(
            annotate("ccn", b"4111 1111 1111 1111").as_deref(),
            Some("visa")
        );
        assert_eq!(annotate("iban", b"FR76 3000").as_deref(), Some("FR"));
        assert_eq!(
            annotate("phone", b"+33612345678").as_deref(),
            Some("e164 +33")
        );
        assert_eq!(
            annotate("phone", b"06 12 34 56 78").as_deref(),
            Some("fr-national")
        );
        assert_eq!(
            annotate("bitcoin", b"3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy").as_deref(),
            Some("p2sh")
        );
        assert_eq!(annotate("email", b"a@b.com"), None);
        assert_eq!(annotation_column("ccn_stopped"), Some("brand"));
    }

    #[test]
    fn path_order() {
        let mut v = vec![
            "100-GZIP-10",
            "101",
            "100-GZIP-9",
            "100",
            "100-GZIP-9-GZIP-1",
        ];
        v.sort_by(|a, b| path_cmp(a, b));
        assert_eq!(
            v,
            [
                "100",
                "100-GZIP-9",
                "100-GZIP-9-GZIP-1",
                "100-GZIP-10",
                "101"
            ]
        );
    }
}
