//! What a TSL-550 command costs, on the simulated laser on a
//! pseudo-terminal, next to a raw PTY round trip measured in the same run.
//!
//! Run: `cargo build --release && cargo bench -p pyrolab-host --bench tsl550_pty`
//!
//! Reports median and p99 of `WA` (read the wavelength): raw (write the
//! line to the PTY, read the reply line, no driver), the driver called
//! in-process, and the driver in a daemon called by the Rust client. The
//! simulated laser answers after 2 ms, as a real one takes a moment too;
//! the difference between the rows is what the driver and the daemon add.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use pyrolab_host::client::Proxy;
use pyrolab_plugin_api::{CallArgs, Value};
use pyrolab_test_support::pty_laser::PtyLaser;
use pyrolab_test_support::{Background, Sandbox};

const ROUNDS: usize = 300;

fn main() {
    let laser = PtyLaser::start();
    println!("TSL-550 `WA` query on a PTY ({ROUNDS} rounds; median, p99)");

    let mut port = open_raw(laser.port());
    report(
        "baseline: raw PTY round trip",
        measure(|| {
            port.write_all(b"WA\r").expect("write");
            read_line(&mut port);
        }),
    );
    drop(port);

    let mut driver = tsl550::Tsl550::new(tsl550::Parameters {
        port: Some(laser.port().display().to_string()),
        ..tsl550::Parameters::default()
    })
    .expect("driver");
    driver.autoconnect().expect("connect");
    report(
        "driver in-process (serialport)",
        measure(|| {
            driver.wavelength(None).expect("wavelength");
        }),
    );
    driver.close();

    let sandbox = Sandbox::new();
    sandbox.install_plugin("tsl550");
    let config = sandbox.path().join("lab.yaml");
    fs::write(
        &config,
        format!(
            "version: '1.0'\nplugin_dirs: [{}]\ndaemons:\n  lab: {{host: 127.0.0.1, port: 0}}\nservices:\n  laser: {{module: tsl550, classname: TSL550, parameters: {{port: {}}}, instancemode: single, daemon: lab}}\n",
            sandbox.plugin_dir().display(),
            laser.port().display()
        ),
    )
    .expect("config");
    let mut daemon = Background::start(
        sandbox
            .host()
            .args(["run", "daemon", "lab", "--config"])
            .arg(&config),
    );
    let line = daemon.wait_for_line("service laser: ", Duration::from_secs(30));
    let uri = line.rsplit(' ').next().expect("uri").to_owned();
    let proxy = Proxy::connect(&uri).expect("proxy");
    proxy
        .call_with("autoconnect", CallArgs::positional(vec![]))
        .expect("autoconnect");
    report(
        "driver in a daemon, Rust client",
        measure(|| {
            let value = proxy
                .call_with("wavelength", CallArgs::positional(vec![]))
                .expect("wavelength");
            assert!(matches!(value, Value::Float(_)));
        }),
    );
    daemon.stop();
}

fn open_raw(path: &std::path::Path) -> File {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(path)
        .expect("open the PTY")
}

fn read_line(port: &mut File) {
    let mut byte = [0u8; 1];
    loop {
        port.read_exact(&mut byte).expect("read");
        if byte[0] == b'\r' {
            return;
        }
    }
}

fn measure(mut round: impl FnMut()) -> Vec<Duration> {
    for _ in 0..10 {
        round();
    }
    (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            round();
            started.elapsed()
        })
        .collect()
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "  {what:<36} {:>7.3} ms  (p99 {:>7.3} ms)",
        at(0.5),
        at(0.99)
    );
}
