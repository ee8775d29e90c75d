//! Cost per event of parse + normalize + encode, for every event type × format × target, on
//! realistic items from the mock's generator. `cargo bench -p op-events --bench encode`.

use divan::{Bencher, black_box};
use op_events_input::encode::{EncodeContext, Encoder, Target};
use op_events_input::event::{ApiVersion, EventType, Format};
use op_events_mock::{MockConfig, MockServer};

fn main() {
    divan::main();
}

/// 1,000 generated v2 items per type, as the API would send them.
fn items(kind: EventType) -> Vec<String> {
    static MOCK: std::sync::OnceLock<MockServer> = std::sync::OnceLock::new();
    let mock = MOCK.get_or_init(|| {
        MockServer::start(MockConfig {
            events_per_type: 1_000,
            ..MockConfig::default()
        })
        .expect("mock starts")
    });
    mock.events("acme", kind.as_str())
        .iter()
        .map(|v| v.to_string())
        .collect()
}

const FORMATS: [Format; 3] = [Format::Ecs, Format::Ocsf, Format::Raw];
const KINDS: [EventType; 3] = EventType::ALL;

fn run(bencher: Bencher, kind: EventType, format: Format, target: Target) {
    let items = items(kind);
    let ctx = EncodeContext {
        account_uuid: "A4UJZEXAMPLEACCTGQ7Q3NDIVM".into(),
        api_version: ApiVersion::V2,
    };
    let encoder = Encoder::new(format, target, ctx);
    let mut out = Vec::with_capacity(4 << 20);
    bencher
        .counter(divan::counter::ItemsCount::new(items.len()))
        .bench_local(|| {
            out.clear();
            for item in &items {
                encoder.encode(kind, item, &mut out).expect("valid item");
            }
            black_box(out.len())
        });
}

#[divan::bench(args = KINDS, consts = [0, 1, 2])]
fn msgpack<const F: usize>(bencher: Bencher, kind: EventType) {
    run(bencher, kind, FORMATS[F], Target::Msgpack);
}

#[divan::bench(args = KINDS, consts = [0, 1, 2])]
fn ndjson<const F: usize>(bencher: Bencher, kind: EventType) {
    run(bencher, kind, FORMATS[F], Target::Ndjson);
}
