//! Acquisition metadata: the v1 `header` (ASCII), `header2` (UTF-16) and
//! `xheader` (XML) sections, the v2 case data and device information
//! sections, and the date formats they use.

use std::collections::BTreeMap;

/// Text of an ASCII/codepage `header` section: UTF-8 when valid, otherwise
/// each byte as the Latin-1 character of the same value.
pub(super) fn decode_narrow(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Text of a UTF-16 string with an optional byte-order mark (little-endian
/// without one).
pub(super) fn decode_utf16(bytes: &[u8]) -> String {
    let (big_endian, body) = match bytes {
        [0xff, 0xfe, rest @ ..] => (false, rest),
        [0xfe, 0xff, rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    let units = body.chunks_exact(2).map(|c| {
        if big_endian {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_le_bytes([c[0], c[1]])
        }
    });
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// The tag/value pairs of the `main` category of a header-like text:
/// a line `main`, then a line of tab-separated tags, then a line of the
/// tab-separated values.
pub(super) fn main_category(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let Some(i) = lines.iter().position(|l| l.trim() == "main") else {
        return Vec::new();
    };
    let (Some(tags), Some(values)) = (lines.get(i + 1), lines.get(i + 2)) else {
        return Vec::new();
    };
    tags.split('\t')
        .zip(values.split('\t'))
        .map(|(t, v)| {
            let v: String = v
                .chars()
                .map(|c| match c {
                    '\u{1}' => '\n',
                    '\u{2}' => '\r',
                    '\u{3}' => '\t',
                    c => c,
                })
                .collect();
            (t.trim().to_string(), v.trim_end_matches('\0').to_string())
        })
        .collect()
}

/// How a date value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DateStyle {
    /// `header`: "2004 11 3 22 56 35" (year month day hour minute second).
    Fields,
    /// `header2` and v2 case data: seconds since 1970 (UTC).
    Epoch,
}

/// The metadata key for a v1 header/header2 tag.
fn v1_key(tag: &str) -> Option<&'static str> {
    Some(match tag {
        "a" => "description",
        "c" => "case_number",
        "n" => "evidence_number",
        "e" => "examiner_name",
        "t" => "notes",
        "av" => "acquiry_software_version",
        "ov" => "acquiry_operating_system",
        "m" => "acquiry_date",
        "u" => "system_date",
        "md" => "model",
        "sn" => "serial_number",
        "l" => "device_label",
        "pid" => "process_identifier",
        "ext" => "extents",
        "r" => "compression_level",
        _ => return None,
    })
}

/// Metadata from a v1 `header` or `header2` text.
pub(super) fn v1_values(text: &str, style: DateStyle) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (tag, value) in main_category(text) {
        let Some(key) = v1_key(&tag) else { continue };
        let value = match key {
            "acquiry_date" | "system_date" => format_date(&value, style),
            "compression_level" => match value.trim() {
                "b" => "best".to_string(),
                "f" => "fast".to_string(),
                "n" => "none".to_string(),
                _ => continue,
            },
            _ => value.trim().to_string(),
        };
        if !value.is_empty() {
            out.insert(key.to_string(), value);
        }
    }
    out
}

/// Metadata from a v2 case data text, with the raw values of the tags the
/// reader needs (`sb`, `tb`, `cp`, `gr`).
pub(super) fn v2_case_data(text: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut out = BTreeMap::new();
    let mut raw = BTreeMap::new();
    for (tag, value) in main_category(text) {
        let value = value.trim().to_string();
        let key = match tag.as_str() {
            "nm" => "description",
            "cn" => "case_number",
            "en" => "evidence_number",
            "ex" => "examiner_name",
            "nt" => "notes",
            "av" => "acquiry_software_version",
            "os" => "acquiry_operating_system",
            // As libewf maps them: "at" (actual time) is the acquisition
            // date, "tt" (target time) the system date.
            "at" => "acquiry_date",
            "tt" => "system_date",
            "gr" => "error_granularity",
            _ => {
                raw.insert(tag, value);
                continue;
            }
        };
        let value = if matches!(key, "acquiry_date" | "system_date") {
            format_date(&value, DateStyle::Epoch)
        } else {
            value
        };
        if !value.is_empty() {
            out.insert(key.to_string(), value);
        }
    }
    (out, raw)
}

/// Metadata from a v2 device information text, with the raw values of the
/// tags the reader needs (`ts`, `bp`).
pub(super) fn v2_device_information(
    text: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut out = BTreeMap::new();
    let mut raw = BTreeMap::new();
    for (tag, value) in main_category(text) {
        let value = value.trim().to_string();
        let (key, value) = match tag.as_str() {
            "sn" => ("serial_number", value),
            "md" => ("model", value),
            "lb" => ("device_label", value),
            "pid" => ("process_identifier", value),
            "dt" => (
                "media_type",
                match value.as_str() {
                    "a" => "ram disk".to_string(),
                    "c" => "optical".to_string(),
                    "f" => "fixed".to_string(),
                    "l" => "logical".to_string(),
                    "m" => "memory".to_string(),
                    "p" => "palm".to_string(),
                    "r" => "removable".to_string(),
                    "" => continue,
                    other => format!("unknown ({other})"),
                },
            ),
            "ph" => (
                "is_physical",
                if value == "1" { "yes" } else { "no" }.to_string(),
            ),
            _ => {
                raw.insert(tag, value);
                continue;
            }
        };
        if !value.is_empty() {
            out.insert(key.to_string(), value);
        }
    }
    (out, raw)
}

/// Values of the EWF-X `xheader` XML (`<tag>value</tag>` elements).
pub(super) fn xml_values(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        if tag.starts_with(['?', '/', '!']) || tag.contains(' ') || tag.is_empty() {
            continue;
        }
        let end_tag = format!("</{tag}>");
        let Some(end) = rest.find(&end_tag) else {
            continue;
        };
        let value = &rest[..end];
        if !value.contains('<') {
            let value = value
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&");
            let value = value.trim();
            if !value.is_empty() {
                out.insert(tag.to_string(), value.to_string());
            }
            rest = &rest[end + end_tag.len()..];
        }
    }
    out
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `ctime`-style text, as ewfinfo prints dates: "Thu Nov  4 03:56:35 2004".
fn ctime(days: i64, secs_of_day: i64, y: i64, m: u32, d: u32) -> String {
    let wd = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    format!(
        "{wd} {} {d:2} {:02}:{:02}:{:02} {y}",
        MONTHS[(m - 1) as usize],
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// Formats a header date value; values that do not parse are kept as they
/// are.
pub(super) fn format_date(value: &str, style: DateStyle) -> String {
    let v = value.trim();
    match style {
        DateStyle::Epoch => match v.parse::<i64>() {
            Ok(secs) if (0..=253_402_300_799).contains(&secs) => {
                let days = secs.div_euclid(86_400);
                let (y, m, d) = civil_from_days(days);
                ctime(days, secs.rem_euclid(86_400), y, m, d)
            }
            _ => v.to_string(),
        },
        DateStyle::Fields => {
            let f: Vec<i64> = v
                .split_whitespace()
                .take(6)
                .map_while(|x| x.parse().ok())
                .collect();
            match f[..] {
                [y, mo, d, h, mi, s]
                    if (1..=9999).contains(&y)
                        && (1..=12).contains(&mo)
                        && (1..=31).contains(&d)
                        && (0..24).contains(&h)
                        && (0..60).contains(&mi)
                        && (0..=60).contains(&s) =>
                {
                    let days = days_from_civil(y, mo as u32, d as u32);
                    ctime(days, h * 3600 + mi * 60 + s, y, mo as u32, d as u32)
                }
                _ => v.to_string(),
            }
        }
    }
}

/// A GUID stored little-endian, as text ("e0ecd81f-12b7-9746-...").
pub(super) fn guid_string(g: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        g[3],
        g[2],
        g[1],
        g[0],
        g[5],
        g[4],
        g[7],
        g[6],
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            format_date("1099540595", DateStyle::Epoch),
            "Thu Nov  4 03:56:35 2004"
        );
        assert_eq!(
            format_date("1626967998", DateStyle::Epoch),
            "Thu Jul 22 15:33:18 2021"
        );
        assert_eq!(
            format_date("2018 5 16 15 5 8", DateStyle::Fields),
            "Wed May 16 15:05:08 2018"
        );
        assert_eq!(
            format_date("0", DateStyle::Epoch),
            "Thu Jan  1 00:00:00 1970"
        );
        assert_eq!(format_date("soon", DateStyle::Epoch), "soon");
        assert_eq!(
            format_date("2018 13 16 15 5 8", DateStyle::Fields),
            "2018 13 16 15 5 8"
        );
        assert_eq!(format_date("", DateStyle::Fields), "");
        for days in [-1000i64, 0, 11016, 20000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn header_text() {
        let t = "1\r\nmain\r\nc\tn\ta\te\tt\tav\tov\tm\tu\tp\tr\r\nCASE1\tEV\tdesc\tme\t\t4.19a\tWindows 2000\t2004 11 3 22 56 35\t2004 11 3 22 56 35\t0\tb\r\n\r\n";
        let v = v1_values(t, DateStyle::Fields);
        assert_eq!(v["case_number"], "CASE1");
        assert_eq!(v["evidence_number"], "EV");
        assert_eq!(v["description"], "desc");
        assert_eq!(v["examiner_name"], "me");
        assert!(!v.contains_key("notes"));
        assert_eq!(v["acquiry_software_version"], "4.19a");
        assert_eq!(v["acquiry_operating_system"], "Windows 2000");
        assert_eq!(v["acquiry_date"], "Wed Nov  3 22:56:35 2004");
        assert_eq!(v["compression_level"], "best");
        assert!(main_category("garbage").is_empty());
        assert!(main_category("main\nonly tags").is_empty());
    }

    #[test]
    fn utf16_and_xml() {
        let mut b = vec![0xff, 0xfe];
        for u in "main\nc\nx\u{e9}".encode_utf16() {
            b.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode_utf16(&b), "main\nc\nx\u{e9}");
        assert_eq!(decode_narrow(b"caf\xe9"), "caf\u{e9}");
        let x = xml_values(
            "<?xml version=\"1.0\"?>\n<xheader>\n\t<case_number>1 &amp; 2</case_number>\n\t<notes></notes>\n</xheader>",
        );
        assert_eq!(x.get("case_number").map(String::as_str), Some("1 & 2"));
        assert!(!x.contains_key("notes"));
    }

    #[test]
    fn guid() {
        let g = [
            0x1f, 0xd8, 0xec, 0xe0, 0xb7, 0x12, 0x46, 0x97, 0xbb, 0x5f, 0xb4, 0x33, 0x29, 0x0a,
            0x84, 0x92,
        ];
        assert_eq!(guid_string(&g), "e0ecd81f-12b7-9746-bb5f-b433290a8492");
    }
}
