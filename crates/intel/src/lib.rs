//! The lab's memory, first layer: indicator kinds, their normalisation,
//! and the indicators of a job's results.
//!
//! Every completed job's results are reduced to **indicators**: e-mail
//! addresses, domains, URLs, IPv4/IPv6 addresses, bitcoin addresses,
//! IBANs, phone numbers, card numbers (only as a keyed hash, never in
//! clear), file hashes of carved and file-system files, and YARA rule
//! names. Each is normalised ([`normalize`]) so that the same indicator
//! found in two cases is the same string: the index, the cross-case links
//! and the alert flashes compare these strings.
//!
//! | kind | from | normalised |
//! |---|---|---|
//! | `email` | features `email` | lower case, `mailto:` and `<>` removed, one `@`, non-empty parts, domain rules on the domain |
//! | `domain` | features `domain`, hosts of URLs and e-mail addresses | lower case, trailing dot removed, ASCII letters, digits, `-`, `.`; an IP address becomes `ipv4`/`ipv6` |
//! | `url` | features `url` | scheme and host lower case, user info, fragment and default port removed; path and query kept |
//! | `ipv4` | features `ipv4`, URL hosts | dotted decimal without leading zeros |
//! | `ipv6` | features `ipv6` | RFC 5952 text; IPv4-mapped becomes `ipv4` |
//! | `bitcoin` | features `bitcoin` | base58check as found (it is case-sensitive), bech32 lower case; the checksum must hold |
//! | `iban` | features `iban` | blanks removed, upper case, mod-97 |
//! | `phone` | features `phone` | `+` and the digits of an E.164 number; a French national number `0…` becomes `+33…` |
//! | `ccn_hmac` | features `ccn` | HMAC-SHA256 of the digits under the lab's key, hex; the number itself is never kept |
//! | `md5`, `sha1`, `sha256` | carved files, file-system files | lower-case hex of the right length; the empty file's digests are dropped |
//! | `yara_rule` | YARA matches | `namespace/rule` |
//!
//! A value that does not normalise (a malformed feature) is not an
//! indicator; [`extract`] counts them.

pub mod flash;
pub mod index;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use trawl_features::validate;
use trawl_report::JobResults;

/// Kinds of indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Email,
    Domain,
    Url,
    Ipv4,
    Ipv6,
    Bitcoin,
    Iban,
    Phone,
    CcnHmac,
    Md5,
    Sha1,
    Sha256,
    YaraRule,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 13] = [
        Kind::Email,
        Kind::Domain,
        Kind::Url,
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::Bitcoin,
        Kind::Iban,
        Kind::Phone,
        Kind::CcnHmac,
        Kind::Md5,
        Kind::Sha1,
        Kind::Sha256,
        Kind::YaraRule,
    ];

    /// The kind's name (on the wire, in exports).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::Bitcoin => "bitcoin",
            Kind::Iban => "iban",
            Kind::Phone => "phone",
            Kind::CcnHmac => "ccn_hmac",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
            Kind::YaraRule => "yara_rule",
        }
    }

    /// The kind of a name.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A stable one-byte code, for keys in the store.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }
}

/// Why a value is not an indicator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("{kind}: empty value")]
    Empty { kind: &'static str },
    #[error("{kind}: {why}")]
    Invalid {
        kind: &'static str,
        why: &'static str,
    },
    #[error("card numbers are indexed only as keyed hashes: no lab key is configured")]
    NoKey,
}

fn invalid(kind: Kind, why: &'static str) -> Reject {
    Reject::Invalid {
        kind: kind.name(),
        why,
    }
}

/// Settings of the indicator extraction.
#[derive(Clone, Default)]
pub struct IntelConfig {
    /// Key of the card-number HMAC (the lab's secret); without it card
    /// numbers are not indexed.
    pub ccn_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for IntelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntelConfig")
            .field("ccn_key", &self.ccn_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// An indicator: its kind and normalised value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Indicator {
    pub kind: Kind,
    pub value: String,
}

/// The normalised form of `raw` as an indicator of `kind` (for
/// [`Kind::CcnHmac`], `raw` is the card number and the key is needed: use
/// [`normalize_with`]). A host that is an IP address is returned as one,
/// so the kind may change (see [`normalize_any`]).
///
/// # Errors
/// A value that is not a valid indicator of the kind.
pub fn normalize(kind: Kind, raw: &str) -> Result<String, Reject> {
    normalize_any(kind, raw, &IntelConfig::default()).map(|i| i.value)
}

/// As [`normalize`], with the configuration (the card-number key).
///
/// # Errors
/// As [`normalize`]; [`Reject::NoKey`] for a card number without a key.
pub fn normalize_with(kind: Kind, raw: &str, cfg: &IntelConfig) -> Result<String, Reject> {
    normalize_any(kind, raw, cfg).map(|i| i.value)
}

/// The indicator `raw` is, read as `kind`: a domain that is an IP address
/// comes back as `ipv4`/`ipv6`, an IPv4-mapped IPv6 address as `ipv4`.
///
/// # Errors
/// As [`normalize`].
pub fn normalize_any(kind: Kind, raw: &str, cfg: &IntelConfig) -> Result<Indicator, Reject> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(Reject::Empty { kind: kind.name() });
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(kind, "control character"));
    }
    let ok = |kind: Kind, value: String| Ok(Indicator { kind, value });
    match kind {
        Kind::Email => {
            let v = v.trim_start_matches('<').trim_end_matches('>');
            let v = match v.get(..7) {
                Some(p) if p.eq_ignore_ascii_case("mailto:") => &v[7..],
                _ => v,
            };
            let (local, domain) = v.split_once('@').ok_or(invalid(kind, "no @"))?;
            let local_ok = !local.is_empty()
                && local.len() <= 64
                && local
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&c));
            if !local_ok || domain.contains('@') {
                return Err(invalid(kind, "not an address"));
            }
            let d = host(domain).ok_or(invalid(kind, "bad domain"))?;
            ok(kind, format!("{}@{}", local.to_ascii_lowercase(), d))
        }
        Kind::Domain => {
            if let Some(ip) = ip_host(v) {
                return ip_indicator(ip);
            }
            ok(kind, host(v).ok_or(invalid(kind, "not a host name"))?)
        }
        Kind::Url => {
            let (scheme, rest) = v.split_once("://").ok_or(invalid(kind, "no scheme"))?;
            if scheme.is_empty()
                || !scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                return Err(invalid(kind, "bad scheme"));
            }
            let scheme = scheme.to_ascii_lowercase();
            let rest = rest.split('#').next().unwrap_or_default();
            let cut = rest.find(['/', '?']).unwrap_or(rest.len());
            let (auth, tail) = rest.split_at(cut);
            let hostport = auth.rsplit('@').next().unwrap_or_default();
            let (h, port) = split_port(hostport).ok_or(invalid(kind, "bad port"))?;
            let h = if let Some(ip) = ip_host(h) {
                match ip {
                    IpAddr::V4(a) => a.to_string(),
                    IpAddr::V6(a) => format!("[{a}]"),
                }
            } else {
                host(h).ok_or(invalid(kind, "bad host"))?
            };
            let default = matches!(
                (scheme.as_str(), port),
                ("http" | "ws", Some(80)) | ("https" | "wss", Some(443)) | ("ftp", Some(21))
            );
            let port = match port {
                Some(p) if !default => format!(":{p}"),
                _ => String::new(),
            };
            let tail = if tail.is_empty() { "/" } else { tail };
            ok(kind, format!("{scheme}://{h}{port}{tail}"))
        }
        Kind::Ipv4 => {
            let a: Ipv4Addr = v
                .parse()
                .map_err(|_| invalid(kind, "not an IPv4 address"))?;
            ok(kind, a.to_string())
        }
        Kind::Ipv6 => {
            let a: Ipv6Addr = v
                .parse()
                .map_err(|_| invalid(kind, "not an IPv6 address"))?;
            ip_indicator(IpAddr::V6(a))
        }
        Kind::Bitcoin => {
            if validate::bitcoin_base58(v.as_bytes()).is_some() {
                ok(kind, v.to_string())
            } else {
                let l = v.to_ascii_lowercase();
                validate::bitcoin_bech32(l.as_bytes()).ok_or(invalid(kind, "checksum"))?;
                ok(kind, l)
            }
        }
        Kind::Iban => {
            let c: String = v
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase();
            if !validate::iban_valid(c.as_bytes()) {
                return Err(invalid(kind, "mod 97"));
            }
            ok(kind, c)
        }
        Kind::Phone => {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            let e164 = if v.starts_with('+') {
                digits
            } else if let Some(rest) = digits.strip_prefix('0')
                && rest.len() == 9
            {
                format!("33{rest}")
            } else {
                return Err(invalid(kind, "neither E.164 nor a French national number"));
            };
            if !validate::e164_valid(e164.as_bytes()) {
                return Err(invalid(kind, "not E.164"));
            }
            ok(kind, format!("+{e164}"))
        }
        Kind::CcnHmac => {
            let digits: Vec<u8> = v.bytes().filter(u8::is_ascii_digit).collect();
            if !validate::ccn_valid(&digits) {
                return Err(invalid(kind, "not a card number"));
            }
            let key = cfg.ccn_key.as_deref().ok_or(Reject::NoKey)?;
            ok(kind, ccn_hmac(key, &digits))
        }
        Kind::Md5 | Kind::Sha1 | Kind::Sha256 => {
            let len = match kind {
                Kind::Md5 => 32,
                Kind::Sha1 => 40,
                _ => 64,
            };
            let l = v.to_ascii_lowercase();
            if l.len() != len || !l.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(invalid(kind, "not a digest"));
            }
            if EMPTY_DIGESTS.contains(&l.as_str()) {
                return Err(invalid(kind, "the empty file's digest"));
            }
            ok(kind, l)
        }
        Kind::YaraRule => {
            if v.chars().any(char::is_whitespace) {
                return Err(invalid(kind, "blank in a rule name"));
            }
            ok(kind, v.to_string())
        }
    }
}

/// Digests of the empty file (MD5, SHA-1, SHA-256): never indicators.
const EMPTY_DIGESTS: [&str; 3] = [
    "d41d8cd98f00b204e9800998ecf8427e",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
];

/// HMAC-SHA256 of a card number's digits under `key`, hex.
pub fn ccn_hmac(key: &[u8], digits: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;
    // HMAC takes keys of any length: this never fails
    let Ok(mut m) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
        return String::new();
    };
    m.update(b"trawl ccn v1\n");
    m.update(digits);
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A host name in its indexed form: lower case, no trailing dot, labels of
/// ASCII letters, digits and `-` (1 to 63 bytes, not starting or ending
/// with `-`), at most 253 bytes, at least two labels.
fn host(h: &str) -> Option<String> {
    let h = h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase();
    if h.is_empty() || h.len() > 253 {
        return None;
    }
    let mut labels = 0;
    for l in h.split('.') {
        let ok = (1..=63).contains(&l.len())
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-');
        if !ok {
            return None;
        }
        labels += 1;
    }
    (labels >= 2).then_some(h)
}

/// An IP address written as a host (`10.0.0.1`, `[::1]`, `::1`).
fn ip_host(h: &str) -> Option<IpAddr> {
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    h.parse().ok()
}

fn ip_indicator(ip: IpAddr) -> Result<Indicator, Reject> {
    Ok(match ip {
        IpAddr::V4(a) => Indicator {
            kind: Kind::Ipv4,
            value: a.to_string(),
        },
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Indicator {
                kind: Kind::Ipv4,
                value: v4.to_string(),
            },
            None => Indicator {
                kind: Kind::Ipv6,
                value: a.to_string(),
            },
        },
    })
}

/// `host[:port]` (`[v6]:port` too): the host and the port.
fn split_port(hp: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let h = &hp[..h.len() + 2];
        return match after.strip_prefix(':') {
            Some(p) => Some((h, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((h, None)),
            None => None,
        };
    }
    match hp.rsplit_once(':') {
        Some((h, p)) => Some((
            h,
            if p.is_empty() {
                None
            } else {
                Some(p.parse().ok()?)
            },
        )),
        None => Some((hp, None)),
    }
}

/// Where an indicator was seen in a job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sighting {
    /// How many times.
    pub count: u64,
    /// The lowest image offset (features, carved files); 0 for matches
    /// and files without one.
    pub first_offset: u64,
    /// What found it: feature recorders, `carved`, `files`, `yara`.
    pub sources: std::collections::BTreeSet<String>,
    /// A file digest a known-file set (NSRL and the like) names as known:
    /// kept, never linking.
    pub known: bool,
}

/// The indicators of one job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobIndicators {
    pub indicators: BTreeMap<Indicator, Sighting>,
    /// Values that did not normalise, per kind.
    pub rejected: BTreeMap<&'static str, u64>,
}

impl JobIndicators {
    fn add(&mut self, kind: Kind, raw: &str, offset: u64, source: &str, cfg: &IntelConfig) {
        match normalize_any(kind, raw, cfg) {
            Ok(ind) => {
                let s = self.indicators.entry(ind).or_default();
                s.first_offset = if s.count == 0 {
                    offset
                } else {
                    s.first_offset.min(offset)
                };
                s.count += 1;
                s.sources.insert(source.to_string());
            }
            Err(_) => *self.rejected.entry(kind.name()).or_default() += 1,
        }
    }
}

/// The indicators of a job's results: features (e-mail, domain, URL and
/// their hosts, IP, bitcoin, IBAN, phone, card numbers as keyed hashes),
/// the digests of carved and file-system files, YARA rule names. Features
/// on the stop list (`NAME_stopped`) are left out.
pub fn extract(r: &JobResults, cfg: &IntelConfig) -> JobIndicators {
    let mut out = JobIndicators::default();
    for f in &r.features {
        let Ok(text) = std::str::from_utf8(&f.feature) else {
            continue;
        };
        let kind = match f.scanner.as_str() {
            "email" => Kind::Email,
            "domain" => Kind::Domain,
            "url" => Kind::Url,
            "ipv4" => Kind::Ipv4,
            "ipv6" => Kind::Ipv6,
            "bitcoin" => Kind::Bitcoin,
            "iban" => Kind::Iban,
            "phone" => Kind::Phone,
            "ccn" => {
                if cfg.ccn_key.is_some() {
                    out.add(Kind::CcnHmac, text, f.offset, "ccn", cfg);
                }
                continue;
            }
            _ => continue,
        };
        out.add(kind, text, f.offset, &f.scanner, cfg);
        // the host of a URL, the domain of an address
        if kind == Kind::Url
            && let Ok(u) = normalize(Kind::Url, text)
            && let Some(rest) = u.split_once("://").map(|x| x.1)
        {
            let h = rest.split(['/', '?']).next().unwrap_or_default();
            let h = split_port(h).map_or(h, |x| x.0);
            out.add(Kind::Domain, h, f.offset, "url", cfg);
        }
        if kind == Kind::Email
            && let Some((_, d)) = text.rsplit_once('@')
        {
            out.add(Kind::Domain, d, f.offset, "email", cfg);
        }
    }
    for c in &r.carved {
        for (k, v) in [
            (Kind::Md5, &c.md5),
            (Kind::Sha1, &c.sha1),
            (Kind::Sha256, &c.sha256),
        ] {
            if !v.is_empty() {
                out.add(k, v, c.offset, "carved", cfg);
            }
        }
    }
    for f in &r.files {
        let known = f.known.as_deref() == Some("known");
        for (k, v) in [
            (Kind::Md5, &f.md5),
            (Kind::Sha1, &f.sha1),
            (Kind::Sha256, &f.sha256),
        ] {
            if let Some(v) = v {
                out.add(k, v, 0, "files", cfg);
                if known && let Ok(ind) = normalize_any(k, v, cfg) {
                    out.indicators.entry(ind).or_default().known = true;
                }
            }
        }
    }
    for m in r.yara.iter().filter(|m| !m.is_shard_record()) {
        let name = if m.namespace.is_empty() || m.namespace == "default" {
            m.rule.clone()
        } else {
            format!("{}/{}", m.namespace, m.rule)
        };
        out.add(Kind::YaraRule, &name, m.target_offset, "yara", cfg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(kind: Kind, v: &str) -> Result<String, Reject> {
        normalize(kind, v)
    }

    #[test]
    fn each_kind_normalises() {
        assert_eq!(
            n(Kind::Email, " <Bob.Smith@Example.COM.> ").unwrap(),
            "bob.smith@example.com"
        );
        assert_eq!(n(Kind::Email, "mailto:a@b.fr").unwrap(), "a@b.fr");
        assert!(n(Kind::Email, "a@@b.fr").is_err());
        assert!(n(Kind::Email, "@b.fr").is_err());
        assert_eq!(
            n(Kind::Domain, "WWW.Example.org.").unwrap(),
            "www.example.org"
        );
        assert!(n(Kind::Domain, "localhost").is_err());
        assert!(n(Kind::Domain, "-bad.example.org").is_err());
        let ip = normalize_any(Kind::Domain, "192.168.1.1", &IntelConfig::default()).unwrap();
        assert_eq!((ip.kind, ip.value.as_str()), (Kind::Ipv4, "192.168.1.1"));
        assert_eq!(
            n(
                Kind::Url,
                "HTTPS://user:pw@WWW.Example.COM:443/a/B?q=1#frag"
            )
            .unwrap(),
            "https://www.example.com/a/B?q=1"
        );
        assert_eq!(
            n(Kind::Url, "http://x.example.com:8080").unwrap(),
            "http://x.example.com:8080/"
        );
        assert_eq!(n(Kind::Url, "http://[::1]:80/x").unwrap(), "http://[::1]/x");
        assert!(n(Kind::Url, "http://x.example.com:99999/").is_err());
        assert_eq!(n(Kind::Ipv4, "10.1.2.3").unwrap(), "10.1.2.3");
        assert!(n(Kind::Ipv4, "10.01.2.3").is_err());
        assert_eq!(n(Kind::Ipv6, "FE80:0:0:0:0:0:0:1").unwrap(), "fe80::1");
        let m = normalize_any(Kind::Ipv6, "::ffff:10.0.0.1", &IntelConfig::default()).unwrap();
        assert_eq!((m.kind, m.value.as_str()), (Kind::Ipv4, "10.0.0.1"));
        assert_eq!(
            n(Kind::Bitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa").unwrap(),
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
        );
        assert!(n(Kind::Bitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb").is_err());
        assert_eq!(
            n(Kind::Bitcoin, "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4").unwrap(),
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
        );
        assert_eq!(
            n(Kind::Iban, "fr14 2004 1010 0505 0001 3M02 606").unwrap(),
            "FR1420041010050500013M02606"
        );
        assert!(n(Kind::Iban, "FR14 2004 1010 0505 0001 3M02 607").is_err());
        assert_eq!(n(Kind::Phone, "06 12 34 56 78").unwrap(), "+33612345678");
        assert_eq!(n(Kind::Phone, "+1 (212) 555-0123").unwrap(), "+12125550123");
        assert!(n(Kind::Phone, "12345").is_err());
        assert_eq!(
            n(Kind::Md5, "D41D8CD98F00B204E9800998ECF8427F").unwrap(),
            "d41d8cd98f00b204e9800998ecf8427f"
        );
        assert!(
            n(Kind::Md5, "d41d8cd98f00b204e9800998ecf8427e").is_err(),
            "empty file"
        );
        assert!(n(Kind::Sha1, "abc").is_err());
        assert_eq!(
            n(Kind::YaraRule, "apt/Evil_Loader").unwrap(),
            "apt/Evil_Loader"
        );
        assert!(n(Kind::Email, "").is_err());
        assert!(n(Kind::Domain, "a\u{0}.example.com").is_err());
    }

    #[test]
    fn card_numbers_only_as_keyed_hashes() {
        assert_eq!(
            normalize(Kind::CcnHmac, "4111 1111 1111 1111"),
            Err(Reject::NoKey)
        );
        let a = IntelConfig {
            ccn_key: Some(b"lab key A".to_vec()),
        };
        let b = IntelConfig {
            ccn_key: Some(b"lab key B".to_vec()),
        };
        let ha = normalize_with(Kind::CcnHmac, "4111-1111-1111-1111", &a).unwrap();
        assert_eq!(
            ha,
            normalize_with(Kind::CcnHmac, "4111111111111111", &a).unwrap()
        );
        assert_ne!(
            ha,
            normalize_with(Kind::CcnHmac, "4111111111111111", &b).unwrap()
        );
        assert_eq!(ha.len(), 64);
        assert!(!ha.contains("4111"));
        assert!(
            normalize_with(Kind::CcnHmac, "4111111111111112", &a).is_err(),
            "Luhn"
        );
        assert!(
            !format!("{a:?}").contains("lab key"),
            "the key is never printed"
        );
    }

    #[test]
    fn a_jobs_indicators() {
        use trawl_core::{CarvedFile, Feature, YaraMatch};
        let feat = |scanner: &str, offset: u64, text: &str| Feature {
            scanner: scanner.into(),
            offset,
            path: offset.to_string(),
            feature: text.as_bytes().to_vec(),
            context: Vec::new(),
            utf16: false,
        };
        let r = JobResults {
            features: vec![
                feat("email", 900, "Alice@Example.ORG"),
                feat("email", 100, "alice@example.org"),
                feat("url", 200, "http://WWW.Bad.example.net/x?y=1"),
                feat("domain", 210, "www.bad.example.net"),
                feat("ipv4", 300, "203.0.113.9"),
                feat("ccn", 400, "4111 1111 1111 1111"),
                feat("email_stopped", 500, "noreply@example.com"),
                feat("phone", 600, "12345"),
            ],
            carved: vec![CarvedFile {
                offset: 4096,
                length: 1,
                file_type: "jpeg".into(),
                extension: "jpg".into(),
                validated: true,
                note: String::new(),
                md5: "0cc175b9c0f1b6a831c399e269772661".into(),
                sha1: String::new(),
                sha256: String::new(),
                byte_runs: Vec::new(),
            }],
            yara: vec![
                YaraMatch {
                    target: "image".into(),
                    target_offset: 0,
                    rule: "Evil".into(),
                    namespace: "apt".into(),
                    tags: Vec::new(),
                    metadata_json: "{}".into(),
                    strings: Vec::new(),
                },
                YaraMatch {
                    target: "shard0".into(),
                    target_offset: 0,
                    rule: "Partial".into(),
                    namespace: "apt".into(),
                    tags: Vec::new(),
                    metadata_json: "{}".into(),
                    strings: Vec::new(),
                },
            ],
            ..Default::default()
        };
        let cfg = IntelConfig {
            ccn_key: Some(b"key".to_vec()),
        };
        let got = extract(&r, &cfg);
        let get = |k: Kind, v: &str| {
            got.indicators.get(&Indicator {
                kind: k,
                value: v.into(),
            })
        };
        let alice = get(Kind::Email, "alice@example.org").unwrap();
        assert_eq!((alice.count, alice.first_offset), (2, 100));
        let d = get(Kind::Domain, "www.bad.example.net").unwrap();
        assert_eq!(d.count, 2);
        assert_eq!(
            d.sources.iter().map(String::as_str).collect::<Vec<_>>(),
            ["domain", "url"]
        );
        assert!(get(Kind::Domain, "example.org").is_some());
        assert!(get(Kind::Url, "http://www.bad.example.net/x?y=1").is_some());
        assert!(get(Kind::Ipv4, "203.0.113.9").is_some());
        assert!(get(Kind::Md5, "0cc175b9c0f1b6a831c399e269772661").is_some());
        assert!(get(Kind::YaraRule, "apt/Evil").is_some());
        assert!(
            get(Kind::YaraRule, "apt/Partial").is_none(),
            "a shard's partial record"
        );
        let ccn: Vec<_> = got
            .indicators
            .keys()
            .filter(|i| i.kind == Kind::CcnHmac)
            .collect();
        assert_eq!(ccn.len(), 1);
        assert!(!ccn[0].value.contains("4111"));
        assert!(
            got.indicators.keys().all(|i| !i.value.contains("noreply")),
            "stop list"
        );
        assert_eq!(got.rejected.get("phone"), Some(&1));
        // without a key, no card number at all
        let none = extract(&r, &IntelConfig::default());
        assert!(none.indicators.keys().all(|i| i.kind != Kind::CcnHmac));
    }

    #[test]
    fn kinds_round_trip_their_names_and_codes() {
        let mut codes = std::collections::BTreeSet::new();
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Some(k));
            assert!(codes.insert(k.code()));
        }
    }

    /// Values that look like indicators of every kind, and noise.
    fn raw() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[ -~]{0,80}",
            "<?(mailto:)?[A-Za-z0-9._%+-]{1,12}@[A-Za-z0-9-]{1,10}(\\.[A-Za-z0-9-]{1,8}){1,3}\\.?>?",
            "(HTTP|http|https|ftp|WS)://([a-z]{1,5}@)?[A-Za-z0-9-]{1,10}(\\.[A-Za-z0-9-]{1,8}){1,3}(:[0-9]{1,5})?(/[!-~]{0,20})?(#[a-z]{0,5})?",
            "(HTTP|https)://(\\[[0-9a-fA-F:]{2,20}\\]|[0-9]{1,3}(\\.[0-9]{1,3}){3})(:[0-9]{1,5})?/[a-z]{0,5}",
            "[0-9]{1,3}(\\.[0-9]{1,3}){3}",
            "[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}",
            "::ffff:[0-9]{1,3}(\\.[0-9]{1,3}){3}",
            "[+0][0-9 ().-]{6,18}",
            "[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}",
            "[A-Za-z]{2}[0-9]{2}( ?[A-Z0-9]{4}){3,7}",
        ]
    }

    proptest::proptest! {
        #[test]
        fn normalising_is_idempotent_and_clean(raw in raw(), k in 0usize..13) {
            let kind = Kind::ALL[k];
            let cfg = IntelConfig { ccn_key: Some(b"k".to_vec()) };
            if let Ok(i) = normalize_any(kind, &raw, &cfg) {
                proptest::prop_assert!(!i.value.chars().any(char::is_control));
                if i.kind != Kind::CcnHmac {
                    let again = normalize_any(i.kind, &i.value, &cfg).unwrap();
                    proptest::prop_assert_eq!(again, i);
                }
            }
        }
    }
}
