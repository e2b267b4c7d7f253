//! The cost of one call through the plugin ABI (encode the arguments, cross
//! into the library, bind and decode them, run the method, encode the result,
//! decode it in the host), next to the same method called directly in Rust.
//!
//! Run: `cargo build --release -p pyrolab-sample && cargo bench -p pyrolab-host --bench abi_call`
//! (the bench loads `libsample.so` from the release target directory).

use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pyrolab_host::loader::{Instance, Loader};
use pyrolab_plugin_api::{Bytes, CallArgs, Value};
use sample::SampleService;

fn sample_library() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("bench executables live in <profile>/deps");
    let name = format!(
        "{}sample{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = profile.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release -p pyrolab-sample` first",
        path.display()
    );
    path
}

fn sample_instance() -> Instance {
    Loader::new()
        .load(&sample_library())
        .expect("load the sample plugin")
        .create("SampleService", &Value::Null)
        .expect("construct SampleService")
}

fn small_call(c: &mut Criterion) {
    let instance = sample_instance();
    let direct = SampleService::default();
    let mut group = c.benchmark_group("echo(\"hello\")");
    group.bench_function("direct Rust call", |b| {
        b.iter(|| direct.echo(std::hint::black_box("hello").to_owned()))
    });
    group.bench_function("through the plugin ABI", |b| {
        b.iter(|| {
            instance
                .call("echo", CallArgs::positional(vec![Value::from("hello")]))
                .unwrap()
        })
    });
    group.finish();
}

fn one_megabyte(c: &mut Criterion) {
    let instance = sample_instance();
    let direct = SampleService::default();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
    let mut group = c.benchmark_group("byte_count(1 MB)");
    group.measurement_time(Duration::from_secs(5));
    // Both calls start from an owned buffer, so the copy a caller would make
    // to hand data over is in neither measurement. The ABI path copies the
    // bytes twice (into the encoding and out of it): a plain copy of the
    // same megabyte is the baseline that explains most of its cost.
    group.bench_function("baseline: copy 1 MB", |b| {
        b.iter(|| std::hint::black_box(data.as_slice()).to_vec())
    });
    group.bench_function("direct Rust call", |b| {
        b.iter_batched(
            || Bytes::from(data.clone()),
            |bytes| direct.byte_count(bytes),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("through the plugin ABI", |b| {
        b.iter_batched(
            || CallArgs::positional(vec![Value::Bytes(data.clone())]),
            |args| instance.call("byte_count", args).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, small_call, one_megabyte);
criterion_main!(benches);
