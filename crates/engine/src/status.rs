//! Human-readable status and durations as Docker prints them in `ps`
//! (moby `container/state.go` `String()`, go-units `HumanDuration`).

use chrono::{DateTime, Utc};

use crate::state::{ContainerState, Status};

/// go-units `HumanDuration`: "Less than a second", "3 seconds", "About a minute", ...
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    let mins = d.num_minutes();
    let hours = d.num_hours();
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if mins == 1 {
        "About a minute".into()
    } else if mins < 60 {
        format!("{mins} minutes")
    } else if hours.abs() == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    t.map(|t| human_duration(now - t)).unwrap_or_default()
}

/// The STATUS column: `Up 3 seconds`, `Exited (1) 2 seconds ago`, `Restarting (1) 1 second ago`,
/// `Created`.
pub fn status_line(s: &ContainerState, now: DateTime<Utc>) -> String {
    match s.status {
        Status::Running => format!("Up {}", ago(s.started_at, now)),
        Status::Restarting => {
            format!(
                "Restarting ({}) {} ago",
                s.exit_code,
                ago(s.finished_at, now)
            )
        }
        Status::Exited => format!("Exited ({}) {} ago", s.exit_code, ago(s.finished_at, now)),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(
            human_duration(Duration::milliseconds(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::seconds(1)), "1 second");
        assert_eq!(human_duration(Duration::seconds(3)), "3 seconds");
        assert_eq!(human_duration(Duration::seconds(61)), "About a minute");
        assert_eq!(human_duration(Duration::minutes(5)), "5 minutes");
        assert_eq!(human_duration(Duration::minutes(61)), "About an hour");
        assert_eq!(human_duration(Duration::hours(5)), "5 hours");
        assert_eq!(human_duration(Duration::days(3)), "3 days");
    }

    #[test]
    fn status_lines() {
        let now = Utc::now();
        let mut s = ContainerState::created();
        assert_eq!(status_line(&s, now), "Created");
        s.status = Status::Running;
        s.started_at = Some(now - Duration::seconds(3));
        assert_eq!(status_line(&s, now), "Up 3 seconds");
        s.status = Status::Exited;
        s.exit_code = 1;
        s.finished_at = Some(now - Duration::seconds(2));
        assert_eq!(status_line(&s, now), "Exited (1) 2 seconds ago");
    }
}
