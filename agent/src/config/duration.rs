//! Durations written the way Prometheus writes them (`30s`, `1m30s`, `2h`, `500ms`).

use std::fmt;
use std::time::Duration as StdDuration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration in Prometheus notation: one or more `<integer><unit>` terms with units in
/// decreasing order among `y w d h m s ms`, or `0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub StdDuration);

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Self(StdDuration::from_secs(s))
    }

    pub const fn from_millis(ms: u64) -> Self {
        Self(StdDuration::from_millis(ms))
    }

    pub fn as_std(self) -> StdDuration {
        self.0
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "0" {
            return Ok(Self::default());
        }
        if s.is_empty() {
            return Err("empty duration string".into());
        }
        let invalid =
            || format!("not a valid duration string: {s:?} (expected e.g. 30s, 1m30s, 500ms)");
        let mut rest = s;
        let mut total_ms: u64 = 0;
        // Index into UNITS of the last unit used, so units must strictly decrease.
        let mut last_unit: Option<usize> = None;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
            rest = &rest[digits..];
            // "ms" must be tried before "m".
            let (idx, unit_len) = if rest.starts_with("ms") {
                (6, 2)
            } else {
                let c = rest.chars().next().ok_or_else(invalid)?;
                let idx = UNITS[..6]
                    .iter()
                    .position(|(u, _)| u.starts_with(c))
                    .ok_or_else(invalid)?;
                (idx, 1)
            };
            if last_unit.is_some_and(|l| idx <= l) {
                return Err(invalid());
            }
            last_unit = Some(idx);
            rest = &rest[unit_len..];
            total_ms = n
                .checked_mul(UNITS[idx].1)
                .and_then(|v| total_ms.checked_add(v))
                .ok_or_else(|| format!("duration out of range: {s:?}"))?;
        }
        Ok(Self(StdDuration::from_millis(total_ms)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, factor) in UNITS {
            if ms >= factor {
                write!(f, "{}{unit}", ms / factor)?;
                ms %= factor;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_notation() {
        assert_eq!(Duration::parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(Duration::parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            Duration::parse("1h500ms"),
            Ok(Duration::from_millis(3_600_500))
        );
        assert_eq!(Duration::parse("0"), Ok(Duration::default()));
        assert_eq!(Duration::parse("1w"), Ok(Duration::from_secs(7 * 86400)));
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        for bad in ["", "10", "s", "1.5s", "1s1m", "1m1m", "-1s", "1x", "10 s"] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn displays_canonically() {
        assert_eq!(Duration::from_secs(90).to_string(), "1m30s");
        assert_eq!(Duration::from_millis(1500).to_string(), "1s500ms");
        assert_eq!(Duration::default().to_string(), "0s");
    }
}
