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
