//! Segment file names: `.E01` … `.E99`, `.EAA` … `.EZZ`, `.FAA` … `.ZZZ`
//! (likewise `.e01`, `.s01`, `.L01`), and for EWF v2 `.Ex01` … `.Ex99`,
//! `.ExAA` … `.ExZZ`, `.EyAA` … `.EzZZ`.

use std::path::{Path, PathBuf};

/// A segment naming scheme, read from any segment's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scheme {
    /// First letter of the extension (`E`, `e`, `s`, ...).
    letter: u8,
    /// EWF v2 style (`Ex01`): the second letter (`x`), which counts up
    /// (`y`, `z`) past `ExZZ`.
    x: Option<u8>,
}

fn scheme_of(ext: &str) -> Option<Scheme> {
    let b = ext.as_bytes();
    match b {
        [l, d1, d2] if l.is_ascii_alphabetic() && d1.is_ascii_digit() && d2.is_ascii_digit() => {
            Some(Scheme {
                letter: *l,
                x: None,
            })
        }
        [l, x, d1, d2]
            if l.is_ascii_alphabetic()
                && x.eq_ignore_ascii_case(&b'x')
                && d1.is_ascii_digit()
                && d2.is_ascii_digit() =>
        {
            Some(Scheme {
                letter: *l,
                x: Some(*x),
            })
        }
        _ => None,
    }
}

fn extension(s: Scheme, number: u32) -> Option<String> {
    if number == 0 {
        return None;
    }
    let upper = s.letter.is_ascii_uppercase();
    let a = if upper { b'A' } else { b'a' };
    let z = if upper { b'Z' } else { b'z' };
    if number <= 99 {
        return Some(match s.x {
            Some(x) => format!("{}{}{number:02}", s.letter as char, x as char),
            None => format!("{}{number:02}", s.letter as char),
        });
    }
    let m = number - 100;
    let third = a + (m % 26) as u8;
    let second = a + ((m / 26) % 26) as u8;
    let lead = m / (26 * 26);
    let (counted, last) = match s.x {
        Some(x) => (x, if x.is_ascii_uppercase() { b'Z' } else { b'z' }),
        None => (s.letter, z),
    };
    let first = u32::from(counted).checked_add(lead)?;
    if first > u32::from(last) {
        return None;
    }
    let first = first as u8;
    Some(if s.x.is_some() {
        format!(
            "{}{}{}{}",
            s.letter as char, first as char, second as char, third as char
        )
    } else {
        format!("{}{}{}", first as char, second as char, third as char)
    })
}

/// The path of segment `number` (1-based) of the set that `any_segment`
/// belongs to; `None` when its name does not follow a segment naming scheme
/// or the number is past the scheme's last name.
pub(super) fn segment_path(any_segment: &Path, number: u32) -> Option<PathBuf> {
    let name = any_segment.file_name()?.to_str()?;
    let (stem, ext) = name.rsplit_once('.')?;
    let ext = extension(scheme_of(ext)?, number)?;
    Some(any_segment.with_file_name(format!("{stem}.{ext}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(first: &str, n: u32) -> Option<String> {
        segment_path(Path::new(first), n).map(|p| p.display().to_string())
    }

    #[test]
    fn v1_names() {
        assert_eq!(name("/d/img.E01", 1).unwrap(), "/d/img.E01");
        assert_eq!(name("/d/img.E01", 2).unwrap(), "/d/img.E02");
        assert_eq!(name("/d/img.E01", 99).unwrap(), "/d/img.E99");
        assert_eq!(name("/d/img.E01", 100).unwrap(), "/d/img.EAA");
        assert_eq!(name("/d/img.E01", 101).unwrap(), "/d/img.EAB");
        assert_eq!(name("/d/img.E01", 125).unwrap(), "/d/img.EAZ");
        assert_eq!(name("/d/img.E01", 126).unwrap(), "/d/img.EBA");
        assert_eq!(name("/d/img.E01", 775).unwrap(), "/d/img.EZZ");
        assert_eq!(name("/d/img.E01", 776).unwrap(), "/d/img.FAA");
        assert_eq!(
            name("/d/img.E01", 100 + 22 * 676 - 1).unwrap(),
            "/d/img.ZZZ"
        );
        assert_eq!(name("/d/img.E01", 100 + 22 * 676), None);
        assert_eq!(name("x.e01", 100).unwrap(), "x.eaa");
        assert_eq!(name("x.s01", 3).unwrap(), "x.s03");
        assert_eq!(name("x.s01", 126).unwrap(), "x.sba");
        assert_eq!(name("a.b.E07", 1).unwrap(), "a.b.E01");
    }

    #[test]
    fn v2_names() {
        assert_eq!(name("img.Ex01", 2).unwrap(), "img.Ex02");
        assert_eq!(name("img.Ex01", 99).unwrap(), "img.Ex99");
        assert_eq!(name("img.Ex01", 100).unwrap(), "img.ExAA");
        assert_eq!(name("img.Ex01", 775).unwrap(), "img.ExZZ");
        assert_eq!(name("img.Ex01", 776).unwrap(), "img.EyAA");
        assert_eq!(name("img.Ex01", 100 + 3 * 676 - 1).unwrap(), "img.EzZZ");
        assert_eq!(name("img.Ex01", 100 + 3 * 676), None);
        assert_eq!(name("img.ex01", 100).unwrap(), "img.exaa");
    }

    #[test]
    fn non_segment_names() {
        assert_eq!(name("image.dd", 2), None);
        assert_eq!(name("image", 2), None);
        assert_eq!(name("image.E1", 2), None);
        assert_eq!(name("image.E01", 0), None);
    }
}
