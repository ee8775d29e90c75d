//! Cost per event of parse + normalize + encode, for every event type × format × target, on a
//! page of realistic items from the mock's generator, through the same calls a stream makes.
//! `cargo bench -p op-events --bench encode`; `parse` is the floor: the page parsed, nothing
//! written.

use divan::{Bencher, black_box};
use op_events_input::encode::{EncodeContext, Encoder, Target};
use op_events_input::event::{ApiVersion, EventType, Format};
use op_events_input::json::{Tape, parse_page};
use op_events_mock::{MockConfig, MockServer};

fn main() {
    divan::main();
}

/// A page of 1,000 generated v2 items, as the API would send it.
fn page(kind: EventType) -> String {
    static MOCK: std::sync::OnceLock<MockServer> = std::sync::OnceLock::new();
    let mock = MOCK.get_or_init(|| {
        MockServer::start(MockConfig {
            events_per_type: 1_000,
            ..MockConfig::default()
        })
        .expect("mock starts")
    });
    let items = serde_json::Value::from(mock.events("acme", kind.as_str()));
    format!(r#"{{"cursor":"c","has_more":true,"items":{items}}}"#)
}

const FORMATS: [Format; 3] = [Format::Ecs, Format::Ocsf, Format::Raw];
const KINDS: [EventType; 3] = EventType::ALL;

fn run(bencher: Bencher, kind: EventType, format: Format, target: Target) {
    let page = page(kind);
    let ctx = EncodeContext {
        account_uuid: "A4UJZEXAMPLEACCTGQ7Q3NDIVM".into(),
        api_version: ApiVersion::V2,
    };
    let encoder = Encoder::new(format, target, ctx);
    let mut out = Vec::with_capacity(4 << 20);
    let mut tape = Tape::default();
    bencher
        .counter(divan::counter::ItemsCount::new(1000usize))
        .bench_local(|| {
            out.clear();
            parse_page(&page, &mut tape, |item| {
                encoder
                    .encode_parsed(kind, item.expect("valid item"), &mut out)
                    .expect("valid item");
            })
            .expect("valid page");
            black_box(out.len())
        });
}

#[divan::bench(args = KINDS)]
fn parse(bencher: Bencher, kind: EventType) {
    let page = page(kind);
    // A tape grown beforehand (here by parsing the whole page as one value): its first growth
    // can set off a one-time heap consolidation that `ci/bench-instructions.sh`, which counts
    // inside `parse_page` with one pass a sample, would count as parsing.
    let mut tape = Tape::parse(&page).expect("valid page");
    bencher
        .counter(divan::counter::ItemsCount::new(1000usize))
        .bench_local(|| {
            parse_page(&page, &mut tape, |t| _ = black_box(t.map(|t| t.node(0))))
                .expect("valid page")
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
