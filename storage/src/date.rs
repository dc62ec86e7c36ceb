//! Sale dates and the month a sale counts in.
//!
//! A sale keeps the clock it was made on: its local date and time and its
//! UTC offset. The month it counts in is taken from the local date, as the
//! seed did, so `2023-01-31T23:30:00-05:00` counts in January even though it
//! is already February in UTC. Keeping the offset lets a rebuild redo that.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Timelike};

use crate::error::Rejection;

/// Earliest and latest accepted local years.
pub(crate) const YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

/// Largest UTC offset accepted, as in ISO 8601 practice (real offsets
/// run from -12:00 to +14:00).
const MAX_OFFSET_MINUTES: i16 = 18 * 60;

/// When a sale happened, on the seller's clock, to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SaleDate {
    local: NaiveDateTime,
    offset_minutes: i16,
}

impl SaleDate {
    /// Parses an RFC 3339 time with a UTC offset, such as
    /// `2023-01-31T06:03:17+00:00` or `2023-01-31T06:03:17.250Z`.
    ///
    /// ```
    /// use sales_storage::SaleDate;
    /// let date = SaleDate::parse("2023-01-31T23:30:00-05:00").unwrap();
    /// assert_eq!(date.month().to_string(), "2023-01");
    /// assert!(SaleDate::parse("2023-01-31T23:30:00").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<SaleDate, Rejection> {
        let reject = |rule: &str| Err(Rejection::new("date", text, rule));
        let parsed =
            match DateTime::parse_from_rfc3339(text) {
                Ok(parsed) => parsed,
                Err(_) if lacks_offset(text) => return reject(
                    "has no UTC offset; add one, for example 2023-01-31T06:03:17+00:00",
                ),
                Err(_) => {
                    return reject(
                        "is not an RFC 3339 date and time with a UTC offset, such as \
                     2023-01-31T06:03:17+00:00",
                    )
                }
            };

        let local = parsed.naive_local();
        if local.nanosecond() >= 1_000_000_000 {
            return reject("is a leap second (:60), which is not accepted; use :59");
        }
        if local.nanosecond() % 1_000 != 0 {
            return reject("has more precision than microseconds");
        }
        if !YEARS.contains(&local.year()) {
            return reject(&format!(
                "has year {}; years {} to {} are accepted",
                local.year(),
                YEARS.start(),
                YEARS.end()
            ));
        }

        let offset_minutes = (parsed.offset().local_minus_utc() / 60) as i16;
        if offset_minutes.abs() > MAX_OFFSET_MINUTES {
            return reject("has a UTC offset beyond ±18:00, which no clock uses");
        }
        Ok(SaleDate {
            local,
            offset_minutes,
        })
    }

    /// Rebuilds a date from its stored parts, checking them as parsing does.
    pub(crate) fn from_parts(
        day: NaiveDate,
        second_of_day: u32,
        micros: u32,
        offset_minutes: i16,
    ) -> Option<SaleDate> {
        let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(
            second_of_day,
            micros.checked_mul(1_000)?,
        )?;
        FixedOffset::east_opt(i32::from(offset_minutes) * 60)?;
        Some(SaleDate {
            local: day.and_time(time),
            offset_minutes,
        })
    }

    /// The local calendar day.
    pub fn day(&self) -> NaiveDate {
        self.local.date()
    }

    /// The month the sale counts in.
    pub fn month(&self) -> Month {
        Month::of(self.day())
    }

    /// Seconds since local midnight.
    pub(crate) fn second_of_day(&self) -> u32 {
        self.local.num_seconds_from_midnight()
    }

    /// Microseconds within the second.
    pub(crate) fn micros(&self) -> u32 {
        self.local.nanosecond() / 1_000
    }

    /// Minutes east of UTC.
    pub fn offset_minutes(&self) -> i16 {
        self.offset_minutes
    }
}

impl fmt::Display for SaleDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = FixedOffset::east_opt(i32::from(self.offset_minutes) * 60)
            .ok_or(fmt::Error)?;
        let dated = self
            .local
            .and_local_timezone(offset)
            .single()
            .ok_or(fmt::Error)?;
        write!(f, "{}", dated.format("%Y-%m-%dT%H:%M:%S%.f%:z"))
    }
}

/// True when the text parses as a date and time with no offset at all.
fn lacks_offset(text: &str) -> bool {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .any(|format| NaiveDateTime::parse_from_str(text, format).is_ok())
        || NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// A calendar month, the unit of the monthly statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: u16,
    month: u8,
}

impl Month {
    /// The month a day falls in.
    pub fn of(day: NaiveDate) -> Month {
        Month {
            year: day.year() as u16,
            month: day.month() as u8,
        }
    }

    /// A compact number that sorts like the month: `202301`.
    pub(crate) fn number(self) -> u32 {
        u32::from(self.year) * 100 + u32::from(self.month)
    }

    /// The inverse of [`Month::number`], checked.
    pub(crate) fn from_number(number: u32) -> Option<Month> {
        let (year, month) = (number / 100, number % 100);
        let valid = YEARS.contains(&(year as i32)) && (1..=12).contains(&month);
        valid.then_some(Month {
            year: year as u16,
            month: month as u8,
        })
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month_of(text: &str) -> String {
        SaleDate::parse(text).unwrap().month().to_string()
    }

    #[test]
    fn months_follow_the_sales_own_clock() {
        assert_eq!(month_of("2023-01-31T23:30:00-05:00"), "2023-01");
        assert_eq!(month_of("2023-02-01T00:30:00+01:00"), "2023-02");
        assert_eq!(month_of("2023-01-31T06:03:17Z"), "2023-01");
    }

    #[test]
    fn keeps_unusual_offsets_and_fractions() {
        let date = SaleDate::parse("2023-03-05T10:00:00.123456+05:45").unwrap();
        assert_eq!(date.offset_minutes(), 345);
        assert_eq!(date.to_string(), "2023-03-05T10:00:00.123456+05:45");
    }

    #[test]
    fn minus_zero_offset_means_utc() {
        let date = SaleDate::parse("2023-03-05T10:00:00-00:00").unwrap();
        assert_eq!(date.offset_minutes(), 0);
        assert_eq!(date.to_string(), "2023-03-05T10:00:00+00:00");
    }

    #[test]
    fn stored_parts_round_trip() {
        let date = SaleDate::parse("2024-02-29T23:59:59.000001-09:30").unwrap();
        let rebuilt = SaleDate::from_parts(
            date.day(),
            date.second_of_day(),
            date.micros(),
            date.offset_minutes(),
        );
        assert_eq!(rebuilt, Some(date));
    }

    #[test]
    fn refuses_dates_it_cannot_place() {
        for (text, rule) in [
            ("2023-01-31T06:03:17", "no UTC offset"),
            ("2023-01-31 06:03:17", "no UTC offset"),
            ("2023-01-31", "no UTC offset"),
            ("2023-01-31T24:00:00Z", "RFC 3339"),
            ("2023-12-31T23:59:60Z", "leap second"),
            ("2023-02-30T10:00:00Z", "RFC 3339"),
            ("0000-01-01T00:00:00Z", "year 0"),
            ("10000-01-01T00:00:00Z", "RFC 3339"),
            ("2023-01-31T06:03:17.0000001Z", "microseconds"),
            ("yesterday", "RFC 3339"),
            ("2023-01-31T06:03:17+23:59", "beyond ±18:00"),
            ("", "RFC 3339"),
        ] {
            let rejection = SaleDate::parse(text).expect_err(text);
            assert_eq!(rejection.field, "date");
            assert!(rejection.rule.contains(rule), "{text}: {}", rejection.rule);
        }
    }

    #[test]
    fn month_numbers_round_trip() {
        let month = SaleDate::parse("2023-07-01T00:00:00Z").unwrap().month();
        assert_eq!(Month::from_number(month.number()), Some(month));
        assert_eq!(Month::from_number(202313), None);
    }
}
