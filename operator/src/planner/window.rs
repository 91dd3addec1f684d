//! Maintenance windows: whether one is open at an instant, and when it next opens, in the
//! window's own time zone (daylight-saving changes included).

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use kubelift_crds::{MaintenanceWindow, Weekday};

/// Whether the window is open at `now`, or when it next opens. `None` when the window cannot
/// be evaluated (invalid; preflight reports it).
#[must_use]
pub fn next_opening(window: &MaintenanceWindow, now: Timestamp) -> Option<Opening> {
    let tz = TimeZone::get(&window.time_zone).ok()?;
    let (start, end) = (parse_time(&window.start)?, parse_time(&window.end)?);
    let local = now.to_zoned(tz.clone());
    let today = local.date();

    if is_open(window, today, local.time(), start, end) {
        return Some(Opening::Now);
    }
    (0..=8)
        .filter_map(|days| today.checked_add(days.days()).ok())
        .filter(|date| allowed(window, *date))
        .filter_map(|date| date.to_datetime(start).to_zoned(tz.clone()).ok())
        .map(|zoned| zoned.timestamp())
        .find(|opening| *opening > now)
        .map(Opening::At)
}

/// When a window is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// Open now.
    Now,
    /// Closed; opens at this instant.
    At(Timestamp),
}

fn is_open(window: &MaintenanceWindow, today: Date, time: Time, start: Time, end: Time) -> bool {
    if start == end {
        return allowed(window, today);
    }
    if start < end {
        return allowed(window, today) && time >= start && time < end;
    }
    let yesterday = today.yesterday().ok();
    (allowed(window, today) && time >= start)
        || (yesterday.is_some_and(|day| allowed(window, day)) && time < end)
}

fn allowed(window: &MaintenanceWindow, date: Date) -> bool {
    window.days.is_empty() || window.days.contains(&weekday(date))
}

fn weekday(date: Date) -> Weekday {
    match date.weekday() {
        jiff::civil::Weekday::Monday => Weekday::Mon,
        jiff::civil::Weekday::Tuesday => Weekday::Tue,
        jiff::civil::Weekday::Wednesday => Weekday::Wed,
        jiff::civil::Weekday::Thursday => Weekday::Thu,
        jiff::civil::Weekday::Friday => Weekday::Fri,
        jiff::civil::Weekday::Saturday => Weekday::Sat,
        jiff::civil::Weekday::Sunday => Weekday::Sun,
    }
}

fn parse_time(text: &str) -> Option<Time> {
    let (hours, minutes) = text.split_once(':')?;
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return None;
    }
    Time::new(hours.parse().ok()?, minutes.parse().ok()?, 0, 0).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on bad fixtures")]

    use super::*;

    fn window(days: Vec<Weekday>, start: &str, end: &str, tz: &str) -> MaintenanceWindow {
        MaintenanceWindow {
            days,
            start: start.to_owned(),
            end: end.to_owned(),
            time_zone: tz.to_owned(),
        }
    }

    #[test]
    fn window_in_berlin_is_open_at_local_night_time() {
        let night = window(vec![], "22:00", "04:00", "Europe/Berlin");
        let utc_midnight: Timestamp = "2026-01-05T23:30:00Z".parse().unwrap();
        assert_eq!(next_opening(&night, utc_midnight), Some(Opening::Now));
    }

    #[test]
    fn closed_window_reports_its_next_opening_on_an_allowed_day() {
        let saturdays = window(vec![Weekday::Sat], "02:00", "05:00", "UTC");
        let monday: Timestamp = "2026-01-05T12:00:00Z".parse().unwrap();
        let opening: Timestamp = "2026-01-10T02:00:00Z".parse().unwrap();
        assert_eq!(next_opening(&saturdays, monday), Some(Opening::At(opening)));
    }
}
