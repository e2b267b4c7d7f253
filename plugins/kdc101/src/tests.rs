//! The driver against the simulated controller on a pseudo-terminal, in
//! process: the same bytes as with the instrument's USB serial port.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use simulators::kdc101::Simulator;

use super::*;

fn driver(simulator: &Simulator) -> Kdc101 {
    let mut kdc = Kdc101::new(Parameters {
        port: Some(simulator.resource()),
        serialno: Some(simulator.serial_number().to_string()),
        timeout: 0.5,
        ..Parameters::default()
    })
    .expect("parameters");
    assert!(kdc.autoconnect().expect("connect"));
    kdc
}

/// A homed stage, moving fast.
fn homed(simulator: &Simulator) -> Kdc101 {
    let mut kdc = driver(simulator);
    kdc.set_move_velocity(2.5).unwrap();
    kdc.set_move_acceleration(4.0).unwrap();
    kdc.set_homing_velocity(2.0).unwrap();
    kdc.home(true, None).unwrap();
    kdc
}

fn near(value: f64, expected: f64) -> bool {
    (value - expected).abs() < 1e-4
}

fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn it_connects_homes_and_moves_the_stage_in_millimetres() {
    let simulator = Simulator::start().unwrap();
    let mut kdc = driver(&simulator);
    assert_eq!(kdc.serialno(), "27000101");
    let info = kdc.info().unwrap();
    assert_eq!(info.model, "KDC101");
    assert_eq!(info.firmware, "3.0.7");
    assert_eq!(info.unit, "mm");
    kdc.identify().unwrap();
    assert!(wait_until(|| simulator.identified() == 1));
    assert!(!kdc.homed().unwrap());
    assert!(near(kdc.move_velocity().unwrap(), 2.3));

    kdc.set_move_velocity(2.5).unwrap();
    kdc.set_move_acceleration(4.0).unwrap();
    kdc.set_homing_velocity(2.0).unwrap();
    assert!(near(kdc.move_velocity().unwrap(), 2.5));
    assert!(near(kdc.homing_velocity().unwrap(), 2.0));
    kdc.home(true, None).unwrap();
    assert!(kdc.homed().unwrap());
    assert!(near(kdc.get_position().unwrap(), 0.0));

    let started = Instant::now();
    kdc.move_to(1.5, true, None).unwrap();
    // 1.5 mm at 2.5 mm/s and 4 mm/s²: about 1.2 s.
    assert!(
        started.elapsed() > Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(near(kdc.position().unwrap(), 1.5));
    assert!(near(simulator.position_mm(), 1.5));
    kdc.move_by(-0.5, true, None).unwrap();
    assert!(near(kdc.get_position().unwrap(), 1.0));

    let status = kdc.status().unwrap();
    assert!(status.homed && status.channel_enabled && status.motor_connected);
    assert!(!status.moving_forward && !status.moving_reverse);
    assert!(!kdc.is_moving().unwrap());
    assert!(kdc.check_connection());
}

#[test]
fn values_it_cannot_take_are_refused_by_the_driver_or_by_the_controller() {
    let simulator = Simulator::start().unwrap();
    let mut kdc = driver(&simulator);

    // The controller's own refusal, with its code and text.
    let err = kdc.set_move_velocity(5.0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RuntimeError);
    assert!(
        err.message().contains(
            "the KDC101 refused MOT_SET_VELPARAMS (0x0413): error 39: move velocity 5.000 mm/s not in 0-2.6 mm/s"
        ),
        "{err}"
    );
    assert!(near(kdc.move_velocity().unwrap(), 2.3), "it kept its own");

    // The driver's checks: nothing sent.
    for err in [
        kdc.move_to(30.0, true, None).unwrap_err(),
        kdc.move_by(-1.0, true, None).unwrap_err(),
        kdc.set_move_velocity(-1.0).unwrap_err(),
        kdc.jog("sideways".into(), true, None).unwrap_err(),
        kdc.set_jog_mode("sometimes".into()).unwrap_err(),
        kdc.set_max_pos(-5.0).unwrap_err(),
        kdc.wait_for_completion("done".into(), 5.0).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::ValueError, "{err}");
    }
    let err = kdc.move_to(30.0, true, None).unwrap_err();
    assert!(
        err.message()
            .contains("position 30 mm is outside the soft limits, 0 to 25 mm"),
        "{err}"
    );
    assert!(!kdc.is_moving().unwrap());

    // Partial: cut short at the limit.
    kdc.set_move_velocity(2.5).unwrap();
    kdc.set_move_acceleration(4.0).unwrap();
    kdc.set_max_pos(0.5).unwrap();
    kdc.set_soft_limits_mode("partial".into()).unwrap();
    kdc.move_to(5.0, true, None).unwrap();
    assert!(near(kdc.get_position().unwrap(), 0.5));
}

#[test]
fn moves_run_without_waiting_jog_and_stop() {
    let simulator = Simulator::start().unwrap();
    let mut kdc = homed(&simulator);

    let started = Instant::now();
    kdc.move_to(1.0, false, None).unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
    assert!(kdc.is_moving().unwrap());
    kdc.wait_for_completion("moved".into(), 5.0).unwrap();
    assert!(near(kdc.get_position().unwrap(), 1.0));
    // Nothing under way: at once.
    kdc.wait_for_completion("moved".into(), 5.0).unwrap();

    kdc.set_jog_step_size(0.25).unwrap();
    assert_eq!(kdc.jog_mode().unwrap(), "stepped");
    assert!(near(kdc.jog_step_size().unwrap(), 0.25));
    kdc.jog("forward".into(), true, None).unwrap();
    assert!(near(kdc.get_position().unwrap(), 1.25));

    kdc.move_continuous("forward".into()).unwrap();
    thread::sleep(Duration::from_millis(300));
    assert!(kdc.is_moving().unwrap());
    kdc.stop(false).unwrap();
    assert!(!kdc.is_moving().unwrap());
    assert!(kdc.get_position().unwrap() > 1.3);

    kdc.set_jog_mode("continuous".into()).unwrap();
    kdc.set_stop_mode("immediate".into()).unwrap();
    assert_eq!(kdc.stop_mode().unwrap(), "immediate");
    kdc.jog("backward".into(), true, None).unwrap();
    thread::sleep(Duration::from_millis(200));
    let status = kdc.status().unwrap();
    assert!(status.jogging_reverse, "{status:?}");
    kdc.stop(true).unwrap();
    assert!(!kdc.is_moving().unwrap());

    kdc.set_backlash(0.05).unwrap();
    assert!(near(kdc.backlash().unwrap(), 0.05));
}

#[test]
fn a_mute_or_garbled_controller_is_a_clear_error_and_it_recovers() {
    let simulator = Simulator::start().unwrap();
    let mut kdc = driver(&simulator);

    simulator.faults.mute.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let err = kdc.get_position().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimeoutError, "{err}");
    assert!(
        err.message()
            .contains("did not answer MOT_REQ_DCSTATUSUPDATE (0x0490) within 0.5 s"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    simulator.faults.mute.store(false, Ordering::SeqCst);
    assert!(near(kdc.get_position().unwrap(), 0.0));

    simulator.faults.garble.store(true, Ordering::SeqCst);
    let err = kdc.move_velocity().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionError, "{err}");
    assert!(
        err.message().contains("garbled reply from the KDC101"),
        "{err}"
    );
    assert!(
        err.message()
            .contains("message 0x0999 is not a message a KDC101 sends"),
        "{err}"
    );
    simulator.faults.garble.store(false, Ordering::SeqCst);
    assert!(near(kdc.move_velocity().unwrap(), 2.3));
}

#[test]
fn an_unplugged_controller_fails_the_move_under_way_and_a_new_port_works() {
    let mut simulator = Simulator::start().unwrap();
    let mut kdc = driver(&simulator);
    kdc.set_move_velocity(1.0).unwrap();
    let unplugging = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        simulator.unplug();
        simulator
    });
    let started = Instant::now();
    let err = kdc.move_to(5.0, true, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionError, "{err}");
    assert!(
        err.message().contains("lost the KDC101 on /dev/pts/"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let _unplugged = unplugging.join().unwrap();
    // It tries the same port again, which is gone.
    let err = kdc.get_position().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionError, "{err}");

    let replugged = Simulator::start().unwrap();
    kdc.connect(None, None, None, Some(replugged.resource()))
        .unwrap();
    assert!(near(kdc.get_position().unwrap(), 0.0));
}

#[test]
fn by_id_names_give_kdc101_serial_numbers() {
    assert_eq!(
        kdc101_serial_in("usb-Thorlabs_Kinesis_K-Cube__DC_Driver_27000101-if00-port0"),
        Some("27000101")
    );
    assert_eq!(
        kdc101_serial_in("usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"),
        None
    );
    assert_eq!(
        kdc101_serial_in("usb-Thorlabs_Kinesis_K-Cube_Stepper_26000001-if00-port0"),
        None
    );
    assert!(matches!(
        resource_of("/dev/ttyUSB0").unwrap(),
        Resource::Serial { port } if port == "/dev/ttyUSB0"
    ));
    assert!(matches!(
        resource_of("TCPIP0::moxa::4001::SOCKET").unwrap(),
        Resource::Socket { port: 4001, .. }
    ));
    assert!(resource_of("TCPIP0::host::inst0::INSTR").is_err());
}
