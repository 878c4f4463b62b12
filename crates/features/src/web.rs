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
/// name: bulk_extractor's list plus a few common generic ones. Lower case,
/// sorted.
const TLDS: &[&str] = &[
    "ac", "ad", "ae", "aero", "af", "ag", "ai", "al", "am", "an", "ao", "aq", "ar", "arpa", "as",
    "asia", "at", "au", "aw", "ax", "az", "ba", "bb", "bd", "be", "bf", "bg", "bh", "bi", "biz",
    "bj", "bl", "blog", "bm", "bn", "bo", "br", "bs", "bt", "bv", "bw", "by", "bz", "ca", "cat",
    "cc", "cd", "cf", "cg", "ch", "ci", "ck", "cl", "cloud", "club", "cm", "cn", "co", "com",
    "coop", "cr", "cu", "cv", "cx", "cy", "cz", "de", "dj", "dk", "dm", "do", "dz", "ec", "edu",
    "ee", "eg", "eh", "email", "er", "es", "et", "eu", "fi", "fj", "fk", "fm", "fo", "fr", "ga",
    "gb", "gd", "ge", "gf", "gg", "gh", "gi", "gl", "gm", "gn", "gov", "gp", "gq", "gr", "gs",
    "gt", "gu", "gw", "gy", "hk", "hm", "hn", "hr", "ht", "hu", "id", "ie", "il", "im", "in",
    "info", "int", "io", "iq", "ir", "is", "it", "je", "jm", "jo", "jobs", "jp", "ke", "kg", "kh",
    "ki", "km", "kn", "kp", "kr", "kw", "ky", "kz", "la", "lb", "lc", "li", "live", "lk", "lr",
    "ls", "lt", "lu", "lv", "ly", "ma", "mc", "md", "me", "mf", "mg", "mh", "mil", "mk", "ml",
    "mm", "mn", "mo", "mobi", "mp", "mq", "mr", "ms", "mt", "mu", "museum", "mv", "mw", "mx", "my",
    "mz", "na", "name", "nc", "ne", "net", "nf", "ng", "ni", "nl", "no", "np", "nr", "nu", "nz",
    "om", "online", "org", "pa", "pe", "pf", "pg", "ph", "pk", "pl", "pm", "pn", "pr", "pro", "ps",
    "pt", "pw", "py", "qa", "re", "ro", "rs", "ru", "rw", "sa", "sb", "sc", "sd", "se", "sg", "sh",
    "shop", "si", "site", "sj", "sk", "sl", "sm", "sn", "so", "sr", "st", "store", "su", "sv",
    "sy", "sz", "tc", "td", "tech", "tel", "tf", "tg", "th", "tj", "tk", "tl", "tm", "tn", "to",
    "top", "tp", "tr", "travel", "tt", "tv", "tw", "tz", "ua", "ug", "uk", "um", "us", "uy", "uz",
    "va", "vc", "ve", "vg", "vi", "vn", "vu", "wf", "ws", "xyz", "ye", "yt", "yu", "za", "zm",
    "zw",
];

/// Generic TLDs: a bare `name.tld` is taken as a domain. Country-code TLDs
/// need three labels (`www.example.fr`) to tell them from file names
/// (`setup.py`, `notes.md`).
const GENERIC: &[&str] = &[
    "aero", "arpa", "asia", "biz", "blog", "cat", "cloud", "club", "com", "coop", "edu", "email",
    "gov", "info", "int", "io", "jobs", "live", "mil", "mobi", "museum", "name", "net", "online",
    "org", "pro", "shop", "site", "store", "tech", "tel", "top", "travel", "xyz",
];

fn lower<'a>(s: &[u8], buf: &'a mut [u8; 8]) -> Option<&'a str> {
    if s.len() > 8 {
        return None;
    }
    for (d, c) in buf.iter_mut().zip(s) {
        *d = c.to_ascii_lowercase();
    }
    std::str::from_utf8(&buf[..s.len()]).ok()
}

/// Whether `s` (letters, any case) is an accepted TLD.
pub fn is_tld(s: &[u8]) -> bool {
    let mut b = [0u8; 8];
    lower(s, &mut b).is_some_and(|t| TLDS.binary_search(&t).is_ok())
}

fn is_generic_tld(s: &[u8]) -> bool {
    let mut b = [0u8; 8];
    lower(s, &mut b).is_some_and(|t| GENERIC.binary_search(&t).is_ok())
}

/// E-mail addresses (bulk_extractor's `EMAIL` expression:
/// `ALNUM[a-zA-Z0-9._%\-+]{1,128}ALNUM@ALNUM[a-zA-Z0-9._%\-]{1,128}\.TLD`
/// followed by a non-letter, rejected when it contains `..`), and their
/// domain part as a `domain` feature.
pub fn email(buf: &[u8], own: Range<usize>, emails: bool, domains: bool, out: &mut Vec<Hit>) {
    // '@' of an address starting in own: at most 130 bytes after its start;
    // of a domain starting in own: just before it.
    let lo = own.start.saturating_sub(1);
    let hi = (own.end + 131).min(buf.len());
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
    // local part: the leftmost start within 130 bytes whose byte is ALNUM
    let min_r = a.saturating_sub(130);
    let mut r = a - 1;
    while r > min_r && is(buf[r - 1], LOCAL) {
        r -= 1;
    }
    let s = (r..a - 2).find(|&i| is(buf[i], ALNUM))?;
    // domain: the longest ALNUM X{1,128} '.' TLD followed by a non-letter
    let d0 = a + 1;
    let dmax = (d0 + 1 + 128 + 1 + 8).min(buf.len());
    let mut e = d0;
    while e < dmax && is(buf[e], EDOMAIN) {
        e += 1;
    }
    let mut p = e;
    while p > d0 + 2 {
        p -= 1;
        if buf[p] != b'.' || p - d0 > 129 {
            continue;
        }
        let mut q = p + 1;
        while q < buf.len() && is(buf[q], ALPHA) && q - p <= 8 {
            q += 1;
        }
        let whole = q - p > 2 && !at(buf, q, ALPHA) && is_tld(&buf[p + 1..q]);
        // one stray letter ending the text (a UTF-16 run that ends with a
        // binary field read as a character), as bulk_extractor accepts it
        let stray = !whole && q == buf.len() && q - p > 3 && is_tld(&buf[p + 1..q - 1]);
        if whole || stray {
            let q = if stray { q - 1 } else { q };
            if memmem::find(&buf[s..q], b"..").is_some() {
                return None;
            }
            return Some((s, q));
        }
    }
    None
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
        assert_eq!(emails("abc@example.community"), Vec::<String>::new());
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
