//! Queued fault injections: the next N matching requests misbehave in a chosen way.

use std::sync::Mutex;
use std::time::Duration;

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

/// A fault for the next `count` API requests (to `path` only, if given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub count: u32,
    pub path: Option<String>,
}

/// Pending faults, applied in the order they were injected.
#[derive(Default)]
pub struct Faults {
    queue: Mutex<Vec<Fault>>,
}

impl Faults {
    pub fn inject(&self, fault: Fault) {
        if fault.count > 0 {
            self.queue.lock().expect("faults lock").push(fault);
        }
    }

    /// Takes one use of the first fault matching `path`.
    pub fn take(&self, path: &str) -> Option<FaultKind> {
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
        faults.inject(Fault {
            kind: FaultKind::Status(500),
            count: 1,
            path: Some("/a".into()),
        });
        faults.inject(Fault {
            kind: FaultKind::Reset,
            count: 2,
            path: None,
        });
        assert_eq!(faults.take("/b"), Some(FaultKind::Reset));
        assert_eq!(faults.take("/a"), Some(FaultKind::Status(500)));
        assert_eq!(faults.take("/a"), Some(FaultKind::Reset));
        assert_eq!(faults.take("/a"), None);
    }
}
