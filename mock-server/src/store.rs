//! Append-only event log per account and type, in ingestion order.
//!
//! Each event is kept as its v2 JSON bytes; the spans holding v2-only (MSP) fields are recorded
//! so the v1 form is the same bytes with those spans skipped. Pages are built by concatenation.

use serde_json::Value;

use crate::rfc3339;

/// The three event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    SignInAttempts,
    ItemUsages,
    AuditEvents,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::SignInAttempts, Kind::ItemUsages, Kind::AuditEvents];

    /// The path segment and token feature name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SignInAttempts => "signinattempts",
            Kind::ItemUsages => "itemusages",
            Kind::AuditEvents => "auditevents",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Top-level fields that exist only in v2.
const V2_TOP: [&str; 3] = ["account_uuid", "actor_type", "actor_account_uuid"];
/// User objects, which gain `user_type`/`user_account_uuid` in v2.
const USER_OBJECTS: [&str; 5] = [
    "target_user",
    "user",
    "actor_details",
    "object_details",
    "aux_details",
];
const V2_USER: [&str; 2] = ["user_type", "user_account_uuid"];
/// Audit actions that v1 does not know: such events are served on v2 only.
const V2_ONLY_ACTIONS: [&str; 2] = ["expire", "unlink"];
/// Header flag bit: the event has no v1 form.
const V2_ONLY: u8 = 0x80;

/// The shape events are served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// v1: no MSP fields, and no events with v2-only actions.
    V1,
    /// v2 for an MSP account: every field.
    V2,
    /// v2 for any other account: every event, without the MSP fields, which the docs mark "MSP
    /// accounts only".
    V2WithoutMsp,
}

impl Form {
    fn strips_msp(self) -> bool {
        self != Form::V2
    }

    fn serves(self, entry: &Entry) -> bool {
        self != Form::V1 || entry.in_v1()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an event must be a JSON object")]
    NotObject,
    #[error("an event needs an RFC 3339 \"timestamp\" string")]
    Timestamp,
}

struct Entry {
    ts: i64,
    /// Largest timestamp among this and every earlier entry: lets a reset skip the prefix
    /// that cannot match even though late events make `ts` non-monotonic.
    max_ts: i64,
    /// `[flags | n: u8][n × (start: u32, end: u32)]` v1 cut spans, then the v2 JSON.
    data: Box<[u8]>,
}

impl Entry {
    fn cut_count(&self) -> usize {
        usize::from(self.data[0] & !V2_ONLY)
    }

    fn in_v1(&self) -> bool {
        self.data[0] & V2_ONLY == 0
    }

    fn cuts(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let n = self.cut_count();
        (0..n).map(move |i| {
            let at = 1 + 8 * i;
            let word =
                |o: usize| u32::from_le_bytes(self.data[o..o + 4].try_into().expect("4")) as usize;
            (word(at), word(at + 4))
        })
    }

    fn json(&self) -> &[u8] {
        &self.data[1 + 8 * self.cut_count()..]
    }

    fn write(&self, form: Form, out: &mut Vec<u8>) {
        let json = self.json();
        if !form.strips_msp() {
            out.extend_from_slice(json);
            return;
        }
        let mut from = 0;
        for (start, end) in self.cuts() {
            out.extend_from_slice(&json[from..start]);
            from = end;
        }
        out.extend_from_slice(&json[from..]);
    }
}

/// Which events a page may contain.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Inclusive; already raised to the retention horizon by the caller.
    pub start_ns: i64,
    /// Exclusive.
    pub end_ns: Option<i64>,
}

impl Window {
    fn contains(&self, ts: i64) -> bool {
        ts >= self.start_ns && self.end_ns.is_none_or(|end| ts < end)
    }
}

/// One page built from the log.
pub struct Page {
    pub count: usize,
    /// Where the next request continues (the next matching event, or the end of the log).
    pub next: u64,
    pub has_more: bool,
}

/// One account's events of one type.
#[derive(Default)]
pub struct Log {
    entries: Vec<Entry>,
}

impl Log {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Appends one event given in v2 shape.
    pub fn push(&mut self, event: &Value) -> Result<(), StoreError> {
        let ts = event_timestamp(event)?;
        let mut json = Vec::with_capacity(1024);
        let mut cuts = Vec::new();
        write_event(event, &mut json, &mut cuts)?;
        let mut data = Vec::with_capacity(1 + 8 * cuts.len() + json.len());
        let v2_only = event
            .get("action")
            .and_then(Value::as_str)
            .is_some_and(|a| V2_ONLY_ACTIONS.contains(&a));
        data.push(
            u8::try_from(cuts.len()).expect("at most one cut per object")
                | if v2_only { V2_ONLY } else { 0 },
        );
        for (s, e) in &cuts {
            data.extend_from_slice(&u32::try_from(*s).expect("event < 4 GiB").to_le_bytes());
            data.extend_from_slice(&u32::try_from(*e).expect("event < 4 GiB").to_le_bytes());
        }
        data.extend_from_slice(&json);
        let max_ts = self.entries.last().map_or(ts, |e| e.max_ts.max(ts));
        self.entries.push(Entry {
            ts,
            max_ts,
            data: data.into_boxed_slice(),
        });
        Ok(())
    }

    /// Appends events in order, stopping at the first invalid one.
    pub fn push_all(&mut self, events: &[Value]) -> Result<(), StoreError> {
        events.iter().try_for_each(|e| self.push(e))
    }

    /// Appends up to `limit` events of `window` from `position` on, comma-separated, to `out`.
    pub fn page(
        &self,
        position: u64,
        window: Window,
        limit: usize,
        form: Form,
        out: &mut Vec<u8>,
    ) -> Page {
        let first = self.entries.partition_point(|e| e.max_ts < window.start_ns);
        let mut i = usize::try_from(position).unwrap_or(usize::MAX).max(first);
        let mut count = 0;
        while i < self.entries.len() && count < limit {
            let e = &self.entries[i];
            if window.contains(e.ts) && form.serves(e) {
                if count > 0 {
                    out.push(b',');
                }
                e.write(form, out);
                count += 1;
            }
            i += 1;
        }
        while i < self.entries.len()
            && !(window.contains(self.entries[i].ts) && form.serves(&self.entries[i]))
        {
            i += 1;
        }
        let len = self.entries.len();
        Page {
            count,
            next: i.min(len) as u64,
            has_more: i < len,
        }
    }

    /// Every event whose timestamp is at or after `horizon_ns`, in ingestion order, as a v2
    /// `form` serves it.
    pub fn events(&self, horizon_ns: Option<i64>, form: Form) -> Vec<Value> {
        let mut events = Vec::new();
        self.raw(horizon_ns, form, |json| {
            events.push(serde_json::from_slice(json).expect("stored JSON is valid"));
        });
        events
    }

    /// The JSON of every event at or after `horizon_ns`, as a v2 `form` serves it, for
    /// streaming listings.
    pub fn raw(&self, horizon_ns: Option<i64>, form: Form, mut each: impl FnMut(&[u8])) {
        let mut stripped = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| horizon_ns.is_none_or(|h| e.ts >= h))
        {
            if form.strips_msp() {
                stripped.clear();
                e.write(form, &mut stripped);
                each(&stripped);
            } else {
                each(e.json());
            }
        }
    }
}

/// The event's `timestamp` in nanoseconds, clamped to what the mock holds.
pub(crate) fn event_timestamp(event: &Value) -> Result<i64, StoreError> {
    event
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| rfc3339::parse(t).ok())
        .map(rfc3339::clamp)
        .ok_or(StoreError::Timestamp)
}

fn write_event(
    event: &Value,
    out: &mut Vec<u8>,
    cuts: &mut Vec<(usize, usize)>,
) -> Result<(), StoreError> {
    let Value::Object(map) = event else {
        return Err(StoreError::NotObject);
    };
    write_object(map, &V2_TOP, true, out, cuts);
    Ok(())
}

/// Writes an object with its v2-only members last, recording their span as one cut.
fn write_object(
    map: &serde_json::Map<String, Value>,
    v2_only: &[&str],
    top: bool,
    out: &mut Vec<u8>,
    cuts: &mut Vec<(usize, usize)>,
) {
    out.push(b'{');
    let mut first = true;
    let member = |k: &str,
                  v: &Value,
                  out: &mut Vec<u8>,
                  cuts: &mut Vec<(usize, usize)>,
                  first: &mut bool| {
        if !*first {
            out.push(b',');
        }
        *first = false;
        serde_json::to_writer(&mut *out, k).expect("write to Vec");
        out.push(b':');
        match v {
            Value::Object(inner) if top && USER_OBJECTS.contains(&k) => {
                write_object(inner, &V2_USER, false, out, cuts)
            }
            other => serde_json::to_writer(&mut *out, other).expect("write to Vec"),
        }
    };
    for (k, v) in map.iter().filter(|(k, _)| !v2_only.contains(&k.as_str())) {
        member(k, v, out, cuts, &mut first);
    }
    let cut_start = out.len();
    for (k, v) in map.iter().filter(|(k, _)| v2_only.contains(&k.as_str())) {
        member(k, v, out, cuts, &mut first);
    }
    // After common members each v2 member starts with its comma; without any, the whole body
    // goes and the v1 form is `{}`. Either way the v2 members form one contiguous span.
    if out.len() > cut_start {
        cuts.push((cut_start, out.len()));
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(log: &Log, form: Form) -> String {
        let mut out = Vec::new();
        let window = Window {
            start_ns: i64::MIN,
            end_ns: None,
        };
        log.page(0, window, 100, form, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn v1_form_drops_only_msp_fields() {
        let mut log = Log::default();
        log.push(
            &json!({"uuid": "A", "timestamp": "2024-05-14T09:12:44.827288935Z", "account_uuid": "X",
            "actor_details": {"uuid": "U", "user_type": "user", "user_account_uuid": "X"},
            "actor_type": "user", "details": null}),
        )
        .unwrap();
        log.push(&json!({"timestamp": "2024-05-14T09:12:45-03:00", "user": {"user_type": "user"}}))
            .unwrap();
        let v1: Value = serde_json::from_str(&format!("[{}]", text(&log, Form::V1))).unwrap();
        assert_eq!(
            v1,
            json!([{"uuid": "A", "timestamp": "2024-05-14T09:12:44.827288935Z", "actor_details": {"uuid": "U"}, "details": null},
                   {"timestamp": "2024-05-14T09:12:45-03:00", "user": {}}])
        );
        let v2: Value = serde_json::from_str(&format!("[{}]", text(&log, Form::V2))).unwrap();
        assert_eq!(v2[0]["actor_details"]["user_account_uuid"], "X");
        assert_eq!(log.events(None, Form::V2), v2.as_array().unwrap().clone());
    }

    #[test]
    fn v2_without_msp_drops_the_msp_fields_and_keeps_v2_only_events() {
        let mut log = Log::default();
        log.push(
            &json!({"timestamp": "2024-05-14T09:12:44Z", "action": "unlink", "account_uuid": "X",
            "actor_type": "user", "actor_details": {"uuid": "U", "user_type": "user"}}),
        )
        .unwrap();
        let expected = json!([{"timestamp": "2024-05-14T09:12:44Z", "action": "unlink", "actor_details": {"uuid": "U"}}]);
        let served: Value =
            serde_json::from_str(&format!("[{}]", text(&log, Form::V2WithoutMsp))).unwrap();
        assert_eq!(served, expected);
        assert_eq!(text(&log, Form::V1), "");
        assert_eq!(
            log.events(None, Form::V2WithoutMsp),
            expected.as_array().unwrap().clone()
        );
    }

    #[test]
    fn event_timestamps_are_any_rfc3339_date_time() {
        let mut log = Log::default();
        for ts in [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.9999999999+23:59",
        ] {
            log.push(&json!({ "timestamp": ts })).unwrap();
        }
        assert_eq!((log.entries[0].ts, log.entries[1].ts), (i64::MIN, i64::MAX));
        for ts in [
            "2024-05-14T09:12:44+25:00",
            "2024-05-14T09:12:44",
            "2024-05-14",
        ] {
            assert!(log.push(&json!({ "timestamp": ts })).is_err(), "{ts}");
        }
    }
}
