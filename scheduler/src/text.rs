//! Text for people: times and durations as the command line and the
//! dashboard show them.

/// A Unix time in milliseconds as `YYYY-MM-DD HH:MM:SSZ` (UTC); `-` for
/// none (0 or less).
pub fn utc_ms(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// A time left as `1h05m`, `3m20s`, `42s`; `-` when unknown.
pub fn eta(secs: f64) -> String {
    if !secs.is_finite() || secs <= 0.0 {
        return "-".into();
    }
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Writes one line to standard output. A reader that has gone away (a
/// closed pipe, as `trawl jobs | head -3` closes it) ends the process
/// quietly with status 0: nothing more can be said to it, and nothing has
/// failed. Other write errors end it with status 1 and one line on stderr.
pub fn out_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let r = o
        .write_fmt(args)
        .and_then(|()| o.write_all(b"\n"))
        .and_then(|()| o.flush());
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("trawl: error: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` for command output: see [`out_line`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::text::out_line(format_args!(""))
    };
    ($($t:tt)*) => {
        $crate::text::out_line(format_args!($($t)*))
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::utc_ms(0), "-");
        assert_eq!(super::utc_ms(1_700_000_000_000), "2023-11-14 22:13:20Z");
        assert_eq!(super::eta(f64::NAN), "-");
        assert_eq!(super::eta(3725.0), "1h02m");
        assert_eq!(super::eta(200.4), "3m20s");
        assert_eq!(super::eta(42.0), "42s");
    }
}
