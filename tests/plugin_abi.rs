//! Calls real driver libraries, loaded from disk, through the stable ABI:
//! argument binding, defaults, errors, properties, panics and logging.

use std::sync::Arc;

use pyrolab_host::loader::{Instance, Library, Loader};
use pyrolab_plugin_api::{CallArgs, ErrorKind, Value, value};
use pyrolab_test_support::Sandbox;

fn load(sandbox: &Sandbox, lib_name: &str) -> Arc<Library> {
    let path = sandbox.install_plugin(lib_name);
    Loader::new().load(&path).expect("load plugin")
}

fn instance(lib_name: &str, class: &str, parameters: Value) -> Instance {
    let sandbox = Sandbox::new();
    load(&sandbox, lib_name)
        .create(class, &parameters)
        .expect("construct driver")
}

fn args(values: Vec<Value>) -> CallArgs {
    CallArgs::positional(values)
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

#[test]
fn sample_service_echoes_and_does_python_arithmetic() {
    let sample = instance("sample", "SampleService", Value::Null);
    assert_eq!(
        sample.call("echo", args(vec!["hello".into()])).unwrap(),
        Value::from("SERVER RECEIVED: hello")
    );
    let sum = sample
        .call("add", args(vec![1.into(), 2.into(), 3.into()]))
        .unwrap();
    assert_eq!(sum, Value::Int(6));
    let mixed = sample
        .call("add", args(vec![1.into(), 0.5.into()]))
        .unwrap();
    assert_eq!(mixed, Value::Float(1.5));
    assert_eq!(
        sample
            .call("multiply", args(vec![2.into(), 3.into(), 4.into()]))
            .unwrap(),
        Value::Int(24)
    );
    assert_eq!(
        sample
            .call("subtract", CallArgs::default().kwarg("b", 3).kwarg("a", 10))
            .unwrap(),
        Value::Int(7)
    );
    assert_eq!(
        sample
            .call("divide", args(vec![1.into(), 4.into()]))
            .unwrap(),
        Value::Float(0.25)
    );
    let who = sample.call("whoami", CallArgs::default()).unwrap();
    assert!(who.as_str().unwrap().starts_with("OBJECT ID: "), "{who}");
}

#[test]
fn driver_error_kinds_reach_the_caller() {
    let sample = instance("sample", "SampleService", Value::Null);
    let err = sample
        .call("divide", args(vec![1.into(), 0.into()]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ZeroDivisionError);
    assert_eq!(err.message(), "division by zero");

    let faulty = instance("faulty", "Faulty", map(vec![("port", "COM3".into())]));
    for kind in [
        "ValueError",
        "LookupError",
        "KeyError",
        "TimeoutError",
        "ConnectionError",
    ] {
        let err = faulty
            .call("fail", args(vec![kind.into(), "on purpose".into()]))
            .unwrap_err();
        assert_eq!(err.kind().python_name(), kind);
        assert_eq!(err.message(), "on purpose");
        assert_eq!(err.context_lines(), ["while failing on purpose"]);
    }
}

#[test]
fn library_catalog_binds_positional_keyword_and_default_arguments() {
    let catalog = instance(
        "libservice",
        "LibraryCatalog",
        map(vec![(
            "catalog",
            map(vec![("The Hobbit", 3.into()), ("C Programming", 2.into())]),
        )]),
    );
    // Default quantity of 1.
    catalog
        .call("checkout", args(vec!["The Hobbit".into()]))
        .unwrap();
    // Positional quantity.
    catalog
        .call("checkout", args(vec!["C Programming".into(), 2.into()]))
        .unwrap();
    // Keyword quantity.
    catalog
        .call(
            "checkin",
            args(vec!["C Programming".into()]).kwarg("quantity", 1),
        )
        .unwrap();
    catalog
        .call("add_book", CallArgs::default().kwarg("title", "Dune"))
        .unwrap();
    assert_eq!(
        catalog.call("get_catalog", CallArgs::default()).unwrap(),
        map(vec![
            ("The Hobbit", 2.into()),
            ("C Programming", 1.into()),
            ("Dune", 1.into())
        ])
    );
    let err = catalog
        .call("checkout", args(vec!["C Programming".into(), 5.into()]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueError);
    assert_eq!(
        err.message(),
        "Cannot checkout: Not enough copies of C Programming."
    );
    let err = catalog
        .call("remove_book", args(vec!["Emma".into()]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LookupError);
}

#[test]
fn bad_arguments_are_type_errors_naming_the_parameter() {
    let catalog = instance("libservice", "LibraryCatalog", Value::Null);
    let cases = [
        (
            args(vec![]),
            "checkout() missing required argument: 'title'",
        ),
        (
            args(vec!["a".into(), 1.into(), 2.into()]),
            "checkout() takes 2 positional arguments but 3 were given",
        ),
        (
            args(vec!["a".into()]).kwarg("copies", 2),
            "checkout() got an unexpected keyword argument 'copies'",
        ),
        (
            args(vec!["a".into()]).kwarg("title", "b"),
            "checkout() got multiple values for argument 'title'",
        ),
    ];
    for (call, expected) in cases {
        let err = catalog.call("checkout", call).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeError);
        assert_eq!(err.message(), expected);
    }
    let err = catalog
        .call("checkout", args(vec!["a".into(), "two".into()]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TypeError);
    assert!(
        err.message()
            .starts_with("checkout() argument 'quantity': invalid type: string \"two\""),
        "{err}"
    );
    let faulty = instance("faulty", "Faulty", map(vec![("port", "COM3".into())]));
    let err = faulty.call("small", args(vec![300.into()])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TypeError);
    assert!(err.message().contains("'n'"), "{err}");
}

#[test]
fn unknown_methods_are_attribute_errors() {
    let sample = instance("sample", "SampleService", Value::Null);
    let err = sample
        .call("launch_rockets", CallArgs::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AttributeError);
    assert_eq!(
        err.message(),
        "'SampleService' object has no attribute 'launch_rockets'"
    );
}

#[test]
fn properties_read_and_write_through_getattr_and_setattr() {
    let sample = instance("sample", "SampleService", Value::Null);
    assert_eq!(sample.get_property("attribute").unwrap(), Value::Null);
    let list = Value::List(vec![1.into(), "two".into(), Value::Bytes(vec![3])]);
    sample.set_property("attribute", list.clone()).unwrap();
    assert_eq!(sample.get_property("attribute").unwrap(), list);

    let instrument = instance(
        "sample",
        "SampleAutoconnectInstrument",
        map(vec![("address", "0.0.0.0".into()), ("port", 1234.into())]),
    );
    assert_eq!(
        instrument.get_property("connected").unwrap(),
        Value::Bool(false)
    );
    let err = instrument
        .set_property("connected", Value::Bool(true))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AttributeError);
    let err = sample.get_property("nope").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AttributeError);
}

#[test]
fn autoconnect_instrument_uses_defaults_and_configured_parameters() {
    let configured = instance(
        "sample",
        "SampleAutoconnectInstrument",
        map(vec![("address", "0.0.0.0".into()), ("port", 1234.into())]),
    );
    let err = configured
        .call("do_something", CallArgs::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionError);
    // connect() with its defaults ("localhost", 9090) must fail.
    assert!(configured.call("connect", CallArgs::default()).is_err());
    assert!(
        configured
            .call("connect", args(vec!["0.0.0.0".into()]))
            .is_err()
    );
    assert_eq!(
        configured.call("autoconnect", CallArgs::default()).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        configured
            .call("do_something", CallArgs::default())
            .unwrap(),
        Value::Bool(true)
    );
    let manual = instance("sample", "SampleAutoconnectInstrument", Value::Null);
    assert_eq!(
        manual
            .call(
                "connect",
                CallArgs::default()
                    .kwarg("address", "0.0.0.0")
                    .kwarg("port", 1)
            )
            .unwrap(),
        Value::Bool(true)
    );
}

#[test]
fn a_panicking_method_becomes_a_runtime_error_and_the_driver_lives_on() {
    let faulty = instance("faulty", "Faulty", map(vec![("port", "COM3".into())]));
    let err = faulty
        .call("panic_now", args(vec!["kaboom".into()]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RuntimeError);
    assert_eq!(err.message(), "driver panicked: kaboom");
    assert!(
        err.context_lines()
            .iter()
            .any(|line| line.contains("lib.rs")),
        "the panic location is reported: {:?}",
        err.context_lines()
    );
    // A panic under the exclusive lock must not leave the driver unusable.
    let err = faulty
        .call("panic_exclusively", CallArgs::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RuntimeError);
    assert_eq!(
        faulty.call("count", CallArgs::default()).unwrap(),
        Value::Int(2)
    );
}

#[test]
fn constructor_parameters_are_typed_and_bad_keys_are_named() {
    let sandbox = Sandbox::new();
    let library = load(&sandbox, "faulty");
    let good = library
        .create("Faulty", &map(vec![("port", "COM3".into())]))
        .unwrap();
    assert_eq!(
        good.call("settings", CallArgs::default()).unwrap(),
        Value::Tuple(vec!["COM3".into(), 9600.into()])
    );
    let unknown = library
        .create(
            "Faulty",
            &map(vec![("port", "COM3".into()), ("parity", "even".into())]),
        )
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("unknown field `parity`"), "{unknown}");
    let mistyped = library
        .create(
            "Faulty",
            &map(vec![("port", "COM3".into()), ("baud", "fast".into())]),
        )
        .unwrap_err()
        .to_string();
    assert!(
        mistyped.contains("baud: invalid type: string \"fast\""),
        "{mistyped}"
    );
    let missing = library
        .create("Faulty", &Value::Null)
        .unwrap_err()
        .to_string();
    assert!(missing.contains("missing field `port`"), "{missing}");
    let extra = load(&sandbox, "sample")
        .create("SampleService", &map(vec![("colour", "red".into())]))
        .unwrap_err()
        .to_string();
    assert!(
        extra.contains("it takes no parameters, found 'colour'"),
        "{extra}"
    );
}

#[test]
fn large_byte_arguments_cross_intact() {
    let faulty = instance("faulty", "Faulty", map(vec![("port", "COM3".into())]));
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let echoed = faulty
        .call("echo_bytes", args(vec![Value::Bytes(data.clone())]))
        .unwrap();
    assert_eq!(echoed, Value::Bytes(data.clone()));

    // Returned whole, the byte string comes in the driver's own buffer:
    // the result's encoding is its header, then that buffer.
    let encoded = value::encode(&args(vec![Value::Bytes(data.clone())]).into_value());
    let lent = faulty.call_raw_lending("echo_bytes", &encoded).unwrap();
    assert_eq!(lent.tail.as_slice(), &data[..]);
    assert_eq!(
        value::lone_bytes_header(&lent.head, lent.len()),
        Some(lent.head.len())
    );
}

#[test]
fn instances_can_be_called_from_many_threads() {
    let sample = Arc::new(instance("sample", "SampleService", Value::Null));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let sample = Arc::clone(&sample);
            std::thread::spawn(move || {
                for j in 0..200 {
                    let got = sample.call("add", args(vec![i.into(), j.into()])).unwrap();
                    assert_eq!(got, Value::Int(i64::from(i + j)));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}
