//! Every way loading a driver can fail gives one clear line naming the
//! file, and the process that tried lives on.

use std::fs;

use pyrolab_host::loader::{LoadError, Loader, PluginSearchPath};
use pyrolab_plugin_api::{ErrorKind, Value};
use pyrolab_test_support::{Sandbox, library_file_name};

fn assert_one_line(message: &str) {
    assert!(
        !message.contains('\n'),
        "expected one line, got:\n{message}"
    );
}

#[test]
fn missing_module_lists_where_it_looked() {
    let sandbox = Sandbox::new();
    let search = PluginSearchPath::new(vec![sandbox.plugin_dir()]);
    let err = search.resolve("pyrolab.drivers.lasers.tsl550").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LoadError::NotFound { .. }));
    assert!(
        message.contains(&library_file_name("pyrolab_drivers_lasers_tsl550")),
        "{message}"
    );
    assert!(message.contains(&library_file_name("tsl550")), "{message}");
    assert!(
        message.contains(&sandbox.plugin_dir().display().to_string()),
        "{message}"
    );
    assert_one_line(&message);
}

#[test]
fn missing_file_is_an_open_error() {
    let sandbox = Sandbox::new();
    let path = sandbox.plugin_dir().join(library_file_name("ghost"));
    let err = Loader::new().load(&path).unwrap_err();
    assert!(matches!(err, LoadError::Open { .. }), "{err}");
    assert!(err.to_string().contains("ghost"), "{err}");
}

#[test]
fn garbage_file_is_not_a_loadable_library() {
    let sandbox = Sandbox::new();
    let path = sandbox.plugin_dir().join(library_file_name("garbage"));
    fs::write(&path, b"this is not an ELF file, nor a PE, nor a Mach-O").unwrap();
    let err = Loader::new().load(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LoadError::Open { .. }), "{message}");
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("cannot be loaded as a shared library"),
        "{message}"
    );
    assert_one_line(&message);
}

#[test]
fn shared_library_without_root_module_is_not_a_plugin() {
    let sandbox = Sandbox::new();
    let path = sandbox.install_plugin("not_a_plugin");
    let err = Loader::new().load(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LoadError::NotAPlugin { .. }), "{message}");
    assert!(message.contains("not a pyrolab plugin"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_one_line(&message);
}

#[test]
fn unknown_class_lists_the_classes_the_library_has() {
    let sandbox = Sandbox::new();
    let path = sandbox.install_plugin("sample");
    let library = Loader::new().load(&path).unwrap();
    let err = library.create("SampleServise", &Value::Null).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LoadError::ClassNotFound { .. }), "{message}");
    assert!(
        message.contains("no class 'SampleServise' in this library (it has: SampleService, SampleAutoconnectInstrument)"),
        "{message}"
    );
    assert_one_line(&message);
}

#[test]
fn constructor_error_keeps_the_drivers_error() {
    let sandbox = Sandbox::new();
    let library = Loader::new()
        .load(&sandbox.install_plugin("faulty"))
        .unwrap();
    let err = library
        .create("FailsInConstructor", &Value::Null)
        .unwrap_err();
    let LoadError::Constructor { error, .. } = &err else {
        panic!("expected a constructor error, got {err}");
    };
    assert_eq!(error.kind(), ErrorKind::ConnectionError);
    let message = err.to_string();
    assert!(
        message.contains("constructing FailsInConstructor failed: ConnectionError: instrument not found on /dev/ttyUSB9"),
        "{message}"
    );
    assert_one_line(&message);
}

#[test]
fn constructor_panic_is_an_error_and_the_host_survives() {
    let sandbox = Sandbox::new();
    let library = Loader::new()
        .load(&sandbox.install_plugin("faulty"))
        .unwrap();
    let err = library
        .create("PanicsInConstructor", &Value::Null)
        .unwrap_err();
    let LoadError::Constructor { error, .. } = &err else {
        panic!("expected a constructor error, got {err}");
    };
    assert_eq!(error.kind(), ErrorKind::RuntimeError);
    assert_eq!(error.message(), "driver panicked: constructor exploded");
    assert_one_line(&err.to_string());
    // Still alive, and the library still works.
    assert!(library.create("FailsInConstructor", &Value::Null).is_err());
}

#[test]
fn loading_the_same_file_twice_shares_one_library_but_different_files_do_not() {
    let sandbox = Sandbox::new();
    let loader = Loader::new();
    let sample = sandbox.install_plugin("sample");
    let catalog = sandbox.install_plugin("libservice");
    let first = loader.load(&sample).unwrap();
    let again = loader.load(&sample).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &again));
    let other = loader.load(&catalog).unwrap();
    assert_eq!(other.descriptor().classes[0].name, "LibraryCatalog");
    assert_eq!(first.descriptor().classes[0].name, "SampleService");
}
