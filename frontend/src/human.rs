//! Numbers and times for people: byte counts in decimal SI units (kB, MB, GB: powers of
//! 1,000, said in a legend where they are shown), rates in bit/s, and ages relative to now
//! ("3 分前", "3 min ago") with the absolute local time kept for a tooltip.

use crate::i18n::{Key, Lang, tf};

fn scaled(v: f64, units: [&str; 4]) -> String {
    let (div, unit) = if v >= 1e9 {
        (1e9, units[3])
    } else if v >= 1e6 {
        (1e6, units[2])
    } else if v >= 1e3 {
        (1e3, units[1])
    } else {
        return format!("{v:.0} {}", units[0]);
    };
    let x = v / div;
    // Whole numbers without a decimal (a chart's axis: "20 Mbit/s").
    if x >= 100.0 || (x - x.round()).abs() < 0.05 {
        format!("{x:.0} {unit}")
    } else {
        format!("{x:.1} {unit}")
    }
}

/// Bytes: B, kB, MB, GB (powers of 1,000).
pub fn bytes(b: f64) -> String {
    scaled(b.max(0.0), ["B", "kB", "MB", "GB"])
}

/// A rate given in bytes per second, written in bit/s, kbit/s, Mbit/s, Gbit/s.
pub fn bit_rate(bytes_per_sec: f64) -> String {
    scaled(
        (bytes_per_sec * 8.0).max(0.0),
        ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"],
    )
}

/// How long ago `secs_ago` seconds was, in `lang`.
pub fn ago(lang: Lang, secs_ago: f64) -> String {
    let s = secs_ago.max(0.0);
    let n = |v: f64| format!("{:.0}", v.floor());
    if s < 1.0 {
        crate::i18n::t(lang, Key::JustNow).to_owned()
    } else if s < 60.0 {
        tf(lang, Key::AgoSeconds, &[("n", &n(s))])
    } else if s < 3600.0 {
        tf(lang, Key::AgoMinutes, &[("n", &n(s / 60.0))])
    } else if s < 86_400.0 {
        tf(lang, Key::AgoHours, &[("n", &n(s / 3600.0))])
    } else {
        tf(lang, Key::AgoDays, &[("n", &n(s / 86_400.0))])
    }
}

/// The rate between two samples of a byte counter, in bytes per second; `None` when the time
/// did not advance or the counter went back (a restarted worker).
pub fn rate(t0: f64, b0: f64, t1: f64, b1: f64) -> Option<f64> {
    (t1 > t0 && b1 >= b0).then(|| (b1 - b0) / (t1 - t0))
}

/// A "nice" upper bound for a chart axis: 1, 2 or 5 times a power of ten, at least `v`.
pub fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_rates_are_decimal_si() {
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes(999.0), "999 B");
        assert_eq!(bytes(1_500.0), "1.5 kB");
        assert_eq!(bytes(404_104_559.0), "404 MB");
        assert_eq!(bytes(2_000_000_000.0), "2 GB");
        assert_eq!(bit_rate(125.0), "1 kbit/s");
        assert_eq!(bit_rate(190.0), "1.5 kbit/s");
        assert_eq!(bit_rate(12.0), "96 bit/s");
        assert_eq!(bit_rate(1_250_000.0), "10 Mbit/s");
    }

    #[test]
    fn ages_are_relative_in_both_languages() {
        assert_eq!(ago(Lang::En, 12.4), "12 s ago");
        assert_eq!(ago(Lang::Ja, 12.4), "12 秒前");
        assert_eq!(ago(Lang::Ja, 185.0), "3 分前");
        assert_eq!(ago(Lang::En, 185.0), "3 min ago");
        assert_eq!(ago(Lang::Ja, 7300.0), "2 時間前");
        assert_eq!(ago(Lang::Ja, 200_000.0), "2 日前");
        assert_eq!(ago(Lang::Ja, -3.0), "たった今");
    }

    #[test]
    fn rates_come_from_successive_counter_samples() {
        assert_eq!(rate(0.0, 1000.0, 2.0, 3000.0), Some(1000.0));
        assert_eq!(rate(2.0, 3000.0, 2.0, 4000.0), None);
        assert_eq!(rate(0.0, 3000.0, 2.0, 10.0), None);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
    }
}
