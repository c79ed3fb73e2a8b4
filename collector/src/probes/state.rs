//! The state of one monitor and how check results move it: pure logic, with the time
//! passed in, so every rule below is tested without sockets or sleeping.
//!
//! - A check finds UP, DEGRADED or DOWN. The monitor's *confirmed* state changes to a
//!   worse one only after `retries + 1` consecutive checks at least that bad; in between
//!   it shows PENDING (and is checked every `retry_interval`). A better result is
//!   believed at once: one good check ends an outage.
//! - Before its first confirmed state a monitor is PENDING. Becoming UP from there is
//!   not news and sends nothing; becoming DOWN or DEGRADED is.
//! - Each confirmed change yields exactly one [`Event::Changed`]; the outage's length is
//!   measured from the first failed check, not from the confirmation.
//! - While DOWN, every `remind_every`-th further failed check yields a reminder.
//! - Inside a maintenance window the monitor shows MAINTENANCE, retries are forgotten
//!   and nothing is notified; afterwards the next check decides as usual.
//! - A certificate's expiry yields one warning per threshold (21, 14, 7 days by
//!   default). A new certificate (another expiry date) starts the thresholds over.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

pub use garonne_common::probe::{Outcome, Status};

/// The rules of one monitor the state machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub retries: u32,
    pub remind_every: u32,
    /// Descending.
    pub cert_expiry_days: Vec<u32>,
}

/// Something to tell people about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Changed {
        from: Status,
        to: Status,
        reason: Option<String>,
        /// How long the previous confirmed state lasted (the outage, on recovery).
        lasted: SignedDuration,
    },
    Reminder {
        since: Timestamp,
        /// Failed checks since the monitor went down.
        checks: u32,
        reason: Option<String>,
    },
    CertificateExpiring {
        not_after: Timestamp,
        days_left: i64,
        threshold: u32,
    },
}

/// Persisted between restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorState {
    /// What the monitor shows now, and since when.
    pub status: Status,
    pub since: Timestamp,
    /// Last confirmed UP, DEGRADED or DOWN; PENDING before the first.
    pub confirmed: Status,
    pub confirmed_since: Timestamp,
    /// Consecutive checks worse than `confirmed`, and when the first of them ran.
    pub failures: u32,
    pub failing_since: Option<Timestamp>,
    /// Failed checks since DOWN was confirmed, for reminders.
    pub down_checks: u32,
    pub last_check: Option<Timestamp>,
    pub last_reason: Option<String>,
    pub cert_not_after: Option<Timestamp>,
    /// Thresholds (days) already warned about for `cert_not_after`.
    pub cert_warned: Vec<u32>,
}

impl MonitorState {
    pub fn new(now: Timestamp) -> MonitorState {
        MonitorState {
            status: Status::Pending,
            since: now,
            confirmed: Status::Pending,
            confirmed_since: now,
            failures: 0,
            failing_since: None,
            down_checks: 0,
            last_check: None,
            last_reason: None,
            cert_not_after: None,
            cert_warned: Vec::new(),
        }
    }

    /// Whether checks currently run at the retry interval.
    pub fn retrying(&self) -> bool {
        self.failures > 0
    }

    /// Applies one check result taken at `now`.
    pub fn observe(
        &mut self,
        outcome: &Outcome,
        in_maintenance: bool,
        rules: &Rules,
        now: Timestamp,
    ) -> Vec<Event> {
        self.last_check = Some(now);
        self.last_reason = outcome.reason.clone();
        if in_maintenance {
            self.failures = 0;
            self.failing_since = None;
            self.show(Status::Maintenance, now);
            return Vec::new();
        }
        if self.status == Status::Maintenance {
            self.show(self.confirmed, now);
        }
        let mut events = self.apply_status(outcome, rules, now);
        events.extend(self.check_certificate(outcome.cert_not_after, rules, now));
        events
    }

    fn show(&mut self, status: Status, now: Timestamp) {
        if self.status != status {
            self.status = status;
            self.since = now;
        }
    }

    fn apply_status(&mut self, outcome: &Outcome, rules: &Rules, now: Timestamp) -> Vec<Event> {
        let observed = outcome.status;
        let current = self.confirmed;
        if current == Status::Pending && observed == Status::Up {
            self.confirm(Status::Up, now, now);
            return Vec::new();
        }
        if current != Status::Pending && observed.severity() < current.severity() {
            return vec![self.change(observed, outcome, now, now)];
        }
        if current != Status::Pending && observed == current {
            self.failures = 0;
            self.failing_since = None;
            self.status = current;
            self.since = self.confirmed_since;
            return self.remind(outcome, rules);
        }
        // Worse than confirmed (or failing before any confirmation).
        self.failures += 1;
        let started = *self.failing_since.get_or_insert(now);
        if self.failures > rules.retries {
            return vec![self.change(observed, outcome, started, now)];
        }
        self.show(Status::Pending, now);
        Vec::new()
    }

    fn change(
        &mut self,
        to: Status,
        outcome: &Outcome,
        started: Timestamp,
        now: Timestamp,
    ) -> Event {
        let from = self.confirmed;
        let lasted = started.duration_since(self.confirmed_since);
        self.confirm(to, started, now);
        Event::Changed {
            from,
            to,
            reason: outcome.reason.clone(),
            lasted,
        }
    }

    fn confirm(&mut self, status: Status, started: Timestamp, _now: Timestamp) {
        self.confirmed = status;
        self.confirmed_since = started;
        self.status = status;
        self.since = started;
        self.failures = 0;
        self.failing_since = None;
        self.down_checks = 0;
    }

    fn remind(&mut self, outcome: &Outcome, rules: &Rules) -> Vec<Event> {
        if self.confirmed != Status::Down {
            return Vec::new();
        }
        self.down_checks += 1;
        if rules.remind_every == 0 || !self.down_checks.is_multiple_of(rules.remind_every) {
            return Vec::new();
        }
        vec![Event::Reminder {
            since: self.confirmed_since,
            checks: self.down_checks,
            reason: outcome.reason.clone(),
        }]
    }

    fn check_certificate(
        &mut self,
        not_after: Option<Timestamp>,
        rules: &Rules,
        now: Timestamp,
    ) -> Option<Event> {
        let not_after = not_after?;
        if self.cert_not_after != Some(not_after) {
            self.cert_not_after = Some(not_after);
            self.cert_warned.clear();
        }
        let left = not_after.duration_since(now);
        let days_left = left.as_secs().div_euclid(86_400);
        let crossed: Vec<u32> = rules
            .cert_expiry_days
            .iter()
            .copied()
            .filter(|threshold| days_left < i64::from(*threshold))
            .collect();
        let newest = crossed.iter().copied().min()?;
        if self.cert_warned.contains(&newest) {
            return None;
        }
        for threshold in crossed {
            if !self.cert_warned.contains(&threshold) {
                self.cert_warned.push(threshold);
            }
        }
        Some(Event::CertificateExpiring {
            not_after,
            days_left,
            threshold: newest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "2026-03-01T00:00:00Z";

    struct Clock(Timestamp);

    impl Clock {
        fn new() -> Clock {
            Clock(START.parse().unwrap())
        }

        /// Advances by `seconds` and returns the new time.
        fn tick(&mut self, seconds: i64) -> Timestamp {
            self.0 += SignedDuration::from_secs(seconds);
            self.0
        }
    }

    fn rules(retries: u32, remind_every: u32) -> Rules {
        Rules {
            retries,
            remind_every,
            cert_expiry_days: vec![21, 14, 7],
        }
    }

    fn outcome(status: Status) -> Outcome {
        Outcome {
            status,
            reason: (status != Status::Up).then(|| format!("{} reason", status.as_str())),
            cert_not_after: None,
        }
    }

    fn changes(events: &[Event]) -> Vec<(Status, Status)> {
        events
            .iter()
            .filter_map(|event| match event {
                Event::Changed { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn first_up_is_silent_and_retries_absorb_failures() {
        let mut clock = Clock::new();
        let mut state = MonitorState::new(clock.0);
        let rules = rules(2, 0);
        assert!(
            state
                .observe(&outcome(Status::Up), false, &rules, clock.tick(60))
                .is_empty()
        );
        assert_eq!(state.status, Status::Up);

        let first_failure = clock.tick(60);
        assert!(
            state
                .observe(&outcome(Status::Down), false, &rules, first_failure)
                .is_empty()
        );
        assert_eq!(
            (state.status, state.since),
            (Status::Pending, first_failure)
        );
        assert!(state.retrying());
        assert!(
            state
                .observe(&outcome(Status::Down), false, &rules, clock.tick(10))
                .is_empty()
        );
        let events = state.observe(&outcome(Status::Down), false, &rules, clock.tick(10));
        assert_eq!(changes(&events), vec![(Status::Up, Status::Down)]);
        assert_eq!((state.status, state.since), (Status::Down, first_failure));
        assert!(!state.retrying());

        // Further failures change nothing.
        for _ in 0..5 {
            assert!(
                state
                    .observe(&outcome(Status::Down), false, &rules, clock.tick(60))
                    .is_empty()
            );
        }
    }

    #[test]
    fn a_failure_followed_by_success_sends_nothing() {
        let mut clock = Clock::new();
        let mut state = MonitorState::new(clock.0);
        let rules = rules(1, 0);
        state.observe(&outcome(Status::Up), false, &rules, clock.tick(60));
        let up_since = state.since;
        assert!(
            state
                .observe(&outcome(Status::Down), false, &rules, clock.tick(60))
                .is_empty()
        );
        assert!(
            state
                .observe(&outcome(Status::Up), false, &rules, clock.tick(10))
                .is_empty()
        );
        assert_eq!((state.status, state.since), (Status::Up, up_since));
        assert_eq!(state.failures, 0);
    }

    #[test]
    fn recovery_reports_the_outage_from_its_first_failure() {
        let mut clock = Clock::new();
        let mut state = MonitorState::new(clock.0);
        let rules = rules(1, 0);
        state.observe(&outcome(Status::Up), false, &rules, clock.tick(60));
        state.observe(&outcome(Status::Down), false, &rules, clock.tick(60));
        state.observe(&outcome(Status::Down), false, &rules, clock.tick(20));
        clock.tick(600);
        let events = state.observe(&outcome(Status::Up), false, &rules, clock.tick(0));
        let [
            Event::Changed {
                from, to, lasted, ..
            },
        ] = events.as_slice()
        else {
            panic!("{events:?}");
        };
        assert_eq!((*from, *to), (Status::Down, Status::Up));
        assert_eq!(*lasted, SignedDuration::from_secs(620));
    }

    #[test]
    fn reminders_come_every_n_failed_checks_while_down() {
        let mut clock = Clock::new();
        let mut state = MonitorState::new(clock.0);
        let rules = rules(0, 3);
        state.observe(&outcome(Status::Up), false, &rules, clock.tick(60));
        let events = state.observe(&outcome(Status::Down), false, &rules, clock.tick(60));
        assert_eq!(changes(&events), vec![(Status::Up, Status::Down)]);
        let mut reminders = Vec::new();
        for check in 1..=7 {
            for event in state.observe(&outcome(Status::Down), false, &rules, clock.tick(60)) {
                if let Event::Reminder { checks, .. } = event {
                    reminders.push((check, checks));
                }
            }
        }
        assert_eq!(reminders, vec![(3, 3), (6, 6)]);
    }

    #[test]
    fn degraded_is_confirmed_like_down_and_improvement_is_immediate() {
        let mut clock = Clock::new();
        let mut state = MonitorState::new(clock.0);
        let rules = rules(1, 0);
        state.observe(&outcome(Status::Up), false, &rules, clock.tick(60));
        assert!(
            state
                .observe(&outcome(Status::Degraded), false, &rules, clock.tick(60))
                .is_empty()
        );
        let events = state.observe(&outcome(Status::Degraded), false, &rules, clock.tick(60));
        assert_eq!(changes(&events), vec![(Status::Up, Status::Degraded)]);
        state.observe(&outcome(Status::Down), false, &rules, clock.tick(60));
        let events = state.observe(&outcome(Status::Down), false, &rules, clock.tick(60));
        assert_eq!(changes(&events), vec![(Status::Degraded, Status::Down)]);
        let events = state.observe(&outcome(Status::Degraded), false, &rules, clock.tick(60));
        assert_eq!(changes(&events), vec![(Status::Down, Status::Degraded)]);
    }

    #[test]
    fn failing_from_the_start_is_reported_once_confirmed() {
        let mut clock = Clock::new();
        let mut state = MonitorState::new(clock.0);
        let rules = rules(1, 0);
        assert!(
            state
                .observe(&outcome(Status::Down), false, &rules, clock.tick(1))
                .is_empty()
        );
        assert_eq!(state.status, Status::Pending);
        let events = state.observe(&outcome(Status::Down), false, &rules, clock.tick(1));
        assert_eq!(changes(&events), vec![(Status::Pending, Status::Down)]);
    }

    #[test]
    fn maintenance_silences_failures_and_then_the_next_check_decides() {
        let mut clock = Clock::new();
        let mut state = MonitorState::new(clock.0);
        let rules = rules(0, 1);
        state.observe(&outcome(Status::Up), false, &rules, clock.tick(60));
        for _ in 0..3 {
            assert!(
                state
                    .observe(&outcome(Status::Down), true, &rules, clock.tick(60))
                    .is_empty()
            );
            assert_eq!(state.status, Status::Maintenance);
        }
        let after = clock.tick(60);
        assert!(
            state
                .observe(&outcome(Status::Up), false, &rules, after)
                .is_empty()
        );
        assert_eq!(state.status, Status::Up);
        let events = state.observe(&outcome(Status::Down), false, &rules, clock.tick(60));
        assert_eq!(changes(&events), vec![(Status::Up, Status::Down)]);
    }

    #[test]
    fn certificate_thresholds_warn_once_each_and_renewal_starts_over() {
        let clock = Clock::new();
        let mut state = MonitorState::new(clock.0);
        let rules = rules(0, 0);
        let day = |days: i64| clock.0 + SignedDuration::from_hours(24 * days);
        let expiry = day(30);
        let check = |state: &mut MonitorState, at: Timestamp, not_after: Timestamp| {
            let mut result = outcome(Status::Up);
            result.cert_not_after = Some(not_after);
            state
                .observe(&result, false, &rules, at)
                .into_iter()
                .filter_map(|event| match event {
                    Event::CertificateExpiring { threshold, .. } => Some(threshold),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert!(check(&mut state, day(0), expiry).is_empty());
        assert_eq!(check(&mut state, day(10), expiry), vec![21]);
        assert!(check(&mut state, day(11), expiry).is_empty());
        // Three days unchecked jump past 14 and 7 at once: one warning.
        assert_eq!(check(&mut state, day(24), expiry), vec![7]);
        assert!(check(&mut state, day(25), expiry).is_empty());
        assert!(
            check(&mut state, day(31), expiry).is_empty(),
            "expired, already warned"
        );
        let renewed = day(120);
        assert!(check(&mut state, day(31), renewed).is_empty());
        assert_eq!(check(&mut state, day(100), renewed), vec![21]);
    }
}
