//! Validators: check digits and checksums of the structured features, and
//! the classes noted next to them in the feature files.

use sha2::{Digest, Sha256};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Luhn check over ASCII digits (non-digits make it fail).
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, &c) in digits.iter().rev().enumerate() {
        if !c.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The card brand for a Luhn-checked number of ASCII digits, from its
/// issuer prefix and length; `None` when no brand issues such numbers.
pub fn ccn_brand(d: &[u8]) -> Option<&'static str> {
    let n = d.len();
    if !(12..=19).contains(&n) || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let p = |k: usize| -> u32 {
        d[..k]
            .iter()
            .fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'))
    };
    let (p1, p2, p3, p4, p6) = (p(1), p(2), p(3), p(4), p(6));
    let brand = if p1 == 4 && matches!(n, 13 | 16 | 19) {
        "visa"
    } else if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16 {
        "mastercard"
    } else if (p2 == 34 || p2 == 37) && n == 15 {
        "amex"
    } else if (p4 == 6011
        || (644..=649).contains(&p3)
        || p2 == 65
        || (622126..=622925).contains(&p6))
        && (16..=19).contains(&n)
    {
        "discover"
    } else if (3528..=3589).contains(&p4) && (16..=19).contains(&n) {
        "jcb"
    } else if ((300..=305).contains(&p3) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39)
        && (14..=19).contains(&n)
    {
        "diners"
    } else if (p4 == 5610 || (560221..=560225).contains(&p6)) && n == 16 {
        "bankcard"
    } else if (2200..=2204).contains(&p4) && (16..=19).contains(&n) {
        "mir"
    } else if p2 == 62 && (16..=19).contains(&n) {
        "unionpay"
    } else if (matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761..=6763)
        || p2 == 50
        || (56..=58).contains(&p2))
        && (12..=19).contains(&n)
    {
        "maestro"
    } else {
        return None;
    };
    Some(brand)
}

/// A plausible payment card number: Luhn-valid, issued by a known brand
/// with that length, and not one digit repeated.
pub fn ccn_valid(d: &[u8]) -> bool {
    d.len() >= 13 && luhn(d) && ccn_brand(d).is_some() && d.iter().any(|&c| c != d[0])
}

/// IBAN length per country (ISO 13616 registry, including the partner
/// countries that publish IBANs).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AO", 25),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BF", 28),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BJ", 28),
    (b"BR", 29),
    (b"BY", 28),
    (b"CF", 27),
    (b"CG", 27),
    (b"CH", 21),
    (b"CI", 28),
    (b"CM", 27),
    (b"CR", 22),
    (b"CV", 25),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"DZ", 26),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GA", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GQ", 27),
    (b"GR", 27),
    (b"GT", 28),
    (b"GW", 25),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IR", 26),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KM", 27),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MA", 28),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MG", 27),
    (b"MK", 19),
    (b"ML", 28),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"MZ", 25),
    (b"NE", 28),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SN", 28),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TD", 27),
    (b"TG", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// The IBAN length of a country code, `None` for countries without IBANs.
pub fn iban_length(cc: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .binary_search_by(|(c, _)| c.as_slice().cmp(cc))
        .ok()
        .map(|i| IBAN_LENGTHS[i].1)
}

/// ISO 7064 mod-97-10 check of a compact IBAN (upper-case letters and
/// digits): country code and check digits moved to the end, letters as
/// 10..35, remainder 1.
pub fn iban_mod97(compact: &[u8]) -> bool {
    if compact.len() < 5 {
        return false;
    }
    let mut r = 0u32;
    for &c in compact[4..].iter().chain(&compact[..4]) {
        r = match c {
            b'0'..=b'9' => (r * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (r * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    r == 1
}

/// A complete IBAN check: known country, its length, check digits 02..98,
/// mod-97.
pub fn iban_valid(compact: &[u8]) -> bool {
    compact.len() >= 15
        && iban_length(&compact[..2]) == Some(compact.len())
        && compact[2].is_ascii_digit()
        && compact[3].is_ascii_digit()
        && !matches!(&compact[2..4], b"00" | b"01" | b"99")
        && iban_mod97(compact)
}

const B58_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn b58_value(c: u8) -> Option<u8> {
    B58_ALPHABET.iter().position(|&x| x == c).map(|p| p as u8)
}

/// Decodes base58 into exactly `N` bytes (leading '1's are zero bytes).
fn base58_decode<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    for &c in s {
        let mut carry = u32::from(b58_value(c)?);
        for b in out.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = carry as u8;
            carry >>= 8;
        }
        if carry != 0 {
            return None;
        }
    }
    let ones = s.iter().take_while(|&&c| c == b'1').count();
    // canonical encoding: one leading '1' per leading zero byte
    (out.iter().take_while(|&&b| b == 0).count() == ones).then_some(out)
}

/// The address type of a base58check bitcoin address (mainnet P2PKH `1…`,
/// P2SH `3…`), `None` when the checksum or version does not verify.
pub fn bitcoin_base58(s: &[u8]) -> Option<&'static str> {
    if !(26..=35).contains(&s.len()) {
        return None;
    }
    let raw: [u8; 25] = base58_decode(s)?;
    let kind = match raw[0] {
        0x00 => "p2pkh",
        0x05 => "p2sh",
        _ => return None,
    };
    let h = Sha256::digest(Sha256::digest(&raw[..21]));
    (h[..4] == raw[21..]).then_some(kind)
}

const BECH32_CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn bech32_polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut chk = 1u32;
    for v in values {
        let b = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (b >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// Whether `c` is a bech32 data character (either case).
pub fn is_bech32_char(c: u8) -> bool {
    BECH32_CHARSET.contains(&c.to_ascii_lowercase())
}

/// The type of a segwit address (`bc1…`, bech32 for version 0, bech32m for
/// 1..16, program length rules of BIP 141/350); `None` when invalid.
pub fn bitcoin_bech32(s: &[u8]) -> Option<&'static str> {
    if !(14..=90).contains(&s.len()) {
        return None;
    }
    let lower = s.iter().any(u8::is_ascii_lowercase);
    let upper = s.iter().any(u8::is_ascii_uppercase);
    if lower && upper {
        return None;
    }
    let s: Vec<u8> = s.iter().map(u8::to_ascii_lowercase).collect();
    let sep = s.iter().rposition(|&c| c == b'1')?;
    let (hrp, data) = (&s[..sep], &s[sep + 1..]);
    if hrp != b"bc" || data.len() < 7 {
        return None;
    }
    let mut vals = Vec::with_capacity(data.len());
    for &c in data {
        vals.push(BECH32_CHARSET.iter().position(|&x| x == c)? as u8);
    }
    let expand = hrp
        .iter()
        .map(|c| c >> 5)
        .chain(std::iter::once(0))
        .chain(hrp.iter().map(|c| c & 31));
    let pm = bech32_polymod(expand.chain(vals.iter().copied()));
    let version = vals[0];
    let konst = if version == 0 { 1 } else { 0x2bc8_30a3 };
    if pm != konst || version > 16 {
        return None;
    }
    // 5-bit groups to bytes, no padding
    let payload = &vals[1..vals.len() - 6];
    let (mut acc, mut bits, mut prog) = (0u32, 0u32, Vec::new());
    for &v in payload {
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            prog.push((acc >> bits) as u8);
        }
    }
    if bits >= 5 || (acc & ((1 << bits) - 1)) != 0 {
        return None;
    }
    match (version, prog.len()) {
        (0, 20) => Some("p2wpkh"),
        (0, 32) => Some("p2wsh"),
        (0, _) => None,
        (1, 32) => Some("p2tr"),
        (_, 2..=40) => Some("segwit"),
        _ => None,
    }
}

/// Class of an IPv4 address.
pub fn ipv4_class(ip: Ipv4Addr) -> &'static str {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => "this-network",
        (10, _, _) => "private",
        (100, 64..=127, _) => "shared",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (172, 16..=31, _) => "private",
        (192, 0, 0) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 168, _) => "private",
        (198, 18..=19, _) => "benchmark",
        (224..=239, _, _) => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => "public",
    }
}

/// Class of an IPv6 address.
pub fn ipv6_class(ip: Ipv6Addr) -> &'static str {
    let s = ip.segments();
    if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if s[..5] == [0; 5] && s[5] == 0xffff {
        "ipv4-mapped"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "private"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation"
    } else if s[0] == 0x0064 && s[1] == 0xff9b {
        "nat64"
    } else if s[0] == 0x2002 {
        "6to4"
    } else if s[0] == 0x2001 && s[1] == 0 {
        "teredo"
    } else if s[0] & 0xe000 == 0x2000 {
        "public"
    } else {
        "reserved"
    }
}

/// Length of the E.164 country code at the start of `d` (digits), `None`
/// when no country uses that prefix.
pub fn e164_country_code(d: &[u8]) -> Option<usize> {
    if d.len() < 3 {
        return None;
    }
    let n = |k: usize| {
        d[..k]
            .iter()
            .fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'))
    };
    match d[0] {
        b'1' | b'7' => return Some(1),
        b'0' => return None,
        _ => {}
    }
    const TWO: &[u32] = &[
        20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55,
        56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
    ];
    const THREE_PREFIX: &[u32] = &[
        21, 22, 23, 24, 25, 26, 29, 35, 37, 38, 42, 50, 59, 67, 68, 69, 80, 85, 87, 88, 96, 97, 99,
    ];
    if TWO.contains(&n(2)) {
        Some(2)
    } else if THREE_PREFIX.contains(&n(2)) {
        Some(3)
    } else {
        None
    }
}

/// Whether the digits after `+` form a plausible E.164 number: a known
/// country code and a length its numbering plan allows.
pub fn e164_valid(d: &[u8]) -> bool {
    if !(8..=15).contains(&d.len()) {
        return false;
    }
    let Some(cc) = e164_country_code(d) else {
        return false;
    };
    let nat = &d[cc..];
    match &d[..cc] {
        // NANP: NXX NXX XXXX
        b"1" => nat.len() == 10 && nat[0] >= b'2' && nat[3] >= b'2',
        b"33" => nat.len() == 9 && nat[0] != b'0',
        b"44" => (9..=10).contains(&nat.len()) && nat[0] != b'0',
        b"49" => (6..=13).contains(&nat.len()) && nat[0] != b'0',
        b"7" => nat.len() == 10,
        _ => (6..=13).contains(&nat.len()) && nat[0] != b'0',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_numbers() {
        for n in [
            "4111111111111111",
            "378282246310005",
            "371449635398431",
            "5610591081018250",
            "6011000990139424",
            "3566002020360505",
            "5555555555554444",
            "79927398713",
        ] {
            assert!(luhn(n.as_bytes()), "{n}");
        }
        for n in [
            "4111111111111112",
            "378282246310006",
            "1234567890123456",
            "",
        ] {
            assert!(!luhn(n.as_bytes()), "{n}");
        }
        assert!(!luhn(b"4111-1111"));
    }

    #[test]
    fn ccn_brands() {
        assert_eq!(ccn_brand(b"4111111111111111"), Some("visa"));
        assert_eq!(ccn_brand(b"378282246310005"), Some("amex"));
        assert_eq!(ccn_brand(b"5555555555554444"), Some("mastercard"));
        assert_eq!(ccn_brand(b"2221000000000009"), Some("mastercard"));
        assert_eq!(ccn_brand(b"6011000990139424"), Some("discover"));
        assert_eq!(ccn_brand(b"3566002020360505"), Some("jcb"));
        assert_eq!(ccn_brand(b"30569309025904"), Some("diners"));
        assert_eq!(ccn_brand(b"5610591081018250"), Some("bankcard"));
        assert_eq!(ccn_brand(b"6200000000000005"), Some("unionpay"));
        assert_eq!(ccn_brand(b"9111111111111111"), None);
        assert_eq!(ccn_brand(b"37828224631000"), None, "amex is 15 digits");
        assert!(ccn_valid(b"4111111111111111"));
        assert!(!ccn_valid(b"0000000000000000"));
        assert!(!ccn_valid(b"4111111111111112"));
    }

    #[test]
    fn iban_mod97_examples() {
        for s in [
            "GB82WEST12345698765432",
            "DE89370400440532013000",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "BE68539007547034",
            "NO9386011117947",
            "MT84MALT011000012345MTLCAST001S",
            "LC55HEMM000100010012001200023015",
            "RU0204452560040702810412345678901",
        ] {
            assert!(iban_valid(s.as_bytes()), "{s}");
        }
        assert!(!iban_valid(b"GB82WEST12345698765433"));
        assert!(!iban_valid(b"GB82WEST1234569876543"), "length");
        assert!(!iban_valid(b"XX82WEST12345698765432"), "country");
        assert!(!iban_valid(b"gb82WEST12345698765432"));
        assert_eq!(iban_length(b"FR"), Some(27));
        assert_eq!(iban_length(b"US"), None);
        // the table is sorted for the binary search
        assert!(IBAN_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn base58check_examples() {
        assert_eq!(
            bitcoin_base58(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
            Some("p2pkh")
        );
        assert_eq!(
            bitcoin_base58(b"17NdbrSGoUotzeGCcMMCqnFkEvLymoou9j"),
            Some("p2pkh")
        );
        assert_eq!(
            bitcoin_base58(b"1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62i"),
            Some("p2pkh")
        );
        assert_eq!(
            bitcoin_base58(b"3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
            Some("p2sh")
        );
        assert_eq!(bitcoin_base58(b"1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62j"), None);
        assert_eq!(bitcoin_base58(b"1111111114oLvT2"), None);
        assert_eq!(bitcoin_base58(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7Divf0a"), None);
        // bitcoin.txt in bulk_extractor's test data marks this one invalid
        assert_eq!(bitcoin_base58(b"1AGNa15ZQXAZUgFlqJ2i7Z2DPU2J6hW62i"), None);
    }

    #[test]
    fn bech32_examples() {
        assert_eq!(
            bitcoin_bech32(b"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            Some("p2wpkh")
        );
        assert_eq!(
            bitcoin_bech32(b"BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"),
            Some("p2wpkh")
        );
        assert_eq!(
            bitcoin_bech32(b"bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"),
            Some("p2wsh")
        );
        assert_eq!(
            bitcoin_bech32(b"bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"),
            Some("p2tr")
        );
        // bech32 checksum on a v1 program (must be bech32m): invalid
        assert_eq!(
            bitcoin_bech32(
                b"bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx"
            ),
            None
        );
        assert_eq!(
            bitcoin_bech32(b"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"),
            None
        );
        assert_eq!(
            bitcoin_bech32(b"bc1Qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            None
        );
        assert_eq!(
            bitcoin_bech32(b"tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"),
            None
        );
    }

    #[test]
    fn ip_classes() {
        let c4 = |s: &str| ipv4_class(s.parse().unwrap());
        assert_eq!(c4("10.1.2.3"), "private");
        assert_eq!(c4("172.16.0.1"), "private");
        assert_eq!(c4("172.32.0.1"), "public");
        assert_eq!(c4("192.168.1.1"), "private");
        assert_eq!(c4("127.0.0.1"), "loopback");
        assert_eq!(c4("169.254.3.4"), "link-local");
        assert_eq!(c4("100.64.0.1"), "shared");
        assert_eq!(c4("224.0.0.251"), "multicast");
        assert_eq!(c4("255.255.255.255"), "broadcast");
        assert_eq!(c4("198.51.100.7"), "documentation");
        assert_eq!(c4("8.8.8.8"), "public");
        let c6 = |s: &str| ipv6_class(s.parse().unwrap());
        assert_eq!(c6("::1"), "loopback");
        assert_eq!(c6("fe80::1"), "link-local");
        assert_eq!(c6("fd12:3456::1"), "private");
        assert_eq!(c6("2001:db8::1"), "documentation");
        assert_eq!(c6("ff02::1"), "multicast");
        assert_eq!(c6("2a01:4f8::1"), "public");
        assert_eq!(c6("::ffff:10.0.0.1"), "ipv4-mapped");
    }

    #[test]
    fn e164() {
        assert!(e164_valid(b"33612345678"));
        assert!(e164_valid(b"14155550123"));
        assert!(e164_valid(b"447700900123"));
        assert!(!e164_valid(b"14150550123"), "NANP exchange starts 2-9");
        assert!(!e164_valid(b"3361234567"), "FR is 9 national digits");
        assert!(!e164_valid(b"0612345678"));
        assert!(!e164_valid(b"1234567890123456"));
    }
}
