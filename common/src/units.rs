//! Sizes and durations as operators write them in configuration files: `"1MiB"`,
//! `"500ms"`, or a bare integer (bytes, seconds).

use serde::{Deserialize, Deserializer, de};
use std::fmt;
use std::time::Duration;

/// A number of bytes, written as an integer or with a unit (`B`, `KB`, `KiB`, `MB`,
/// `MiB`, `GB`, `GiB`, `TB`, `TiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// A duration, written as an integer number of seconds or with a unit (`ms`, `s`, `m`,
/// `h`, `d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl ByteSize {
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let (number, unit) = split_number(text)?;
        let multiplier: u64 = match unit {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            "TB" => 1_000_000_000_000,
            "TiB" => 1 << 40,
            other => return Err(format!("unknown size unit {other:?} in {text:?}")),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("size {text:?} is too large"))
    }

    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl HumanDuration {
    pub fn parse(text: &str) -> Result<HumanDuration, String> {
        let (number, unit) = split_number(text)?;
        let duration = match unit {
            "ms" => Duration::from_millis(number),
            "" | "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3_600)),
            "d" => Duration::from_secs(number.saturating_mul(86_400)),
            other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
        };
        Ok(HumanDuration(duration))
    }
}

fn split_number(text: &str) -> Result<(u64, &str), String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("{text:?} does not start with a number"));
    }
    let number = text[..digits]
        .parse::<u64>()
        .map_err(|error| format!("{text:?}: {error}"))?;
    Ok((number, text[digits..].trim()))
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        for (size, unit) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if !millis.is_multiple_of(1000) {
            write!(f, "{millis}ms")
        } else {
            write!(f, "{}s", self.0.as_secs())
        }
    }
}

/// Accepts either an integer or a string, handing the string to a parser.
struct IntegerOrText<T> {
    expecting: &'static str,
    from_integer: fn(u64) -> T,
    from_text: fn(&str) -> Result<T, String>,
}

impl<T> de::Visitor<'_> for IntegerOrText<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        Ok((self.from_integer)(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        u64::try_from(value)
            .map(self.from_integer)
            .map_err(|_| E::custom(format!("{value} is negative")))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        (self.from_text)(value).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntegerOrText {
            expecting: "a size such as 1048576 or \"1MiB\"",
            from_integer: ByteSize,
            from_text: ByteSize::parse,
        })
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntegerOrText {
            expecting: "a duration such as 10 (seconds) or \"500ms\"",
            from_integer: |seconds| HumanDuration(Duration::from_secs(seconds)),
            from_text: HumanDuration::parse,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(ByteSize::parse("1MiB"), Ok(ByteSize(1 << 20)));
        assert_eq!(ByteSize::parse("512 KiB"), Ok(ByteSize(512 << 10)));
        assert_eq!(ByteSize::parse("2GB"), Ok(ByteSize(2_000_000_000)));
        assert_eq!(ByteSize::parse("77"), Ok(ByteSize(77)));
        assert!(ByteSize::parse("12XB").unwrap_err().contains("\"XB\""));
        assert!(ByteSize::parse("MiB").is_err());
        assert!(ByteSize::parse("99999999999TiB").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            HumanDuration::parse("500ms").unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            HumanDuration::parse("5m").unwrap().0,
            Duration::from_secs(300)
        );
        assert_eq!(HumanDuration::parse("3").unwrap().0, Duration::from_secs(3));
        assert!(HumanDuration::parse("3 weeks").is_err());
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(ByteSize(1 << 20).to_string(), "1MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(
            HumanDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
    }
}
