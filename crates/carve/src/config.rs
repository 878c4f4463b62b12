//! Scalpel / Foremost configuration files, in their own format, so a lab's
//! existing configuration works unchanged:
//!
//! ```text
//! # extension  case-sensitive  max-size  header  [footer]  [REVERSE|NEXT|FORWARD|ASCII]
//! jpg   y   5242880   \xff\xd8\xff???Exif   \xff\xd9   REVERSE
//! htm   n   50000     <html                 </html>
//! NONE  y   1000      FOREMOST
//! wildcard  ?
//! ```
//!
//! Escapes: `\xHH` (hex), `\NNN` (octal), `\s` (space), `\t`, `\n`, `\r`,
//! `\\`; any other escaped character stands for itself. The wildcard
//! (default `?`, changed by a `wildcard` line) matches any byte; an escaped
//! wildcard is the literal byte.

/// One byte of a pattern: a literal or a wildcard.
pub(crate) type Pat = Vec<Option<u8>>;

/// How the end of a header/footer carving is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// First footer after the header, footer included (the default).
    Forward,
    /// Last footer within the maximum size, footer included.
    Reverse,
    /// Up to (not including) the first footer; maximum size without one.
    Next,
    /// Printable ASCII from the header on (Foremost's ASCII keyword).
    Ascii,
}

/// A custom file type from a configuration line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Custom {
    /// Line number in the configuration (1-based).
    pub line: usize,
    /// Extension as written (`NONE`: none).
    pub ext: String,
    pub case_sensitive: bool,
    pub max_size: u64,
    pub header: Pat,
    pub footer: Option<Pat>,
    pub mode: Mode,
}

impl Custom {
    /// Folder name under `carved/`.
    pub(crate) fn type_name(&self) -> String {
        if self.ext.eq_ignore_ascii_case("none") {
            return "none".into();
        }
        sanitize(&self.ext.to_ascii_lowercase())
    }
    /// File name extension.
    pub(crate) fn extension(&self) -> String {
        if self.ext.eq_ignore_ascii_case("none") {
            return "bin".into();
        }
        sanitize(&self.ext)
    }
}

/// Longest custom type or extension name ([`sanitize`] keeps no more).
const MAX_CUSTOM_NAME: usize = 32;

/// Whether `s` has the form of a custom type's folder name
/// ([`Custom::type_name`]): 1 to 32 of `a-z 0-9 _ -`.
pub(crate) fn is_custom_type_name(s: &str) -> bool {
    (1..=MAX_CUSTOM_NAME).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}

/// Whether `s` has the form of a custom type's extension
/// ([`Custom::extension`]): 1 to 32 of `A-Z a-z 0-9 _ -`.
pub(crate) fn is_custom_extension(s: &str) -> bool {
    (1..=MAX_CUSTOM_NAME).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

fn sanitize(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_CUSTOM_NAME)
        .collect();
    if t.is_empty() { "custom".into() } else { t }
}

/// Parses a configuration's text.
///
/// # Errors
/// A line that is not a valid type definition, naming it.
pub(crate) fn parse(text: &str) -> Result<Vec<Custom>, String> {
    let mut wildcard = b'?';
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks[0].eq_ignore_ascii_case("wildcard") {
            let Some(w) = toks.get(1) else {
                return Err(format!("line {line_no}: wildcard without a character"));
            };
            let d = decode(w, 0);
            match d.as_slice() {
                [Some(c)] => wildcard = *c,
                _ => return Err(format!("line {line_no}: wildcard must be one character")),
            }
            continue;
        }
        if toks.len() < 4 {
            return Err(format!(
                "line {line_no}: expected `extension case-sensitive max-size header [footer] [REVERSE|NEXT]`, got {line:?}"
            ));
        }
        let case_sensitive = match toks[1].to_ascii_lowercase().as_str() {
            "y" | "yes" | "t" | "true" => true,
            "n" | "no" | "f" | "false" => false,
            other => {
                return Err(format!(
                    "line {line_no}: case sensitivity must be y or n, got {other:?}"
                ));
            }
        };
        let max_size: u64 = toks[2].parse().map_err(|_| {
            format!(
                "line {line_no}: maximum size must be a number of bytes, got {:?}",
                toks[2]
            )
        })?;
        if max_size == 0 {
            return Err(format!("line {line_no}: maximum size 0"));
        }
        let header = decode(toks[3], wildcard);
        if header.is_empty() || header.iter().all(Option::is_none) {
            return Err(format!("line {line_no}: header has no literal byte"));
        }
        let mut mode = Mode::Forward;
        let mut footer = None;
        let keyword = |t: &str| -> Option<Mode> {
            match t.to_ascii_uppercase().as_str() {
                "REVERSE" => Some(Mode::Reverse),
                "NEXT" => Some(Mode::Next),
                "FORWARD" | "FORWARD_NEXT" => Some(Mode::Forward),
                "ASCII" => Some(Mode::Ascii),
                _ => None,
            }
        };
        let rest = &toks[4..];
        match rest {
            [] => {}
            [a] => match keyword(a) {
                Some(m) => mode = m,
                None => footer = Some(decode(a, wildcard)),
            },
            [a, b, ..] => {
                footer = Some(decode(a, wildcard));
                mode = keyword(b).ok_or_else(|| {
                    format!(
                        "line {line_no}: unknown keyword {b:?} (REVERSE, NEXT, FORWARD or ASCII)"
                    )
                })?;
                if rest.len() > 2 {
                    return Err(format!("line {line_no}: too many fields"));
                }
            }
        }
        if let Some(f) = &footer
            && (f.is_empty() || f.iter().all(Option::is_none))
        {
            return Err(format!("line {line_no}: footer has no literal byte"));
        }
        if footer.is_none() && matches!(mode, Mode::Reverse) {
            return Err(format!("line {line_no}: REVERSE needs a footer"));
        }
        out.push(Custom {
            line: line_no,
            ext: toks[0].to_string(),
            case_sensitive,
            max_size,
            header,
            footer,
            mode,
        });
    }
    Ok(out)
}

/// Decodes a header/footer field.
pub(crate) fn decode(s: &str, wildcard: u8) -> Pat {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() {
            let n = b[i + 1];
            let hex = |x: u8| (x as char).to_digit(16);
            if (n == b'x' || n == b'X')
                && i + 3 < b.len()
                && let (Some(h), Some(l)) = (hex(b[i + 2]), b.get(i + 3).and_then(|&x| hex(x)))
            {
                out.push(Some((h * 16 + l) as u8));
                i += 4;
                continue;
            }
            if (b'0'..=b'3').contains(&n)
                && i + 3 < b.len()
                && (b'0'..=b'7').contains(&b[i + 2])
                && (b'0'..=b'7').contains(&b[i + 3])
            {
                let v = (n - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
                out.push(Some(v));
                i += 4;
                continue;
            }
            out.push(Some(match n {
                b's' => b' ',
                b't' => b'\t',
                b'n' => b'\n',
                b'r' => b'\r',
                other => other,
            }));
            i += 2;
            continue;
        }
        if c == wildcard && wildcard != 0 {
            out.push(None);
        } else {
            out.push(Some(c));
        }
        i += 1;
    }
    out
}

/// The longest run of literal bytes: (offset in the pattern, bytes).
pub(crate) fn anchor(p: &Pat) -> (usize, Vec<u8>) {
    let (mut best, mut best_len) = (0usize, 0usize);
    let mut i = 0;
    while i < p.len() {
        if p[i].is_none() {
            i += 1;
            continue;
        }
        let s = i;
        while i < p.len() && p[i].is_some() {
            i += 1;
        }
        if i - s > best_len {
            best = s;
            best_len = i - s;
        }
    }
    (
        best,
        p[best..best + best_len].iter().flatten().copied().collect(),
    )
}

/// Whether `p` matches at the start of `b`.
pub(crate) fn matches(p: &Pat, b: &[u8], case_sensitive: bool) -> bool {
    if b.len() < p.len() {
        return false;
    }
    p.iter().zip(b).all(|(x, &y)| match x {
        None => true,
        Some(c) if case_sensitive => *c == y,
        Some(c) => c.eq_ignore_ascii_case(&y),
    })
}
