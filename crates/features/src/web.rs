//! E-mail addresses, URLs and domain names.
//!
//! Each scanner reports the features whose first byte lies in `own`; every
//! decision reads a bounded window around the candidate (at most a few
//! hundred bytes), so the result does not depend on where a buffer starts
//! as long as the caller gives [`super::CTX`] bytes of context on each side.

use super::text::{ALPHA, DIGIT, EDOMAIN, HOST, LOCAL, URLC, at, is};
use super::{Hit, Kind};
use memchr::memmem;
use std::ops::Range;

const ALNUM: u16 = ALPHA | DIGIT;

/// Top-level domains accepted at the end of an e-mail address or a host
/// name: every TLD of the Public Suffix List's ICANN section, IDN ones in
/// punycode (`xn--p1ai`). Lower case, sorted.
use super::tlds::ALL as TLDS;

/// Longest TLD, in bytes.
const MAX_TLD: usize = 24;
/// Longest local part of an e-mail address (RFC 5321).
pub const MAX_LOCAL: usize = 64;
/// Longest domain name (RFC 1035, without the final dot).
pub const MAX_DOMAIN: usize = 253;

/// Generic TLDs: a bare `name.tld` is taken as a domain. Country-code TLDs
/// need three labels (`www.example.fr`) to tell them from file names
/// (`setup.py`, `notes.md`).
const GENERIC: &[&str] = &[
    "aero", "arpa", "asia", "biz", "blog", "cat", "cloud", "club", "com", "coop", "edu", "email",
    "gov", "info", "int", "io", "jobs", "live", "mil", "mobi", "museum", "name", "net", "online",
    "org", "pro", "shop", "site", "store", "tech", "tel", "top", "travel", "xyz",
];

fn lower<'a>(s: &[u8], buf: &'a mut [u8; MAX_TLD]) -> Option<&'a str> {
    if s.len() > MAX_TLD {
        return None;
    }
    for (d, c) in buf.iter_mut().zip(s) {
        *d = c.to_ascii_lowercase();
    }
    std::str::from_utf8(&buf[..s.len()]).ok()
}

/// Whether `s` (letters, any case) is an accepted TLD.
pub fn is_tld(s: &[u8]) -> bool {
    let mut b = [0u8; MAX_TLD];
    lower(s, &mut b).is_some_and(|t| TLDS.binary_search(&t).is_ok())
}

fn is_generic_tld(s: &[u8]) -> bool {
    let mut b = [0u8; MAX_TLD];
    lower(s, &mut b).is_some_and(|t| GENERIC.binary_search(&t).is_ok())
}

/// E-mail addresses (bulk_extractor's `EMAIL` expression:
/// `ALNUM[a-zA-Z0-9._%\-+]{1,62}ALNUM@ALNUM[a-zA-Z0-9._%\-]+\.TLD`
/// followed by a non-letter, rejected when it contains `..`; the local part
/// at most 64 bytes and the domain at most 253, as RFC 5321 allows; the TLD
/// any of the Public Suffix List's), and their domain part as a `domain`
/// feature.
pub fn email(buf: &[u8], own: Range<usize>, emails: bool, domains: bool, out: &mut Vec<Hit>) {
    // '@' of an address starting in own: at most 65 bytes after its start;
    // of a domain starting in own: just before it.
    let lo = own.start.saturating_sub(1);
    let hi = (own.end + MAX_LOCAL + 1).min(buf.len());
    if lo >= hi {
        return;
    }
    for rel in memchr::memchr_iter(b'@', &buf[lo..hi]) {
        let a = lo + rel;
        let Some((s, e)) = email_at(buf, a) else {
            continue;
        };
        if emails && own.contains(&s) {
            out.push(Hit::new(Kind::Email, s, e));
        }
        if domains && own.contains(&(a + 1)) {
            out.push(Hit::new(Kind::Domain, a + 1, e));
        }
    }
}

/// The address around the '@' at `a`, as `[start, end)`.
pub fn email_at(buf: &[u8], a: usize) -> Option<(usize, usize)> {
    if a < 3 || !is(buf[a - 1], ALNUM) || !at(buf, a + 1, ALNUM) {
        return None;
    }
    // local part: the whole run of local-part bytes before '@', from its
    // first ALNUM; longer than 64 bytes, it is no address
    let min_r = a.saturating_sub(MAX_LOCAL + 64);
    let mut r = a - 1;
    while r > min_r && is(buf[r - 1], LOCAL) {
        r -= 1;
    }
    let s = (r..a - 2).find(|&i| is(buf[i], ALNUM))?;
    if a - s > MAX_LOCAL {
        return None;
    }
    // domain: the longest ALNUM X+ '.' TLD (at most 253 bytes) followed by
    // a non-letter
    let d0 = a + 1;
    let dmax = (d0 + MAX_DOMAIN + 1).min(buf.len());
    let mut e = d0;
    while e < dmax && is(buf[e], EDOMAIN) {
        e += 1;
    }
    let mut p = e;
    while p > d0 + 2 {
        p -= 1;
        if buf[p] != b'.' {
            continue;
        }
        let (q, whole, stray) = tld_after(buf, p);
        if (whole || stray) && q - d0 <= MAX_DOMAIN {
            let q = if stray { q - 1 } else { q };
            if memmem::find(&buf[s..q], b"..").is_some() {
                return None;
            }
            return Some((s, q));
        }
    }
    None
}

/// The TLD after the dot at `p`: its end, whether it is a whole TLD
/// (followed by a non-letter), and whether it is one only without a last
/// stray letter ending the text (a UTF-16 run that ends with a binary field
/// read as a character, as bulk_extractor accepts it).
fn tld_after(buf: &[u8], p: usize) -> (usize, bool, bool) {
    let mut q = p + 1;
    if buf.len() >= p + 5 && buf[p + 1..p + 5].eq_ignore_ascii_case(b"xn--") {
        // punycode: letters, digits and hyphens
        while q < buf.len() && (is(buf[q], ALNUM) || buf[q] == b'-') && q - p <= MAX_TLD {
            q += 1;
        }
        let whole = !at(buf, q, ALNUM) && buf[q - 1] != b'-' && is_tld(&buf[p + 1..q]);
        return (q, whole, false);
    }
    while q < buf.len() && is(buf[q], ALPHA) && q - p <= MAX_TLD {
        q += 1;
    }
    let whole = q - p > 2 && !at(buf, q, ALPHA) && is_tld(&buf[p + 1..q]);
    let stray = !whole && q == buf.len() && q - p > 3 && is_tld(&buf[p + 1..q - 1]);
    (q, whole, stray)
}

/// Whether `s` starts with an HTML entity that cannot belong to a URL
/// (`&quot`, `&lt;`, `&gt;`, `&apos`, `&#34;`, `&#39;`, `&nbsp;`).
fn html_entity(s: &[u8]) -> bool {
    const ENTITIES: [&[u8]; 7] = [
        b"&quot", b"&lt;", b"&gt;", b"&apos", b"&#34;", b"&#39;", b"&nbsp;",
    ];
    ENTITIES
        .iter()
        .any(|e| s.len() >= e.len() && s[..e.len()].eq_ignore_ascii_case(e))
}

const SCHEMES: &[&[u8]] = &[
    b"https", b"http", b"sftp", b"ftps", b"ftp", b"afp", b"smb", b"wss", b"ws", b"rtsp",
];

/// The URL whose "://" is at `c`: (start, end, host start, host end).
fn url_at(buf: &[u8], c: usize) -> Option<(usize, usize, usize, usize)> {
    // scheme: the longest known scheme ending at c
    let mut r = c;
    while r > 0 && c - r < 6 && is(buf[r - 1], ALPHA) {
        r -= 1;
    }
    let word = &buf[r..c];
    let scheme = SCHEMES.iter().find(|sch| {
        word.len() >= sch.len() && word[word.len() - sch.len()..].eq_ignore_ascii_case(sch)
    })?;
    let s = c - scheme.len();
    let body = c + 3;
    let limit = (body + 384).min(buf.len());
    let mut e = body;
    while e < limit && is(buf[e], URLC) {
        e += 1;
    }
    // an HTML entity ends the URL (`href="http://x.com&quot;`), as in
    // bulk_extractor's output
    if let Some(k) =
        memchr::memchr_iter(b'&', &buf[body..e]).find(|&k| html_entity(&buf[body + k..e]))
    {
        e = body + k;
    }
    let slashes = buf[body..e].iter().filter(|&&b| b == b'/').count();
    if slashes == 0 {
        // no path: trim what cannot end a host or port
        while e > body && !is(buf[e - 1], ALPHA | DIGIT) {
            e -= 1;
        }
    } else {
        while e > body && matches!(buf[e - 1], b'.' | b':' | b';') {
            e -= 1;
        }
    }
    // host: after any user info, up to '/', '?', '#' or ':'
    let auth_end = (body..e)
        .find(|&i| matches!(buf[i], b'/' | b'?' | b'#'))
        .unwrap_or(e);
    let hs = buf[body..auth_end]
        .iter()
        .rposition(|&b| b == b'@')
        .map_or(body, |p| body + p + 1);
    let he = (hs..auth_end).find(|&i| buf[i] == b':').unwrap_or(auth_end);
    if he <= hs
        || !buf[hs..he].iter().all(|&b| is(b, HOST))
        || !buf[hs..he].iter().any(|&b| is(b, ALNUM))
    {
        return None;
    }
    Some((s, e, hs, he))
}

/// URLs (`http`, `https`, `ftp`, `ftps`, `sftp`, `afp`, `smb`, `ws`, `wss`,
/// `rtsp` followed by `://` and bulk_extractor's URL characters, at most
/// 384), and their host as a `domain` feature. A URL that starts inside an
/// earlier URL is part of it and not reported.
pub fn url(buf: &[u8], own: Range<usize>, urls: bool, domains: bool, out: &mut Vec<Hit>) {
    let lo = own.start.saturating_sub(3);
    let hi = (own.end + 8).min(buf.len());
    if lo >= hi {
        return;
    }
    let finder = memmem::Finder::new(b"://");
    for rel in finder.find_iter(&buf[lo..hi.min(buf.len())]) {
        let c = lo + rel;
        let Some((s, e, hs, he)) = url_at(buf, c) else {
            continue;
        };
        if covered_by_earlier_url(buf, &finder, s) {
            continue;
        }
        if urls && own.contains(&s) {
            out.push(Hit::new(Kind::Url, s, e));
        }
        let host = &buf[hs..he];
        if domains && own.contains(&hs) && host.iter().any(|&b| is(b, ALPHA)) {
            out.push(Hit::new(Kind::Domain, hs, he));
        }
    }
}

fn covered_by_earlier_url(buf: &[u8], finder: &memmem::Finder<'_>, s: usize) -> bool {
    let from = s.saturating_sub(400);
    finder
        .find_iter(&buf[from..s])
        .any(|rel| url_at(buf, from + rel).is_some_and(|(s2, e2, _, _)| s2 < s && e2 > s))
}

/// Stand-alone host names (`www.example.com`): labels of letters, digits
/// and hyphens, a known TLD, two labels for generic TLDs and three for
/// country codes. Names inside e-mail addresses and URLs are reported by
/// those scanners.
pub fn domain(buf: &[u8], own: Range<usize>, out: &mut Vec<Hit>) {
    let hi = (own.end + 64).min(buf.len());
    if own.start >= hi {
        return;
    }
    let mut next = own.start;
    for rel in memchr::memchr_iter(b'.', &buf[own.start..hi]) {
        let p = own.start + rel;
        if p < next {
            continue;
        }
        // the maximal run of host characters around p (bounded)
        let mut r = p;
        while r > 0 && p - r <= 256 && is(buf[r - 1], HOST) {
            r -= 1;
        }
        let mut e = p + 1;
        while e < buf.len() && e - r <= 256 && is(buf[e], HOST) {
            e += 1;
        }
        next = e;
        if e - r > 256 {
            continue;
        }
        let (s, t) = trim_host(buf, r, e);
        if t <= s || !own.contains(&s) {
            continue;
        }
        // neighbours that make it part of something else
        if r > 0 && matches!(buf[r - 1], b'@' | b'_' | b'%' | b'+' | b'\\' | b'$' | b'=') {
            continue;
        }
        if r >= 2 && buf[r - 1] == b'/' && buf[r - 2] == b'/' {
            continue;
        }
        if e < buf.len() && matches!(buf[e], b'@' | b'_' | b'%' | b'$' | b'\\') {
            continue;
        }
        if host_name_ok(&buf[s..t]) {
            out.push(Hit::new(Kind::Domain, s, t));
        }
    }
}

fn trim_host(buf: &[u8], mut s: usize, mut t: usize) -> (usize, usize) {
    while s < t && matches!(buf[s], b'.' | b'-') {
        s += 1;
    }
    while t > s && matches!(buf[t - 1], b'.' | b'-') {
        t -= 1;
    }
    (s, t)
}

/// Whether `name` is a plausible stand-alone host name.
pub fn host_name_ok(name: &[u8]) -> bool {
    if name.len() > 253 {
        return false;
    }
    let labels: Vec<&[u8]> = name.split(|&b| b == b'.').collect();
    if labels.len() < 2 {
        return false;
    }
    for l in &labels {
        if l.is_empty() || l.len() > 63 || l[0] == b'-' || l[l.len() - 1] == b'-' {
            return false;
        }
    }
    let tld = labels[labels.len() - 1];
    if !tld.iter().all(|&b| is(b, ALPHA)) || !is_tld(tld) {
        return false;
    }
    // mixed-case TLDs ("Foo.Com") are identifiers more often than names
    let upper = tld.iter().filter(|b| b.is_ascii_uppercase()).count();
    if upper != 0 && upper != tld.len() {
        return false;
    }
    if upper != 0 && name.iter().any(u8::is_ascii_lowercase) {
        return false;
    }
    let need = if is_generic_tld(tld) { 2 } else { 3 };
    // some label of three characters or more ("l.z.mr" is noise)
    let body = &labels[..labels.len() - 1];
    labels.len() >= need && body.iter().any(|l| l.len() >= 3) && body[body.len() - 1].len() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(f: impl Fn(&[u8], Range<usize>, &mut Vec<Hit>), s: &str) -> Vec<(Kind, String)> {
        let mut v = Vec::new();
        f(s.as_bytes(), 0..s.len(), &mut v);
        v.iter()
            .map(|h| (h.kind, s[h.start..h.end].to_string()))
            .collect()
    }
    fn emails(s: &str) -> Vec<String> {
        found(|b, o, v| email(b, o, true, false, v), s)
            .into_iter()
            .map(|x| x.1)
            .collect()
    }

    #[test]
    fn tld_table_sorted() {
        assert!(TLDS.windows(2).all(|w| w[0] < w[1]));
        assert!(GENERIC.windows(2).all(|w| w[0] < w[1]));
        assert!(GENERIC.iter().all(|g| TLDS.contains(g)));
    }

    #[test]
    fn email_examples() {
        assert_eq!(
            emails("mail bob.smith@example.com now"),
            ["bob.smith@example.com"]
        );
        assert_eq!(
            emails("<a.b+news@mail.example.co.uk>"),
            ["a.b+news@mail.example.co.uk"]
        );
        assert_eq!(
            emails("x@example.com"),
            Vec::<String>::new(),
            "local part too short"
        );
        assert_eq!(emails("abc@example.communityx "), Vec::<String>::new());
        // every current TLD, punycode ones too
        assert_eq!(emails("abc@example.community"), ["abc@example.community"]);
        assert_eq!(emails("info@acme.solutions;"), ["info@acme.solutions"]);
        assert_eq!(
            emails("ivan@xn--80ak6aa92e.xn--p1ai "),
            ["ivan@xn--80ak6aa92e.xn--p1ai"]
        );
        assert_eq!(emails("a@bb.xn--p1aix"), Vec::<String>::new());
        // RFC 5321 limits: 64-byte local part, 253-byte domain
        let l64 = format!("a{}z", "b".repeat(62));
        assert_eq!(
            emails(&format!(" {l64}@example.com ")),
            [format!("{l64}@example.com")]
        );
        assert_eq!(
            emails(&format!(" x{l64}@example.com ")),
            Vec::<String>::new()
        );
        let label = "d".repeat(63);
        let d253 = format!("{label}.{label}.{label}.{}.com", "e".repeat(57));
        assert_eq!(d253.len(), 253);
        assert_eq!(emails(&format!(" abc@{d253} ")), [format!("abc@{d253}")]);
        let d254 = format!("{label}.{label}.{label}.{}.com", "e".repeat(58));
        assert!(
            emails(&format!(" abc@{d254} "))
                .iter()
                .all(|e| e.len() < 254)
        );
        assert_eq!(emails("abc@example.com2"), ["abc@example.com"]);
        assert_eq!(emails("abc..d@example.com"), Vec::<String>::new());
        // bulk_extractor's leftmost match across a glued pair
        assert_eq!(
            emails("u.pages_comment@iwork09.compages@iwork09.com\n"),
            ["iwork09.compages@iwork09.com"]
        );
        assert_eq!(emails("user@EXAMPLE.COM."), ["user@EXAMPLE.COM"]);
        assert_eq!(
            emails("xlsx_within_docx@document.comI"),
            ["xlsx_within_docx@document.com"]
        );
        assert_eq!(
            emails("xlsx_within_docx@document.comIx"),
            Vec::<String>::new()
        );
        let both = found(|b, o, v| email(b, o, true, true, v), "to: abc@ex.org;");
        assert_eq!(
            both,
            [
                (Kind::Email, "abc@ex.org".into()),
                (Kind::Domain, "ex.org".into())
            ]
        );
    }

    #[test]
    fn url_examples() {
        let u = |s: &str| found(|b, o, v| url(b, o, true, true, v), s);
        // an HTML entity ends the URL
        assert_eq!(
            u("href=&quot;http://www.icra.org/ratingsv02.html&quot; l"),
            [
                (Kind::Url, "http://www.icra.org/ratingsv02.html".into()),
                (Kind::Domain, "www.icra.org".into())
            ]
        );
        assert_eq!(
            u("url=http://www.msn.com&quot;>"),
            [
                (Kind::Url, "http://www.msn.com".into()),
                (Kind::Domain, "www.msn.com".into())
            ]
        );
        assert_eq!(
            u("http://x.example.com/q?a=1&amp;b=2 "),
            [
                (Kind::Url, "http://x.example.com/q?a=1&amp;b=2".into()),
                (Kind::Domain, "x.example.com".into())
            ]
        );
        assert_eq!(
            u("see https://www.example.com/a/b?q=1. now"),
            [
                (Kind::Url, "https://www.example.com/a/b?q=1".into()),
                (Kind::Domain, "www.example.com".into())
            ]
        );
        assert_eq!(
            u("<a href=\"http://user@host.example.org:8080/x\">"),
            [
                (Kind::Url, "http://user@host.example.org:8080/x".into()),
                (Kind::Domain, "host.example.org".into())
            ]
        );
        assert_eq!(
            u("http://example.com."),
            [
                (Kind::Url, "http://example.com".into()),
                (Kind::Domain, "example.com".into())
            ]
        );
        assert_eq!(u("http://"), []);
        // a URL inside another one is part of it
        let v = u("http://a.com/redirect?to=http://b.com/x ");
        assert_eq!(v.iter().filter(|x| x.0 == Kind::Url).count(), 1);
    }

    #[test]
    fn domain_examples() {
        let d = |s: &str| -> Vec<String> { found(domain, s).into_iter().map(|x| x.1).collect() };
        assert_eq!(d("Host: www.example.com\n"), ["www.example.com"]);
        assert_eq!(d("query[A] cdn.contoso.com from"), ["cdn.contoso.com"]);
        assert_eq!(d("see example.com."), ["example.com"]);
        assert_eq!(d("run setup.py and notes.md"), Vec::<String>::new());
        assert_eq!(d("www.example.fr"), ["www.example.fr"]);
        assert_eq!(d("example.fr"), Vec::<String>::new());
        assert_eq!(d("bob@mail.example.com"), Vec::<String>::new());
        assert_eq!(d("john.smith@x.com"), Vec::<String>::new());
        assert_eq!(d("System.IO.File"), Vec::<String>::new());
        assert_eq!(d("end of sentence.Next one"), Vec::<String>::new());
        assert_eq!(d("10.1.2.3"), Vec::<String>::new());
        assert_eq!(d("\t l.z.MR\0"), Vec::<String>::new());
        assert_eq!(d("WWW.EXAMPLE.COM"), ["WWW.EXAMPLE.COM"]);
        assert_eq!(d("www.example.COM"), Vec::<String>::new());
    }
}
