//! The one CSV writer for every CSV trawl writes (the carved-file manifest,
//! the piecewise hashes, the dashboard's indicators), on the `csv` crate:
//! one quoting rule and one formula-defusing rule.
//!
//! * **Formulas defused.** A cell that a spreadsheet would run as a formula
//!   (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is
//!   prefixed with `'` ([`defuse`]).
//! * **Quoting** (RFC 4180, the `csv` crate's `Necessary` style): a cell
//!   holding a comma, a double quote, a carriage return or a line feed is
//!   quoted, its quotes doubled; every other cell is written as it is.
//!   Records end with `\n`.

use std::borrow::Cow;
use std::io::{self, Write};

/// The first characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell with spreadsheet formulas defused: `'` before a cell that starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return; any other cell
/// unchanged.
pub fn defuse(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Writes CSV records to `W` under the rule of this module.
pub struct Writer<W: Write> {
    inner: ::csv::Writer<W>,
}

impl<W: Write> Writer<W> {
    pub fn new(w: W) -> Self {
        Self {
            inner: ::csv::WriterBuilder::new()
                .has_headers(false)
                .flexible(true)
                .quote_style(::csv::QuoteStyle::Necessary)
                .terminator(::csv::Terminator::Any(b'\n'))
                .from_writer(w),
        }
    }

    /// One record: every cell defused, then quoted when it needs it.
    ///
    /// # Errors
    /// The underlying writer's.
    pub fn row<I>(&mut self, cells: I) -> io::Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.inner
            .write_record(cells.into_iter().map(|c| defuse(c.as_ref()).into_owned()))
            .map_err(io::Error::from)
    }

    /// Flushes what is buffered to the underlying writer.
    ///
    /// # Errors
    /// The underlying writer's.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// The underlying writer, after a flush.
    ///
    /// # Errors
    /// The flush's.
    pub fn into_inner(self) -> io::Result<W> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

/// A whole CSV document in memory: `rows` written in order.
pub fn to_string<R, I>(rows: R) -> String
where
    R: IntoIterator<Item = I>,
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut w = Writer::new(Vec::new());
    for r in rows {
        // Writing to a Vec cannot fail.
        let _ = w.row(r);
    }
    let bytes = w.into_inner().unwrap_or_default();
    // Every cell is a &str and the rule adds only ASCII: valid UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// One record as a CSV line, without its line end.
pub fn line<I>(cells: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut s = to_string([cells]);
    if s.ends_with('\n') {
        s.pop();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quoting() {
        assert_eq!(line(["carved/jpg/1.jpg"]), "carved/jpg/1.jpg");
        assert_eq!(line(["a,b", "c"]), "\"a,b\",c");
        assert_eq!(line(["say \"hi\""]), "\"say \"\"hi\"\"\"");
        assert_eq!(line(["line\nbreak", "x"]), "\"line\nbreak\",x");
        assert_eq!(line(["cr\rhere", "x"]), "\"cr\rhere\",x");
        assert_eq!(line(["", "x", ""]), ",x,");
        assert_eq!(line([" lead", "trail "]), " lead,trail ");
    }

    #[test]
    fn formulas_are_defused() {
        assert_eq!(line(["=cmd|' /C calc'!A0"]), "'=cmd|' /C calc'!A0");
        assert_eq!(line(["-2+3"]), "'-2+3");
        assert_eq!(line(["+1"]), "'+1");
        assert_eq!(line(["@SUM(1,2)"]), "\"'@SUM(1,2)\"");
        assert_eq!(line(["\tx", "y"]), "'\tx,y");
        assert_eq!(line(["\rx", "y"]), "\"'\rx\",y");
        // Only the first character counts.
        assert_eq!(line(["a=b", "1-2"]), "a=b,1-2");
        assert_eq!(defuse("plain"), Cow::Borrowed("plain"));
    }

    #[test]
    fn non_ascii_is_kept() {
        assert_eq!(
            line(["affaire é", "日本語", "Ωmega"]),
            "affaire é,日本語,Ωmega"
        );
        assert_eq!(line(["«a,b»"]), "\"«a,b»\"");
    }

    #[test]
    fn documents_end_each_record_with_a_line_feed() {
        let doc = to_string([vec!["offset", "length"], vec!["0", "512"]]);
        assert_eq!(doc, "offset,length\n0,512\n");
        let mut w = Writer::new(Vec::new());
        w.row(["a", "=b"]).unwrap();
        assert_eq!(w.into_inner().unwrap(), b"a,'=b\n");
    }

    fn parse(doc: &str) -> Vec<Vec<String>> {
        ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(doc.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    proptest! {
        /// A written row reads back, with the `csv` reader, as its cells
        /// defused.
        #[test]
        fn a_row_reads_back_defused(
            cells in proptest::collection::vec(
                proptest::string::string_regex("[-=+@\t\r\n\",' a-zé日;|]{0,12}").unwrap(),
                1..8,
            )
        ) {
            let doc = to_string([&cells]);
            let back = parse(&doc);
            let want: Vec<String> = cells.iter().map(|c| defuse(c).into_owned()).collect();
            prop_assert_eq!(back, vec![want]);
        }

        #[test]
        fn any_text_reads_back_defused(cells in proptest::collection::vec(any::<String>(), 2..5)) {
            let doc = to_string([&cells, &cells]);
            let want: Vec<String> = cells.iter().map(|c| defuse(c).into_owned()).collect();
            prop_assert_eq!(parse(&doc), vec![want.clone(), want]);
        }
    }
}
