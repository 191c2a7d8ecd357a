//! Sizes and durations, read and written the way people do.

use std::time::Duration;

/// `1536` → `1.5 KiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024 * 10 && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    if unit == 0 && bytes >= 1024 {
        #[allow(clippy::cast_precision_loss, reason = "shown with one decimal")]
        return format!("{:.1} KiB", bytes as f64 / 1024.0);
    }
    format!("{value} {}", UNITS[unit])
}

/// Milliseconds → `45s`, `3m`, `2h`, `5d`.
pub fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `"30d"` → `(30, "d")`; an error saying what was expected when there is no number.
fn number_and_unit<'t>(text: &'t str, what: &str) -> Result<(u64, &'t str), String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n = number
        .parse()
        .map_err(|_| format!("`{text}` is not {what}"))?;
    Ok((n, unit.trim()))
}

/// `30d`, `12h`, `90m`, `45s` (or plain seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const WHAT: &str = "a duration: write 30d, 12h, 90m or 45s";
    let (n, unit) = number_and_unit(text, WHAT)?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("`{}` is not {WHAT}", text.trim())),
    };
    Ok(Duration::from_secs(n.saturating_mul(seconds)))
}

/// `500MB`, `2GiB`, `1024` (bytes); KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024.
pub fn parse_size(text: &str) -> Result<u64, String> {
    const WHAT: &str = "a size: write 500MB, 2GiB or a number of bytes";
    let (n, unit) = number_and_unit(text, WHAT)?;
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000_u64.pow(2),
        "g" | "gb" => 1000_u64.pow(3),
        "t" | "tb" => 1000_u64.pow(4),
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(format!("`{}` is not {WHAT}", text.trim())),
    };
    Ok(n.saturating_mul(factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(50 << 20), "50 MiB");
        assert_eq!(age(90_000), "1m");
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert!(parse_size("lots").is_err());
    }
}
