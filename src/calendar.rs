//! The working-day calendar behind every deadline the standards count in working days
//! (AY-8.5.4: rectification within 10 working days, one extension of at most 10; AY-8.2.2:
//! review within 5): weekends, public holidays, and the adjusted working days (调休) that
//! China moves onto weekends around them, all in the platform's local time zone.

use std::collections::BTreeSet;

use time::{Date, Duration, Month, OffsetDateTime, UtcOffset, Weekday};

use crate::config::CalendarConfig;

/// The longest stretch without a working day we accept, so a misconfigured calendar cannot
/// make a deadline computation loop forever.
const MAX_GAP_DAYS: u32 = 60;

/// Working days in one time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    offset: UtcOffset,
    weekend: [bool; 7],
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.splitn(3, '-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

/// Parses `+HH:MM` / `-HH:MM`.
pub fn parse_offset(s: &str) -> Option<UtcOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1i8, s.get(1..)?),
        b'-' => (-1i8, s.get(1..)?),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

fn weekday_index(w: Weekday) -> usize {
    usize::from(w.number_days_from_monday())
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().as_str() {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

impl Calendar {
    /// Builds the calendar from `[calendar]`; the error names the bad entry.
    pub fn from_config(c: &CalendarConfig) -> Result<Self, String> {
        let offset =
            parse_offset(&c.utc_offset).ok_or_else(|| format!("utc_offset '{}' is not +HH:MM", c.utc_offset))?;
        let mut weekend = [false; 7];
        for name in &c.weekend {
            let day = parse_weekday(name).ok_or_else(|| format!("weekend: '{name}' is not a weekday name"))?;
            if let Some(slot) = weekend.get_mut(weekday_index(day)) {
                *slot = true;
            }
        }
        if weekend.iter().all(|w| *w) {
            return Err("weekend: at least one day of the week must be a working day".into());
        }
        let dates = |list: &[String], what: &str| {
            list.iter()
                .map(|s| parse_date(s).ok_or_else(|| format!("{what}: '{s}' is not a YYYY-MM-DD date")))
                .collect::<Result<BTreeSet<_>, _>>()
        };
        let holidays = dates(&c.holidays, "holidays")?;
        let workdays = dates(&c.workdays, "workdays")?;
        if let Some(d) = holidays.intersection(&workdays).next() {
            return Err(format!("{d} is both a holiday and an adjusted working day"));
        }
        let cal = Self { offset, weekend, holidays, workdays };
        // No configured stretch may exceed MAX_GAP_DAYS without a working day.
        for h in &cal.holidays {
            if (0..MAX_GAP_DAYS).all(|i| !cal.is_working_day(*h + Duration::days(i64::from(i)))) {
                return Err(format!("holidays: no working day within {MAX_GAP_DAYS} days of {h}"));
            }
        }
        Ok(cal)
    }

    /// The time zone deadlines are counted in.
    pub fn offset(&self) -> UtcOffset {
        self.offset
    }

    /// Whether `d` is a working day: an adjusted working day always is; a holiday never is;
    /// otherwise every day but the weekend.
    pub fn is_working_day(&self, d: Date) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        if self.holidays.contains(&d) {
            return false;
        }
        !self.weekend.get(weekday_index(d.weekday())).copied().unwrap_or(false)
    }

    /// The local date of a unix time.
    pub fn local_date(&self, unix: i64) -> Date {
        OffsetDateTime::from_unix_timestamp(unix)
            .map_or(OffsetDateTime::UNIX_EPOCH, |t| t.to_offset(self.offset))
            .date()
    }

    /// The `n`th working day after `from` (not counting `from` itself).
    pub fn add_working_days(&self, from: Date, n: u32) -> Date {
        let mut d = from;
        let mut left = n;
        let mut gap = 0;
        while left > 0 && gap <= MAX_GAP_DAYS {
            let Some(next) = d.next_day() else { break };
            d = next;
            if self.is_working_day(d) {
                left -= 1;
                gap = 0;
            } else {
                gap += 1;
            }
        }
        d
    }

    /// The last second (local time) of the `n`th working day after the local day of `start`:
    /// a deadline "within n working days" of an event at `start`.
    pub fn deadline(&self, start: i64, n: u32) -> i64 {
        let day = self.add_working_days(self.local_date(start), n);
        let next_midnight = day.next_day().unwrap_or(day).midnight().assume_offset(self.offset);
        next_midnight.unix_timestamp() - 1
    }

    /// Working days from the local day of `from` up to and including the local day of `to`
    /// (0 when `to` is not later).
    pub fn working_days_between(&self, from: i64, to: i64) -> u32 {
        let (mut d, end) = (self.local_date(from), self.local_date(to));
        let mut n = 0;
        while d < end {
            let Some(next) = d.next_day() else { break };
            d = next;
            n += u32::from(self.is_working_day(d));
        }
        n
    }
}

/// RFC 3339 text of a unix time in the calendar's zone, for humans reading deadlines.
pub fn rfc3339(unix: i64, offset: UtcOffset) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.to_offset(offset))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn china_2026() -> Calendar {
        let c = CalendarConfig {
            utc_offset: "+08:00".into(),
            weekend: vec!["saturday".into(), "sunday".into()],
            // National Day week: Oct 1-7 off, Saturday Oct 10 worked instead (an illustration
            // of the shape, not the official schedule).
            holidays: (1..=7).map(|d| format!("2026-10-0{d}")).collect(),
            workdays: vec!["2026-10-10".into()],
        };
        Calendar::from_config(&c).unwrap()
    }

    // AY-8.5.4: ten working days, weekends skipped.
    #[test]
    fn ten_working_days_skip_weekends() {
        let cal = china_2026();
        // Thursday 2026-12-03 -> Fri 4, Mon 7 .. Fri 11, Mon 14 .. Thu 17.
        assert_eq!(cal.add_working_days(date!(2026 - 12 - 03), 10), date!(2026 - 12 - 17));
        // The deadline is the end of that day in China time.
        let start = datetime!(2026-12-03 10:00 +08:00).unix_timestamp();
        assert_eq!(cal.deadline(start, 10), datetime!(2026-12-17 23:59:59 +08:00).unix_timestamp());
        // 23:30 UTC on Dec 3 is already Dec 4 in Beijing: counting starts a day later.
        let late = datetime!(2026-12-03 23:30 UTC).unix_timestamp();
        assert_eq!(cal.deadline(late, 10), datetime!(2026-12-18 23:59:59 +08:00).unix_timestamp());
    }

    // AY-8.5.4: holidays are not working days; adjusted working days are.
    #[test]
    fn holidays_and_adjusted_workdays() {
        let cal = china_2026();
        assert!(!cal.is_working_day(date!(2026 - 10 - 05)));
        assert!(cal.is_working_day(date!(2026 - 10 - 10)), "an adjusted Saturday is worked");
        assert!(!cal.is_working_day(date!(2026 - 10 - 11)));
        // Suspended on Wed Sep 30: Oct 1-7 off, then Thu 8, Fri 9, Sat 10 (adjusted), Mon 12 ...
        assert_eq!(cal.add_working_days(date!(2026 - 09 - 30), 3), date!(2026 - 10 - 10));
        assert_eq!(cal.add_working_days(date!(2026 - 09 - 30), 10), date!(2026 - 10 - 20));
        let from = datetime!(2026-09-30 09:00 +08:00).unix_timestamp();
        let to = datetime!(2026-10-12 09:00 +08:00).unix_timestamp();
        assert_eq!(cal.working_days_between(from, to), 4);
    }

    #[test]
    fn bad_config_is_named() {
        let mut c = CalendarConfig {
            utc_offset: "+08:00".into(),
            weekend: vec!["saturday".into()],
            holidays: vec!["2026-13-01".into()],
            workdays: vec![],
        };
        assert!(Calendar::from_config(&c).unwrap_err().contains("holidays"));
        c.holidays = vec![];
        c.utc_offset = "8".into();
        assert!(Calendar::from_config(&c).unwrap_err().contains("utc_offset"));
        c.utc_offset = "-05:30".into();
        c.weekend =
            ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"].map(String::from).to_vec();
        assert!(Calendar::from_config(&c).unwrap_err().contains("weekend"));
        assert_eq!(parse_offset("-05:30"), UtcOffset::from_hms(-5, -30, 0).ok());
    }
}
