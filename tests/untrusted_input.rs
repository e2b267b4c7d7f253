//! Property tests ("fuzz targets") for every input a hostile peer or user
//! controls: the frame codec, each serializer, the YAML reader, the
//! control socket's request parser and the monitor's query parameters.
//! Each feeds random bytes and random mutations of valid input, and
//! checks that what comes back is a value or an error, never a panic, an
//! allocation beyond the stated limits, or a result that reads back
//! differently.
//!
//! Each property runs `PYROLAB_FUZZ_CASES` cases (default 256, so CI stays
//! quick); for a longer hunt: `PYROLAB_FUZZ_CASES=100000 cargo test --test
//! e2e untrusted_input::`. A failure prints the smallest input proptest
//! found, to add as a regression test.

use std::path::Path;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::Config;
use pyrolab_host::wire::message::{Assembler, Message, kind};
use pyrolab_host::wire::serializer::{self, Serializer};
use pyrolab_plugin_api::Value;

fn config() -> Config {
    let cases = std::env::var("PYROLAB_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// A few edits: where (any position, taken modulo the length), which
/// byte, and whether it replaces, is inserted or cuts.
fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8)
}

/// `valid` with `edits` applied.
fn apply(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, how) in edits {
        let at = at % (bytes.len() + 1);
        match how {
            0 if at < bytes.len() => bytes[at] = byte,
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.insert(at, byte),
        }
    }
    bytes
}

/// `valid` with a few bytes changed, inserted or cut.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    edits().prop_map(move |edits| apply(valid.clone(), &edits))
}

/// Values every serializer can carry in some form.
fn values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-1e12f64..1e12).prop_map(Value::Float),
        "[a-zA-Z0-9 _\\-\u{e9}\u{3b1}\u{1f600}]{0,16}".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..32).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            prop::collection::vec(("[a-z]{1,8}", inner), 0..6).prop_map(|entries| {
                Value::Map(
                    entries
                        .into_iter()
                        .map(|(key, value)| (Value::Str(key), value))
                        .collect(),
                )
            }),
        ]
    })
}

fn serializers() -> Vec<&'static dyn Serializer> {
    serializer::SPOKEN
        .iter()
        .map(|&id| serializer::by_id(id).expect("a spoken serializer"))
        .collect()
}

/// A valid INVOKE frame for `payload`, compressed or not.
fn frame(payload: Vec<u8>, compress: bool) -> Vec<u8> {
    Message::new(kind::INVOKE, serializer::id::NATIVE, 0, 7, payload).encode(compress)
}

/// Feeds `bytes` to an assembler in chunks of `chunk` bytes: every message
/// it yields must encode and read back the same.
fn assemble(bytes: &[u8], chunk: usize, max_size: u64) {
    let mut assembler = Assembler::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let take = chunk.clamp(1, rest.len());
        let mut piece = &rest[..take];
        while !piece.is_empty() {
            match assembler.feed(piece, max_size) {
                Ok((used, message)) => {
                    assert!(used > 0 || message.is_some(), "no progress on {piece:?}");
                    piece = &piece[used..];
                    if let Some(message) = message {
                        assert!(message.payload.len() as u64 <= max_size);
                        let again =
                            Message::read_from(&mut &message.encode(false)[..], max_size).unwrap();
                        assert_eq!(
                            (again.kind, again.seq, &again.payload),
                            (message.kind, message.seq, &message.payload)
                        );
                    }
                }
                Err(_) => return,
            }
        }
        rest = &rest[take..];
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_frame_codec_takes_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..64,
    ) {
        assemble(&bytes, chunk, 1 << 20);
        let _ = Message::read_from(&mut &bytes[..], 1 << 20);
    }

    #[test]
    fn the_frame_codec_takes_mutated_frames(
        bytes in (prop::collection::vec(any::<u8>(), 0..600), any::<bool>())
            .prop_flat_map(|(payload, compress)| mutated(frame(payload, compress))),
        chunk in 1usize..700,
    ) {
        // A small limit: a mutated length field must be refused, not
        // reserved.
        assemble(&bytes, chunk, 4096);
        let _ = Message::read_from(&mut &bytes[..], 4096);
    }

    #[test]
    fn every_serializer_takes_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for serializer in serializers() {
            let _ = serializer.deserialize(&bytes);
        }
    }

    #[test]
    fn every_serializer_takes_mutated_encodings(value in values(), edits in edits()) {
        for serializer in serializers() {
            let Ok(valid) = serializer.serialize(&value) else { continue };
            let _ = serializer.deserialize(&apply(valid, &edits));
        }
    }

    /// What a serializer writes, it reads back to a value it writes the
    /// same way again (each maps some kinds to others: json has no tuples).
    #[test]
    fn every_serializer_reads_back_what_it_writes(value in values()) {
        for serializer in serializers() {
            let Ok(first) = serializer.serialize(&value) else { continue };
            let read = serializer
                .deserialize(&first)
                .unwrap_or_else(|err| panic!("{}: {err}: {value:?}", serializer.name()));
            let second = serializer.serialize(&read).expect("serialize what was read");
            let again = serializer.deserialize(&second).expect("read it again");
            prop_assert_eq!(&again, &read, "{} changed {:?}", serializer.name(), value);
        }
    }

    #[test]
    fn the_yaml_reader_takes_arbitrary_text(text in "[a-z0-9:\\-\\[\\]{},'\"&*!|>#%@`. \n\t]{0,400}") {
        check_config(&text);
    }

    #[test]
    fn the_yaml_reader_takes_mutated_configurations(
        bytes in mutated(include_bytes!("../config/example.yaml").to_vec()),
    ) {
        check_config(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn the_control_socket_takes_arbitrary_lines(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = pyrolab_host::manager::protocol::decode_request(&bytes);
    }

    #[test]
    fn the_control_socket_takes_mutated_requests(
        bytes in mutated(br#"{"version": 1, "request": "stop", "kind": "daemon", "name": "lab", "timeout_s": 5.0}"#.to_vec()),
    ) {
        let _ = pyrolab_host::manager::protocol::decode_request(&bytes);
    }

    /// The monitor's `since=` (`/api/events`, `/api/logs`) is parsed from
    /// the query as a time or a duration ago.
    #[test]
    fn the_monitor_reads_any_since(text in "\\PC{0,40}") {
        let _ = pyrolab_host::lab::logfile::parse_since(&text);
        let _ = pyrolab_host::lab::logfile::parse_time(&text);
    }
}

/// Loads `text` as a configuration: valid, or errors that each name a
/// place in the file.
fn check_config(text: &str) {
    match pyrolab_host::config::load_str(text, Path::new("lab.yaml"), Path::new("."), false) {
        Ok(_) => {}
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "an invalid file with no error");
            for diagnostic in diagnostics {
                let shown = diagnostic.to_string();
                assert!(shown.starts_with("lab.yaml:"), "{shown}");
            }
        }
    }
}

/// The monitor's API, over real HTTP, asked with random query strings on
/// every endpoint (known parameters with garbage values, unknown ones,
/// broken percent-encoding, repeats): every answer is a status of its
/// own (200, 400, 404 or 503) with a body, and the monitor still answers
/// afterwards.
#[test]
fn the_monitor_api_answers_arbitrary_queries() {
    use pyrolab_test_support::{Background, Sandbox};
    use std::io::{Read, Write};
    use std::time::Duration;

    let sandbox = Sandbox::new();
    let ns_config = sandbox.path().join("ns.yaml");
    std::fs::write(
        &ns_config,
        "version: '1.0'\nnameservers:\n  ns:\n    host: 127.0.0.1\n    ns_port: 0\n",
    )
    .unwrap();
    let mut ns = Background::start(
        sandbox
            .host()
            .args(["run", "nameserver", "ns", "--config"])
            .arg(&ns_config),
    );
    let line = ns.wait_for_line("name server ns listening on ", Duration::from_secs(30));
    let ns_port = line.rsplit(':').next().unwrap().to_owned();
    let mut monitor = Background::start(sandbox.host().args([
        "monitor",
        "--port",
        "0",
        "--ns-host",
        "127.0.0.1",
        "--ns-port",
        &ns_port,
        "--polling",
        "0.2",
    ]));
    let line = monitor.wait_for_line("monitor listening on ", Duration::from_secs(30));
    let authority = line
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let get = |target: &str| -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(&authority).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line for {target:?}: {answer:?}"));
        (status, answer)
    };
    let endpoints = [
        "/api",
        "/api/status",
        "/api/nameservers",
        "/api/services",
        "/api/components",
        "/api/events",
        "/api/logs",
    ];
    let keys = [
        "since",
        "status",
        "component",
        "kind",
        "lines",
        "x",
        "",
        "since%",
    ];
    let query_part = "[a-zA-Z0-9%&=+;.,:/?\\-_~!$'()*\u{e9}]{0,24}";
    let strategy = (
        0..endpoints.len(),
        prop::collection::vec((0..keys.len(), query_part), 0..5),
    );
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..config().cases.min(400) {
        let (endpoint, params) = strategy.new_tree(&mut runner).unwrap().current();
        let query: Vec<String> = params
            .iter()
            .map(|(key, value)| format!("{}={value}", keys[*key]))
            .collect();
        let target = format!("{}?{}", endpoints[endpoint], query.join("&")).replace(' ', "%20");
        let (status, answer) = get(&target);
        assert!(
            matches!(status, 200 | 400 | 404 | 503),
            "{target:?} answered {status}: {answer}"
        );
        seen.insert(status);
    }
    // Both kinds were asked: queries it takes, and ones it refuses.
    assert!(
        seen.contains(&200) && seen.contains(&400),
        "answers seen: {seen:?}"
    );
    let (status, answer) = get("/api/nameservers");
    assert_eq!(status, 200, "{answer}");
}
