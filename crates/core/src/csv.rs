//! The one rule for every CSV trawl writes (the carved-file manifest,
//! piecewise hashes, the dashboard's indicators): RFC 4180 quoting when a
//! field needs it, and spreadsheet formulas defused.

/// One CSV field. A value that a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is
/// prefixed with `'`; a value with a comma, quote, line break or a leading
/// space is quoted, its quotes doubled.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn quoting_and_formulas() {
        assert_eq!(field("carved/jpg/1.jpg"), "carved/jpg/1.jpg");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(field("-2+3"), "'-2+3");
        assert_eq!(field("@SUM(1,2)"), "\"'@SUM(1,2)\"");
        assert_eq!(field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(field(" lead"), "\" lead\"");
        assert_eq!(field(""), "");
    }
}
