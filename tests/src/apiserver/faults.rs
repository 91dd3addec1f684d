//! Fault injection for tests: forced compaction, dropped watch streams, and failing or delaying
//! the next requests that match a resource and verb.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::Shared;

/// Which requests a fault applies to; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultMatch {
    /// Plural resource name, e.g. `pods`.
    pub resource: Option<String>,
    /// RBAC verb, e.g. `patch`.
    pub verb: Option<String>,
}

impl FaultMatch {
    /// Matches requests for `resource` with `verb`.
    #[must_use]
    pub fn new(resource: &str, verb: &str) -> Self {
        Self {
            resource: Some(resource.to_owned()),
            verb: Some(verb.to_owned()),
        }
    }

    fn matches(&self, resource: &str, verb: &str) -> bool {
        self.resource.as_deref().is_none_or(|r| r == resource)
            && self.verb.as_deref().is_none_or(|v| v == verb)
    }
}

#[derive(Debug, Clone)]
enum Action {
    Fail(u16),
    Delay(Duration),
}

#[derive(Debug, Clone)]
struct Rule {
    matcher: FaultMatch,
    remaining: usize,
    action: Action,
}

/// What to do with one request.
#[derive(Debug, Clone, Default)]
pub struct Injected {
    /// Answer with this status instead of serving.
    pub fail: Option<u16>,
    /// Wait this long before serving.
    pub delay: Option<Duration>,
}

/// Pending fault rules.
#[derive(Debug, Default)]
pub struct FaultRules {
    rules: Mutex<Vec<Rule>>,
}

impl FaultRules {
    /// Consumes the rules matching a request.
    pub fn take(&self, resource: &str, verb: &str) -> Injected {
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        let mut injected = Injected::default();
        for rule in rules
            .iter_mut()
            .filter(|r| r.remaining > 0 && r.matcher.matches(resource, verb))
        {
            rule.remaining -= 1;
            match rule.action {
                Action::Fail(code) => injected.fail = injected.fail.or(Some(code)),
                Action::Delay(delay) => injected.delay = injected.delay.or(Some(delay)),
            }
        }
        rules.retain(|r| r.remaining > 0);
        injected
    }

    fn push(&self, matcher: FaultMatch, remaining: usize, action: Action) {
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        rules.push(Rule {
            matcher,
            remaining,
            action,
        });
    }
}

/// A handle to inject faults into a running server.
#[derive(Clone)]
pub struct Faults {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Faults {
    /// Forgets all watch history: open watches receive a 410 ERROR event and older
    /// resourceVersions are expired.
    pub fn compact(&self) {
        self.shared.lock().store.compact();
    }

    /// Closes every open watch stream (clients see the stream end and reconnect).
    pub fn drop_watches(&self) {
        self.shared.lock().store.drop_watches();
    }

    /// Fails the next `count` matching requests with `status`.
    pub fn fail_next(&self, matcher: FaultMatch, count: usize, status: u16) {
        self.shared
            .faults
            .push(matcher, count, Action::Fail(status));
    }

    /// Delays the next `count` matching requests by `delay`.
    pub fn delay_next(&self, matcher: FaultMatch, count: usize, delay: Duration) {
        self.shared
            .faults
            .push(matcher, count, Action::Delay(delay));
    }
}
