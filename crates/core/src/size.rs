//! Human sizes: `64MiB`, `1m`, `4096`, `2GiB`.

use crate::CoreError;

/// Parses a byte size. Suffixes are binary (`K`, `KiB`, `KB` all mean 1024),
/// case-insensitive; a bare number is bytes.
///
/// ```
/// assert_eq!(trawl_core::size::parse_size("64MiB").unwrap(), 64 << 20);
/// assert_eq!(trawl_core::size::parse_size("1k").unwrap(), 1024);
/// assert!(trawl_core::size::parse_size("-1").is_err());
/// ```
///
/// # Errors
/// Empty input, a negative or non-numeric value, an unknown suffix or an
/// overflow.
pub fn parse_size(input: &str) -> Result<u64, CoreError> {
    let err = |reason| CoreError::ParseSize {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if num.is_empty() {
        return Err(err(
            "expected a non-negative number, optionally with K, M, G or T",
        ));
    }
    let n: u64 = num.parse().map_err(|_| err("number too large"))?;
    let mult: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(err("unknown unit (use K, M, G or T, e.g. 64MiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| err("overflows 64 bits"))
}

/// Formats a byte count with a binary unit (`64 MiB`, `1.5 GiB`, `10 B`).
pub fn format_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{} {}", v.round() as u64, UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("16 mb").unwrap(), 16 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("17179869184T").is_err());
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(3), "3 B");
    }
}
