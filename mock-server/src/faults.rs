//! Queued fault injections: the next N matching requests misbehave in a chosen way.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::Method;

/// How a request misbehaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// This status with the version's error body (429 also gets `Retry-After: 1`).
    Status(u16),
    /// Wait, then answer normally.
    Delay(Duration),
    /// Full `Content-Length`, half the body, then the connection closes.
    Truncate,
    /// The connection closes before any body byte.
    Reset,
    /// 200 with a body that is not JSON.
    InvalidJson,
}

/// The longest `delay` fault: longer than any client timeout a test would check, short enough
/// that a mistyped one (`u64::MAX` ms hung its request for ever) ends within a CI job.
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// A fault for the next `count` requests to API endpoints with a method they take (to `path`
/// only, if given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub count: u32,
    pub path: Option<String>,
}

/// Why a fault is refused: each would sit in the queue and never fire, or fire as something
/// other than the error the caller meant to test.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("status {0} is not an error status; allowed: 400 to 599")]
    Status(u16),
    #[error("count 0 would never fire; allowed: 1 or more")]
    Count,
    #[error("delay_ms {0} is over 600000 (10 minutes), the longest delay; allowed: 0 to 600000")]
    Delay(u128),
    #[error(
        "path {0:?} is not an API endpoint; allowed: /api/v1/ or /api/v2/ followed by \
         signinattempts, itemusages or auditevents, /api/auth/introspect, \
         /api/v2/auth/introspect, or no path (any of them)"
    )]
    Path(String),
}

impl Fault {
    pub fn check(&self) -> Result<(), FaultError> {
        if let FaultKind::Status(code) = self.kind
            && !(400..=599).contains(&code)
        {
            return Err(FaultError::Status(code));
        }
        if self.count == 0 {
            return Err(FaultError::Count);
        }
        if let FaultKind::Delay(delay) = self.kind
            && delay > MAX_DELAY
        {
            return Err(FaultError::Delay(delay.as_millis()));
        }
        match &self.path {
            Some(path) if !crate::api::is_endpoint(path) => Err(FaultError::Path(path.clone())),
            _ => Ok(()),
        }
    }
}

/// Pending faults, applied in the order they were injected.
#[derive(Default)]
pub struct Faults {
    queue: Mutex<Vec<Fault>>,
}

impl Faults {
    pub fn inject(&self, fault: Fault) -> Result<(), FaultError> {
        fault.check()?;
        self.queue.lock().expect("faults lock").push(fault);
        Ok(())
    }

    /// The faults queued, in the order they apply, with the uses they have left.
    pub fn list(&self) -> Vec<Fault> {
        self.queue.lock().expect("faults lock").clone()
    }

    /// Drops every queued fault, saying how many there were.
    pub fn clear(&self) -> usize {
        std::mem::take(&mut *self.queue.lock().expect("faults lock")).len()
    }

    /// Takes one use of the first fault matching `path`. A path the API does not have, or a
    /// method its endpoint does not take, takes none, not even one with no path: a typo'd
    /// request (404 or 405) must not use up the fault a test queued for the next real one.
    pub fn take(&self, method: &Method, path: &str) -> Option<FaultKind> {
        if !crate::api::is_endpoint_request(method, path) {
            return None;
        }
        let mut queue = self.queue.lock().expect("faults lock");
        let i = queue
            .iter()
            .position(|f| f.path.as_deref().is_none_or(|p| p == path))?;
        let kind = queue[i].kind.clone();
        queue[i].count -= 1;
        if queue[i].count == 0 {
            queue.remove(i);
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_used_up_in_order_and_respect_paths() {
        let faults = Faults::default();
        let (a, b) = ("/api/v2/auditevents", "/api/v1/itemusages");
        faults
            .inject(Fault {
                kind: FaultKind::Status(500),
                count: 1,
                path: Some(a.into()),
            })
            .unwrap();
        faults
            .inject(Fault {
                kind: FaultKind::Reset,
                count: 2,
                path: None,
            })
            .unwrap();
        let post = Method::POST;
        assert_eq!(
            faults.take(&post, "/api/v2/auditevent"),
            None,
            "not an endpoint"
        );
        assert_eq!(faults.take(&Method::GET, b), None, "not a method it takes");
        assert_eq!(faults.take(&post, b), Some(FaultKind::Reset));
        assert_eq!(faults.take(&post, a), Some(FaultKind::Status(500)));
        assert_eq!(faults.take(&post, a), Some(FaultKind::Reset));
        assert_eq!(faults.take(&post, a), None);
    }

    #[test]
    fn faults_that_cannot_fire_as_meant_are_refused() {
        let faults = Faults::default();
        let fault = |kind, count, path: Option<&str>| Fault {
            kind,
            count,
            path: path.map(str::to_owned),
        };
        for (f, e) in [
            (
                fault(FaultKind::Status(999), 1, None),
                FaultError::Status(999),
            ),
            (
                fault(FaultKind::Status(399), 1, None),
                FaultError::Status(399),
            ),
            (fault(FaultKind::Reset, 0, None), FaultError::Count),
            (
                fault(
                    FaultKind::Delay(MAX_DELAY + Duration::from_millis(1)),
                    1,
                    None,
                ),
                FaultError::Delay(600_001),
            ),
            (
                fault(FaultKind::Reset, 1, Some("/_mock/stats")),
                FaultError::Path("/_mock/stats".into()),
            ),
            (
                fault(FaultKind::Reset, 1, Some("/api/v2/auditevent")),
                FaultError::Path("/api/v2/auditevent".into()),
            ),
        ] {
            assert_eq!(faults.inject(f), Err(e));
        }
        assert_eq!(
            faults.take(&Method::POST, "/api/v2/auditevents"),
            None,
            "nothing queued"
        );
        for (code, path) in [
            (400, "/api/auth/introspect"),
            (599, "/api/v1/signinattempts"),
        ] {
            let f = fault(FaultKind::Status(code), 1, Some(path));
            assert_eq!(faults.inject(f), Ok(()));
        }
    }
}
