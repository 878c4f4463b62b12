//! bulk_extractor's `gps` scanner: Garmin GPX track points
//! (`<trkpt lat="…" lon="…"><ele>…</ele><time>…</time>…</trkpt>`), found in
//! raw data and fragments, written to `gps.txt` as bulk_extractor writes
//! them: feature `TIME,LAT,LON,ELE,SPEED,COURSE`, empty context.
//!
//! bulk_extractor's lexer keeps the last `<ele>`, `<time>`,
//! `<gpxtpx:speed>` and `<gpxtpx:course>` values it saw and writes them
//! (when any is set) at the next *clear*: a `<trkpt lat=… lon=…` opening
//! (whose coordinates then start the next record), a `</trkpt>`, or any
//! byte ≥ 0x80; the record's offset is the clearing token's. None of the
//! tokens contains another's start, so the clearing positions do not
//! depend on where scanning starts; a shard replays the tokens from
//! [`BACK`] bytes before its range.
//!
//! # Deviations
//!
//! * bulk_extractor scans a 16 MiB page only when it holds `trkpt`, `lat=`
//!   and `lon=` somewhere; trawl writes a record only when it comes from a
//!   track point (its clear is a `<trkpt`/`</trkpt>`, or its values follow
//!   a `<trkpt` opening), so a lone `<time>` of another XML file is never a
//!   GPS line, wherever the page boundaries fall.
//! * Values seen more than [`BACK`] bytes before a record's first token are
//!   not carried over.

use crate::records::Record;
use std::ops::Range;

/// How far before its range a shard replays the tokens.
pub const BACK: usize = 1000;
/// How far after a token the clearing byte ≥ 0x80 is looked for.
const AHEAD: usize = 60 << 10;

#[derive(Default)]
struct Point {
    lat: Vec<u8>,
    lon: Vec<u8>,
    ele: Vec<u8>,
    time: Vec<u8>,
    speed: Vec<u8>,
    course: Vec<u8>,
    /// Values set since a `<trkpt` opening.
    from_trkpt: bool,
}

impl Point {
    fn is_set(&self) -> bool {
        !(self.lat.is_empty()
            && self.lon.is_empty()
            && self.ele.is_empty()
            && self.time.is_empty()
            && self.speed.is_empty()
            && self.course.is_empty())
    }

    fn line(&self) -> Vec<u8> {
        [
            &self.time,
            &self.lat,
            &self.lon,
            &self.ele,
            &self.speed,
            &self.course,
        ]
        .map(|v| v.as_slice())
        .join(&b","[..])
    }
}

fn digits(b: &[u8], i: usize, min: usize, max: usize) -> Option<usize> {
    let n = b[i.min(b.len())..]
        .iter()
        .take(max + 1)
        .take_while(|c| c.is_ascii_digit())
        .count();
    (min..=max).contains(&n).then_some(i + n)
}

/// `-?[0-9]{1,3}[.][0-9]{6,8}` at `i`: its end.
fn latlon(b: &[u8], i: usize) -> Option<usize> {
    let i = if b.get(i) == Some(&b'-') { i + 1 } else { i };
    let j = digits(b, i, 1, 3)?;
    if b.get(j) != Some(&b'.') {
        return None;
    }
    digits(b, j + 1, 6, 8)
}

/// `-?[0-9]{1,6}[.][0-9]{0,3}` at `i`: its end.
fn elev(b: &[u8], i: usize) -> Option<usize> {
    let i = if b.get(i) == Some(&b'-') { i + 1 } else { i };
    let j = digits(b, i, 1, 6)?;
    if b.get(j) != Some(&b'.') {
        return None;
    }
    digits(b, j + 1, 0, 3)
}

/// `YYYY-MM-DD[ T]hh:mm:ss(Z|[-+][0-9.])` at `i`: its end.
fn time(b: &[u8], i: usize) -> Option<usize> {
    let pat = b"dddd-dd-dd?dd:dd:dd";
    let s = b.get(i..i + pat.len())?;
    for (c, p) in s.iter().zip(pat) {
        let ok = match p {
            b'd' => c.is_ascii_digit(),
            b'?' => *c == b' ' || *c == b'T',
            _ => c == p,
        };
        if !ok {
            return None;
        }
    }
    let j = i + pat.len();
    match b.get(j) {
        Some(b'Z') => Some(j + 1),
        Some(b'-' | b'+')
            if b.get(j + 1)
                .is_some_and(|c| c.is_ascii_digit() || *c == b'.') =>
        {
            Some(j + 2)
        }
        _ => None,
    }
}

enum Token {
    /// `<trkpt lat="…" lon="…"`: end, lat, lon.
    Open(usize, Range<usize>, Range<usize>),
    Close(usize),
    /// A value tag: end, which field, the value.
    Value(usize, u8, Range<usize>),
}

/// The token starting at `b[i] == b'<'`, if any.
fn token(b: &[u8], i: usize) -> Option<Token> {
    let rest = &b[i..];
    if let Some(r) = rest.strip_prefix(b"<trkpt lat=\"") {
        let a = i + (rest.len() - r.len());
        let ae = latlon(b, a)?;
        let r2 = b.get(ae..)?.strip_prefix(b"\" lon=\"")?;
        let o = ae + 7;
        let _ = r2;
        let oe = latlon(b, o)?;
        if b.get(oe) != Some(&b'"') {
            return None;
        }
        return Some(Token::Open(oe + 1, a..ae, o..oe));
    }
    if rest.starts_with(b"</trkpt>") {
        return Some(Token::Close(i + 8));
    }
    type Value = fn(&[u8], usize) -> Option<usize>;
    let tags: [(&[u8], &[u8], u8, Value); 4] = [
        (b"<ele>", b"</ele>", b'e', elev),
        (b"<time>", b"</time>", b't', time),
        (b"<gpxtpx:speed>", b"</gpxtpx:speed>", b's', elev),
        (b"<gpxtpx:course>", b"</gpxtpx:course>", b'c', elev),
    ];
    for (open, close, which, value) in tags {
        if rest.starts_with(open) {
            let v = i + open.len();
            let ve = value(b, v)?;
            if !b.get(ve..)?.starts_with(close) {
                return None;
            }
            return Some(Token::Value(ve + close.len(), which, v..ve));
        }
    }
    None
}

/// The track-point records whose clearing token starts in `own`.
pub fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let lo = own.start.saturating_sub(BACK);
    let hi = (own.end + AHEAD).min(buf.len());
    // cheap test: no track point near
    if memchr::memmem::find(&buf[lo..hi.min(own.end + 64).max(lo)], b"trkpt").is_none() {
        return;
    }
    let mut st = Point::default();
    let mut i = lo;
    let emit = |st: &mut Point, at: usize, trkpt_event: bool, out: &mut Vec<Record>| {
        if st.is_set() && (trkpt_event || st.from_trkpt) && own.contains(&at) {
            out.push(Record {
                recorder: "gps",
                pos: at,
                feature: st.line(),
                context: Vec::new(),
            });
        }
        *st = Point::default();
    };
    while i < hi {
        // next '<' or byte >= 0x80
        let Some(k) = buf[i..hi].iter().position(|&c| c == b'<' || c >= 0x80) else {
            break;
        };
        let p = i + k;
        if p >= own.end && !st.is_set() {
            break;
        }
        if buf[p] >= 0x80 {
            emit(&mut st, p, false, out);
            i = p + 1;
            continue;
        }
        match token(buf, p) {
            Some(Token::Open(end, a, o)) => {
                emit(&mut st, p, true, out);
                st.lat = buf[a].to_vec();
                st.lon = buf[o].to_vec();
                st.from_trkpt = true;
                i = end;
            }
            Some(Token::Close(end)) => {
                emit(&mut st, p, true, out);
                i = end;
            }
            Some(Token::Value(end, which, v)) => {
                let v = buf[v].to_vec();
                match which {
                    b'e' => st.ele = v,
                    b't' => st.time = v,
                    b's' => st.speed = v,
                    _ => st.course = v,
                }
                i = end;
            }
            None => i = p + 1,
        }
        if i >= own.end && !st.is_set() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[u8]) -> Vec<(usize, String)> {
        let mut v = Vec::new();
        scan(s, 0..s.len(), &mut v);
        v.iter()
            .map(|r| (r.pos, String::from_utf8(r.feature.clone()).unwrap()))
            .collect()
    }

    #[test]
    fn garmin_track_points() {
        let s = br#"<metadata><time>2009-10-17T22:58:43Z</time></metadata>
<trkpt lat="47.644548" lon="-122.326897"><ele>4.46</ele><time>2009-10-17T18:37:26Z</time></trkpt>
<trkpt lat="38.866110" lon="-77.136286"><ele>90.98</ele><time>2010-10-16T20:46:52Z</time><extensions><gpxtpx:TrackPointExtension><gpxtpx:speed>21.96</gpxtpx:speed><gpxtpx:course>87.53</gpxtpx:course></gpxtpx:TrackPointExtension></extensions></trkpt>"#;
        let got = lines(s);
        let open1 = s.windows(6).position(|w| w == b"<trkpt").unwrap();
        let close: Vec<usize> = s
            .windows(8)
            .enumerate()
            .filter(|(_, w)| *w == b"</trkpt>")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            got,
            [
                (open1, "2009-10-17T22:58:43Z,,,,,".to_string()),
                (
                    close[0],
                    "2009-10-17T18:37:26Z,47.644548,-122.326897,4.46,,".into()
                ),
                (
                    close[1],
                    "2010-10-16T20:46:52Z,38.866110,-77.136286,90.98,21.96,87.53".into()
                ),
            ]
        );
        // the same records whatever the owned range's start
        for cut in 0..s.len() {
            let mut v = Vec::new();
            scan(s, 0..cut, &mut v);
            scan(s, cut..s.len(), &mut v);
            let g: Vec<(usize, String)> = v
                .iter()
                .map(|r| (r.pos, String::from_utf8(r.feature.clone()).unwrap()))
                .collect();
            assert_eq!(g, got, "cut {cut}");
        }
    }

    #[test]
    fn malformed_values_and_other_xml_are_ignored() {
        // lat with 5 decimals: no opening; a lone <time> in other XML: no line
        assert!(lines(br#"<trkpt lat="47.64454" lon="-122.326897"></trkpt>"#).is_empty());
        assert!(
            lines("<rss><time>2009-10-17T22:58:43Z</time> caf\u{e9} trkpt</rss>".as_bytes())
                .is_empty()
        );
        // an unclosed point is written at the next byte >= 0x80
        let s = "<trkpt lat=\"1.000000\" lon=\"2.000000\"><ele>3.5</ele>\u{e9}".as_bytes();
        let at = s.iter().position(|&c| c >= 0x80).unwrap();
        assert_eq!(lines(s), [(at, ",1.000000,2.000000,3.5,,".to_string())]);
        for n in 0..s.len() {
            let _ = lines(&s[..n]);
        }
    }
}
