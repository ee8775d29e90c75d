//! RFC 3339 date-times (section 5.6), read to the letter of the grammar.
//!
//! jiff's parser is not used for requests and events because it takes both more and less than
//! the RFC: offsets up to ±25:59 and times without seconds, but not years beyond its own range
//! (9999-12-31 late in the day) nor more than nine fractional digits. Clients send what the RFC
//! allows, and the mock must answer them as the real API would.

/// What makes a string not an RFC 3339 date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rfc3339Error {
    #[error("expected YYYY-MM-DDThh:mm:ss[.digits] then Z, +hh:mm or -hh:mm")]
    Syntax,
    #[error("month {0:02} is not 01 to 12")]
    Month(u32),
    #[error("day {day:02} is not in {year:04}-{month:02}")]
    Day { year: u32, month: u32, day: u32 },
    #[error("hour {0:02} is not 00 to 23")]
    Hour(u32),
    #[error("minute {0:02} is not 00 to 59")]
    Minute(u32),
    #[error("second {0:02} is not 00 to 60")]
    Second(u32),
    #[error("offset hour {0:02} is not 00 to 23")]
    OffsetHour(u32),
    #[error("offset minute {0:02} is not 00 to 59")]
    OffsetMinute(u32),
}

/// Why a string is not a time the mock's clock, `--now` or `--issued-at` can take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("{0:?} is not an RFC 3339 date-time: {1}")]
    NotRfc3339(String, Rfc3339Error),
    #[error("{0:?} is after {max}, the last instant a timestamp holds", max = jiff::Timestamp::MAX)]
    Range(String),
}

/// An RFC 3339 date-time as a `jiff::Timestamp`, read as `start_time` and
/// `end_time` are: the admin clock's `now`, `serve --now` and `token --issued-at` take what the
/// API takes, not jiff's looser forms (a space for `T`, no seconds, `[UTC]` annotations,
/// offsets up to ±25:59). Only the last hours of 9999, past jiff's range, are refused besides.
pub fn parse_timestamp(s: &str) -> Result<jiff::Timestamp, TimestampError> {
    let ns = parse(s).map_err(|e| TimestampError::NotRfc3339(s.to_owned(), e))?;
    jiff::Timestamp::from_nanosecond(ns).map_err(|_| TimestampError::Range(s.to_owned()))
}

/// `#[serde(default, deserialize_with = "…")]` for an optional [`parse_timestamp`] field.
pub fn deserialize_timestamp_opt<'de, D>(d: D) -> Result<Option<jiff::Timestamp>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize as _;
    Option::<String>::deserialize(d)?
        .map(|s| parse_timestamp(&s).map_err(serde::de::Error::custom))
        .transpose()
}

const NS_PER_SEC: i128 = 1_000_000_000;

/// Nanoseconds since the Unix epoch, exact for every year the RFC allows (0000 to 9999).
///
/// Fractional digits past the ninth are dropped (truncated, never rounded up, so an instant
/// never moves past the next second). A leap second (`:60`) is the last nanosecond of its
/// minute, so it sorts after every other instant of that minute and before the next one.
pub fn parse(s: &str) -> Result<i128, Rfc3339Error> {
    use Rfc3339Error as E;
    let b = s.as_bytes();
    let num = |at: usize, len: usize| -> Result<u32, Rfc3339Error> {
        let digits = b.get(at..at + len).ok_or(E::Syntax)?;
        digits.iter().try_fold(0, |n, d| match d {
            b'0'..=b'9' => Ok(n * 10 + u32::from(d - b'0')),
            _ => Err(E::Syntax),
        })
    };
    let punct = |at: usize, allowed: &[u8]| match b.get(at) {
        Some(c) if allowed.contains(c) => Ok(()),
        _ => Err(E::Syntax),
    };
    punct(4, b"-")?;
    punct(7, b"-")?;
    punct(10, b"Tt")?;
    punct(13, b":")?;
    punct(16, b":")?;
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, mut second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut nanos = 0;
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(E::Syntax);
        }
        nanos = b[at..at + digits]
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(9)
            .fold(0, |n, d| n * 10 + u32::from(d - b'0'));
        at += digits;
    }
    let offset_secs = match &b[at..] {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if hours > 23 {
                return Err(E::OffsetHour(hours));
            }
            if minutes > 59 {
                return Err(E::OffsetMinute(minutes));
            }
            let secs = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return Err(E::Syntax),
    };
    if !(1..=12).contains(&month) {
        return Err(E::Month(month));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(E::Day { year, month, day });
    }
    if hour > 23 {
        return Err(E::Hour(hour));
    }
    if minute > 59 {
        return Err(E::Minute(minute));
    }
    if second > 60 {
        return Err(E::Second(second));
    }
    if second == 60 {
        (second, nanos) = (59, 999_999_999);
    }
    let secs = days_from_civil(year, month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset_secs;
    Ok(i128::from(secs) * NS_PER_SEC + i128::from(nanos))
}

/// `ns` clamped to what the store and cursors hold (64-bit nanoseconds: 1677-09-21 to
/// 2262-04-11), so that an earlier instant compares as the earliest one and a later as the
/// latest; nothing the mock's clock can reach (1684 to 2255) is moved.
pub fn clamp(ns: i128) -> i64 {
    i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
/// `days_from_civil`), for years 0 to 9999 alike.
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let (year, month, day) = (i64::from(year), i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use jiff::tz::Offset;
    use proptest::prelude::*;

    fn ns(s: &str) -> i128 {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_rfcs_extremes_are_read_exactly() {
        assert_eq!(ns("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ns("1970-01-01t00:00:00.5z"), 500_000_000);
        assert_eq!(ns("1970-01-01T01:00:00+01:00"), 0);
        assert_eq!(ns("1969-12-31T23:00:00-01:00"), 0);
        assert_eq!(ns("1970-01-01T00:00:00-00:00"), 0);
        // Digits past nanoseconds are dropped, not rounded.
        assert_eq!(ns("1970-01-01T00:00:00.1234567899999Z"), 123_456_789);
        assert_eq!(ns("1970-01-01T00:00:00.000000000999Z"), 0);
        let first: Timestamp = "0001-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(ns("0001-01-01T00:00:00Z"), first.as_nanosecond());
        // Year 0 is a leap year (divisible by 400); jiff's Timestamp cannot hold it.
        assert_eq!(
            ns("0000-03-01T00:00:00Z") - ns("0000-02-28T00:00:00Z"),
            2 * 86_400 * NS_PER_SEC
        );
        assert_eq!(
            ns("0001-01-01T00:00:00Z") - ns("0000-01-01T00:00:00Z"),
            366 * 86_400 * NS_PER_SEC
        );
        // Ten thousand years are 25 cycles of 146,097 days.
        assert_eq!(
            ns("9999-12-31T23:59:59.999999999Z") + 1,
            ns("0000-01-01T00:00:00Z") + 25 * 146_097 * 86_400 * NS_PER_SEC
        );
        // A leap second sorts after the rest of its minute, before the next.
        let leap = ns("2016-12-31T23:59:60Z");
        assert!(ns("2016-12-31T23:59:59.999999998Z") < leap);
        assert!(leap < ns("2017-01-01T00:00:00Z"));
        assert_eq!(ns("2016-12-31T23:59:60.5Z"), leap);
    }

    #[test]
    fn what_the_rfc_refuses_is_refused() {
        use Rfc3339Error as E;
        for (s, why) in [
            ("2024-05-14T09:12:44+25:00", E::OffsetHour(25)),
            ("2024-05-14T09:12:44+24:00", E::OffsetHour(24)),
            ("2024-05-14T09:12:44-05:60", E::OffsetMinute(60)),
            ("2024-13-14T09:12:44Z", E::Month(13)),
            ("2024-00-14T09:12:44Z", E::Month(0)),
            (
                "2023-02-29T09:12:44Z",
                E::Day {
                    year: 2023,
                    month: 2,
                    day: 29,
                },
            ),
            (
                "1900-02-29T00:00:00Z",
                E::Day {
                    year: 1900,
                    month: 2,
                    day: 29,
                },
            ),
            (
                "2024-04-31T00:00:00Z",
                E::Day {
                    year: 2024,
                    month: 4,
                    day: 31,
                },
            ),
            (
                "2024-04-00T00:00:00Z",
                E::Day {
                    year: 2024,
                    month: 4,
                    day: 0,
                },
            ),
            ("2024-05-14T24:00:00Z", E::Hour(24)),
            ("2024-05-14T09:60:00Z", E::Minute(60)),
            ("2024-05-14T09:12:61Z", E::Second(61)),
        ] {
            assert_eq!(parse(s), Err(why), "{s}");
        }
        for s in [
            "",
            "2024-05-14",
            "2024-05-14T09:12:44",
            "2024-05-14T09:12Z",
            "2024-05-14 09:12:44Z",
            "2024-05-14T09:12:44.Z",
            "2024-05-14T09:12:44,5Z",
            "2024-05-14T09:12:44+0530",
            "2024-05-14T09:12:44+05",
            "2024-05-14T09:12:44+05:30:00",
            "2024-05-14T09:12:44Z[UTC]",
            "2024-05-14T09:12:44ZZ",
            "2024-5-14T09:12:44Z",
            "+2024-05-14T09:12:44Z",
            "10000-01-01T00:00:00Z",
            "2024-05-14T09:12:44.5５Z",
            "yesterday",
        ] {
            assert_eq!(parse(s), Err(E::Syntax), "{s}");
        }
    }

    #[test]
    fn clamping_keeps_every_instant_the_store_holds() {
        assert_eq!(clamp(0), 0);
        assert_eq!(clamp(i128::from(i64::MIN)), i64::MIN);
        assert_eq!(clamp(ns("0000-01-01T00:00:00Z")), i64::MIN);
        assert_eq!(clamp(ns("9999-12-31T23:59:59Z")), i64::MAX);
    }

    #[test]
    fn timestamps_are_read_as_rfc_3339_only() {
        let at = |s: &str| parse_timestamp(s).unwrap_or_else(|e| panic!("{e}"));
        let noon: Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
        assert_eq!(at("2026-01-15T12:00:00Z"), noon);
        assert_eq!(at("2026-01-15t13:30:00.000+01:30"), noon);
        assert_eq!(at("2026-01-15T12:00:00z"), noon);
        // Forms jiff takes that RFC 3339 does not.
        for s in [
            "2026-01-15 12:00:00Z",
            "2026-01-15T12:00Z",
            "2026-01-15T12:00:00Z[UTC]",
            "2026-01-15T12:00:00+00:00[Europe/Paris]",
            "2026-01-15T12:00:00+25:00",
            "2026-01-15T12:00:00+0000",
            "20260115T120000Z",
        ] {
            assert!(s.parse::<Timestamp>().is_ok(), "jiff takes {s}");
            let e = parse_timestamp(s).unwrap_err();
            assert!(matches!(e, TimestampError::NotRfc3339(..)), "{s}: {e}");
            assert!(
                e.to_string().contains("is not an RFC 3339 date-time"),
                "{e}"
            );
        }
        assert_eq!(
            parse_timestamp("9999-12-31T23:59:59Z"),
            Err(TimestampError::Range("9999-12-31T23:59:59Z".into()))
        );
    }

    proptest! {
        /// Agrees with jiff wherever jiff's range and precision reach.
        #[test]
        fn agrees_with_jiff(
            secs in -62_135_596_800i64..253_402_207_200,
            nanos in 0u32..1_000_000_000,
            offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59i32),
            lowercase: bool,
        ) {
            let ts = Timestamp::new(secs, nanos as i32).unwrap();
            let offset = Offset::from_seconds(offset_minutes * 60).unwrap();
            let mut text = ts.display_with_offset(offset).to_string();
            if lowercase {
                text = text.to_lowercase();
            }
            prop_assert_eq!(parse(&text), Ok(ts.as_nanosecond()), "{}", text);
        }
    }
}
