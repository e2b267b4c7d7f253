//! A simulated Thorlabs KDC101 K-Cube DC servo motor controller driving a
//! Z825B actuator (25 mm of travel), built from the Thorlabs Motion
//! Controllers Host-Controller Communications Protocol: the APT binary
//! messages the KDC101 takes and sends, on a pseudo-terminal as the
//! controller's FTDI USB serial port is.
//!
//! What it models:
//!
//! - **Motion in time.** A move accelerates at the set acceleration to the
//!   set velocity, cruises, and brakes to stop on its target (a trapezoid,
//!   integrated in steps of at most 2 ms); a new move retargets a running
//!   one; moves ending in reverse overshoot by the backlash distance and
//!   come back forward, as the controller's backlash correction does.
//! - **Ends.** Limit switches at both ends of the travel (0 and 25 mm from
//!   the reverse switch) stop any motion there (`MOVE_STOPPED`) and show in
//!   the status bits.
//! - **Homing.** `MOVE_HOME` seeks the homing switch at the homing
//!   velocity, backs off by the offset distance, zeroes the position
//!   counter there and sends `MOVE_HOMED`. Until then the counter reads 0
//!   where the stage was at power-up (0.5 mm from the reverse switch).
//! - **Jogs** of the jog step at the jog velocity (single step), or until
//!   stopped (continuous); `MOVE_VELOCITY` moves until stopped.
//! - **Stops**, profiled (braking at the acceleration) or immediate, each
//!   ending with `MOVE_STOPPED`.
//! - **Status updates** (`MOT_GET_DCSTATUSUPDATE`) every 100 ms after
//!   `HW_START_UPDATEMSGS`; like the controller on USB it stops sending
//!   them when the host has not acknowledged (`MOT_ACK_DCSTATUSUPDATE`)
//!   the last 50, and resumes at the next acknowledgement.
//! - **Refusals** (`HW_RICHRESPONSE`, with the refused message's id, an
//!   error code and a text): velocities or accelerations beyond the
//!   Z825B's (2.6 mm/s, 4 mm/s²), and moves while the channel is disabled.
//!   The protocol document gives no table of firmware error codes, so the
//!   codes are Kinesis' own for the same conditions ([`error_code`]).
//!
//! Messages it does not know are ignored, as the controller ignores them.
//! A test can make it mute or garbled ([`Faults`]) or pull its cable
//! ([`Simulator::unplug`]).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::pty::{Plug, PtyPort, SerialDevice, TcpPort};

/// The controller's serial number (KDC101 serial numbers begin with 27).
pub const SERIAL_NUMBER: u32 = 27_000_101;
/// Encoder counts per millimetre of a Z8 actuator (Z806, Z812, Z825B).
pub const COUNTS_PER_MM: f64 = 34_554.96;
/// The Z825B's travel, between its two limit switches.
pub const TRAVEL_MM: f64 = 25.0;
/// The fastest the Z825B may be driven.
pub const MAX_VELOCITY_MM_S: f64 = 2.6;
/// The hardest the Z825B may be accelerated.
pub const MAX_ACCELERATION_MM_S2: f64 = 4.0;
/// How often status updates go out while they are on.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(100);
/// Status updates the controller sends unacknowledged before it stops.
pub const UNACKNOWLEDGED_LIMIT: u32 = 50;

/// The KDC101's servo cycle (s), in which APT velocities and accelerations
/// are counted: velocity = counts/s × T × 65536, acceleration = counts/s²
/// × T² × 65536.
const SAMPLE_INTERVAL: f64 = 2048.0 / 6e6;
/// Where the stage is at power-up, from the reverse limit switch.
const POWER_UP_POSITION_MM: f64 = 0.5;
/// The longest step of the motion integrator, in seconds.
const MAX_STEP: f64 = 0.002;

/// Addresses: the host, and a single-channel USB controller.
const HOST: u8 = 0x01;
const USB_UNIT: u8 = 0x50;
const DATA_FLAG: u8 = 0x80;
/// The one channel of a K-Cube.
const CHANNEL: u16 = 1;
/// The longest message the controller takes: anything claiming more is
/// noise, dropped a byte at a time until a header makes sense.
const MAX_DATA_LEN: usize = 128;

/// The message ids the simulator takes or sends.
mod id {
    pub const HW_REQ_INFO: u16 = 0x0005;
    pub const HW_GET_INFO: u16 = 0x0006;
    pub const HW_START_UPDATEMSGS: u16 = 0x0011;
    pub const HW_STOP_UPDATEMSGS: u16 = 0x0012;
    pub const HW_RICHRESPONSE: u16 = 0x0081;
    pub const MOD_SET_CHANENABLESTATE: u16 = 0x0210;
    pub const MOD_REQ_CHANENABLESTATE: u16 = 0x0211;
    pub const MOD_GET_CHANENABLESTATE: u16 = 0x0212;
    pub const MOD_IDENTIFY: u16 = 0x0223;
    pub const MOT_SET_POSCOUNTER: u16 = 0x0410;
    pub const MOT_REQ_POSCOUNTER: u16 = 0x0411;
    pub const MOT_GET_POSCOUNTER: u16 = 0x0412;
    pub const MOT_SET_VELPARAMS: u16 = 0x0413;
    pub const MOT_REQ_VELPARAMS: u16 = 0x0414;
    pub const MOT_GET_VELPARAMS: u16 = 0x0415;
    pub const MOT_SET_JOGPARAMS: u16 = 0x0416;
    pub const MOT_REQ_JOGPARAMS: u16 = 0x0417;
    pub const MOT_GET_JOGPARAMS: u16 = 0x0418;
    pub const MOT_REQ_STATUSBITS: u16 = 0x0429;
    pub const MOT_GET_STATUSBITS: u16 = 0x042A;
    pub const MOT_SET_GENMOVEPARAMS: u16 = 0x043A;
    pub const MOT_REQ_GENMOVEPARAMS: u16 = 0x043B;
    pub const MOT_GET_GENMOVEPARAMS: u16 = 0x043C;
    pub const MOT_SET_HOMEPARAMS: u16 = 0x0440;
    pub const MOT_REQ_HOMEPARAMS: u16 = 0x0441;
    pub const MOT_GET_HOMEPARAMS: u16 = 0x0442;
    pub const MOT_MOVE_HOME: u16 = 0x0443;
    pub const MOT_MOVE_HOMED: u16 = 0x0444;
    pub const MOT_SET_MOVERELPARAMS: u16 = 0x0445;
    pub const MOT_REQ_MOVERELPARAMS: u16 = 0x0446;
    pub const MOT_GET_MOVERELPARAMS: u16 = 0x0447;
    pub const MOT_MOVE_RELATIVE: u16 = 0x0448;
    pub const MOT_SET_MOVEABSPARAMS: u16 = 0x0450;
    pub const MOT_REQ_MOVEABSPARAMS: u16 = 0x0451;
    pub const MOT_GET_MOVEABSPARAMS: u16 = 0x0452;
    pub const MOT_MOVE_ABSOLUTE: u16 = 0x0453;
    pub const MOT_MOVE_VELOCITY: u16 = 0x0457;
    pub const MOT_MOVE_COMPLETED: u16 = 0x0464;
    pub const MOT_MOVE_STOP: u16 = 0x0465;
    pub const MOT_MOVE_STOPPED: u16 = 0x0466;
    pub const MOT_MOVE_JOG: u16 = 0x046A;
    pub const MOT_REQ_DCSTATUSUPDATE: u16 = 0x0490;
    pub const MOT_GET_DCSTATUSUPDATE: u16 = 0x0491;
    pub const MOT_ACK_DCSTATUSUPDATE: u16 = 0x0492;
}

/// The codes of the simulator's `HW_RICHRESPONSE` refusals (Kinesis'
/// codes for the same conditions; the protocol document lists none).
pub mod error_code {
    /// A move while the channel (the motor drive) is disabled.
    pub const CHANNEL_DISABLED: u16 = 36;
    /// A velocity or acceleration the stage cannot do.
    pub const INVALID_VELOCITY_PARAMETER: u16 = 39;
}

/// The status bits of `MOT_GET_DCSTATUSUPDATE` and `MOT_GET_STATUSBITS`.
pub mod status_bit {
    pub const FORWARD_LIMIT: u32 = 0x0000_0001;
    pub const REVERSE_LIMIT: u32 = 0x0000_0002;
    pub const MOVING_FORWARD: u32 = 0x0000_0010;
    pub const MOVING_REVERSE: u32 = 0x0000_0020;
    pub const JOGGING_FORWARD: u32 = 0x0000_0040;
    pub const JOGGING_REVERSE: u32 = 0x0000_0080;
    pub const MOTOR_CONNECTED: u32 = 0x0000_0100;
    pub const HOMING: u32 = 0x0000_0200;
    pub const HOMED: u32 = 0x0000_0400;
    pub const CHANNEL_ENABLED: u32 = 0x8000_0000;
}

/// How it misbehaves, set from outside while it runs.
#[derive(Default)]
pub struct Faults {
    /// It takes commands (and moves) but sends nothing.
    pub mute: AtomicBool,
    /// Everything it sends is replaced by bytes that are no APT message: a
    /// header with an id the KDC101 never sends, then noise.
    pub garble: AtomicBool,
}

/// What a test can read of the controller from outside.
#[derive(Default)]
struct Observed {
    identified: AtomicU32,
    position: AtomicI32,
}

/// Velocity parameters, in APT units.
#[derive(Clone, Copy)]
struct Profile {
    acceleration: i32,
    max_velocity: i32,
}

/// Jog parameters, in APT units.
#[derive(Clone, Copy)]
struct Jog {
    /// 1 continuous, 2 single step.
    mode: u16,
    step: i32,
    profile: Profile,
    /// 1 immediate, 2 profiled.
    stop_mode: u16,
}

/// Homing parameters, in APT units.
#[derive(Clone, Copy)]
struct Homing {
    /// 1 forward, 2 reverse.
    direction: u16,
    /// 1 the reverse hardware switch, 4 the forward one.
    limit_switch: u16,
    velocity: i32,
    offset: i32,
}

/// Which status bits a motion sets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Move,
    Jog,
}

/// What the motor is doing; positions in encoder counts from the reverse
/// limit switch, speeds in counts/s.
#[derive(Clone, Copy, Debug)]
enum Motion {
    /// Towards `target`, then (the backlash correction) `then`.
    To {
        target: f64,
        then: Option<f64>,
        speed: f64,
        acceleration: f64,
        kind: Kind,
    },
    /// On in `direction` (+1 or -1) until stopped or at a limit switch.
    Continuous {
        direction: f64,
        speed: f64,
        acceleration: f64,
        kind: Kind,
    },
    /// Braking to a standstill.
    Stopping { acceleration: f64 },
    /// Seeking the homing switch in `direction`, then backing off.
    Homing {
        seeking: bool,
        direction: f64,
        speed: f64,
        acceleration: f64,
    },
}

/// What ended a step of motion.
enum Ended {
    Completed,
    Stopped,
    Homed,
}

/// The controller's state.
struct Controller {
    faults: Arc<Faults>,
    observed: Arc<Observed>,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Position (counts from the reverse switch) and velocity (counts/s).
    x: f64,
    v: f64,
    /// Where the position counter reads 0.
    origin: f64,
    motion: Option<Motion>,
    last_step: Instant,
    homed: bool,
    enabled: bool,
    profile: Profile,
    jog: Jog,
    homing: Homing,
    backlash: i32,
    relative_distance: i32,
    absolute_position: i32,
    updates_on: bool,
    next_update: Instant,
    unacknowledged: u32,
}

fn counts(mm: f64) -> f64 {
    mm * COUNTS_PER_MM
}

fn apt_velocity(mm_s: f64) -> i32 {
    (counts(mm_s) * SAMPLE_INTERVAL * 65536.0).round() as i32
}

fn apt_acceleration(mm_s2: f64) -> i32 {
    (counts(mm_s2) * SAMPLE_INTERVAL * SAMPLE_INTERVAL * 65536.0).round() as i32
}

/// APT velocity units to counts/s.
fn counts_per_s(apt: i32) -> f64 {
    f64::from(apt) / (SAMPLE_INTERVAL * 65536.0)
}

/// APT acceleration units to counts/s².
fn counts_per_s2(apt: i32) -> f64 {
    f64::from(apt) / (SAMPLE_INTERVAL * SAMPLE_INTERVAL * 65536.0)
}

fn approach(value: f64, target: f64, by: f64) -> f64 {
    if value < target {
        (value + by).min(target)
    } else {
        (value - by).max(target)
    }
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn i32_at(data: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// `CHANNEL` followed by `fields`, as most parameter messages are laid out.
fn channel_and(fields: &[&[u8]]) -> Vec<u8> {
    let mut data = CHANNEL.to_le_bytes().to_vec();
    for field in fields {
        data.extend_from_slice(field);
    }
    data
}

impl Controller {
    fn new(faults: Arc<Faults>, observed: Arc<Observed>, now: Instant) -> Controller {
        let x = counts(POWER_UP_POSITION_MM);
        let profile = Profile {
            acceleration: apt_acceleration(1.5),
            max_velocity: apt_velocity(2.3),
        };
        Controller {
            faults,
            observed,
            input: Vec::new(),
            output: Vec::new(),
            x,
            v: 0.0,
            origin: x,
            motion: None,
            last_step: now,
            homed: false,
            enabled: true,
            profile,
            jog: Jog {
                mode: 2,
                step: counts(0.1).round() as i32,
                profile: Profile {
                    acceleration: apt_acceleration(1.5),
                    max_velocity: apt_velocity(2.0),
                },
                stop_mode: 2,
            },
            homing: Homing {
                direction: 2,
                limit_switch: 1,
                velocity: apt_velocity(1.0),
                offset: 0,
            },
            backlash: counts(0.02).round() as i32,
            relative_distance: 0,
            absolute_position: 0,
            updates_on: false,
            next_update: now,
            unacknowledged: 0,
        }
    }

    // ---- what it sends ----

    fn emit(&mut self, frame: Vec<u8>) {
        if self.faults.mute.load(Ordering::SeqCst) {
            return;
        }
        if self.faults.garble.load(Ordering::SeqCst) {
            // An id no controller sends, in an otherwise proper header, then noise.
            self.output
                .extend_from_slice(&[0x99, 0x09, 0x00, 0x00, HOST, USB_UNIT]);
            self.output.extend_from_slice(&[0xFF, 0x00, 0x81, 0x7E]);
            return;
        }
        self.output.extend(frame);
    }

    fn send_short(&mut self, id: u16, param1: u8, param2: u8) {
        let [low, high] = id.to_le_bytes();
        self.emit(vec![low, high, param1, param2, HOST, USB_UNIT]);
    }

    fn send_long(&mut self, id: u16, data: &[u8]) {
        let mut frame = id.to_le_bytes().to_vec();
        frame.extend_from_slice(&(data.len() as u16).to_le_bytes());
        frame.extend_from_slice(&[HOST | DATA_FLAG, USB_UNIT]);
        frame.extend_from_slice(data);
        self.emit(frame);
    }

    /// `HW_RICHRESPONSE`: the controller cannot do message `refused`.
    fn refuse(&mut self, refused: u16, code: u16, notes: &str) {
        let mut data = refused.to_le_bytes().to_vec();
        data.extend_from_slice(&code.to_le_bytes());
        let mut text = [0u8; 64];
        let notes = notes.as_bytes();
        let len = notes.len().min(63);
        text[..len].copy_from_slice(&notes[..len]);
        data.extend_from_slice(&text);
        self.send_long(id::HW_RICHRESPONSE, &data);
    }

    fn position_counter(&self) -> i32 {
        (self.x - self.origin).round() as i32
    }

    fn status_bits(&self) -> u32 {
        use status_bit::*;
        let mut bits = MOTOR_CONNECTED;
        if self.x >= counts(TRAVEL_MM) - 0.5 {
            bits |= FORWARD_LIMIT;
        }
        if self.x <= 0.5 {
            bits |= REVERSE_LIMIT;
        }
        if self.homed {
            bits |= HOMED;
        }
        if self.enabled {
            bits |= CHANNEL_ENABLED;
        }
        let forward = match self.motion {
            None => return bits,
            Some(Motion::To { target, .. }) if self.v == 0.0 => target > self.x,
            Some(Motion::Continuous { direction, .. }) if self.v == 0.0 => direction > 0.0,
            Some(_) => self.v > 0.0,
        };
        let (forward_bit, reverse_bit) = match self.motion {
            Some(Motion::To {
                kind: Kind::Jog, ..
            })
            | Some(Motion::Continuous {
                kind: Kind::Jog, ..
            }) => (JOGGING_FORWARD, JOGGING_REVERSE),
            _ => (MOVING_FORWARD, MOVING_REVERSE),
        };
        if matches!(self.motion, Some(Motion::Homing { .. })) {
            bits |= HOMING;
        }
        bits | if forward { forward_bit } else { reverse_bit }
    }

    /// The 14 bytes of a DC status: channel, position, velocity, a
    /// reserved word, status bits. The velocity word carries no sign (the
    /// direction is in the status bits) and the protocol document gives
    /// it no unit: it is taken here as encoder counts per servo cycle.
    fn dc_status(&self) -> Vec<u8> {
        let per_cycle = (self.v.abs() * SAMPLE_INTERVAL)
            .round()
            .min(f64::from(u16::MAX)) as u16;
        channel_and(&[
            &self.position_counter().to_le_bytes(),
            &per_cycle.to_le_bytes(),
            &0u16.to_le_bytes(),
            &self.status_bits().to_le_bytes(),
        ])
    }

    fn info(&self) -> Vec<u8> {
        let mut data = SERIAL_NUMBER.to_le_bytes().to_vec();
        data.extend_from_slice(b"KDC101\0\0");
        data.extend_from_slice(&16u16.to_le_bytes()); // hardware type
        data.extend_from_slice(&[7, 0, 3, 0]); // firmware 3.0.7: minor, interim, major
        data.extend_from_slice(&[0u8; 60]); // for internal use
        data.extend_from_slice(&1u16.to_le_bytes()); // hardware version
        data.extend_from_slice(&0u16.to_le_bytes()); // modification state
        data.extend_from_slice(&1u16.to_le_bytes()); // channels
        data
    }

    // ---- time ----

    /// Runs the motion up to `now`, and sends the status updates due.
    fn advance(&mut self, now: Instant) {
        let mut left = now
            .saturating_duration_since(self.last_step)
            .as_secs_f64()
            .min(1.0);
        self.last_step = now;
        while left > 0.0 && self.motion.is_some() {
            let dt = left.min(MAX_STEP);
            left -= dt;
            if let Some(ended) = self.step(dt) {
                self.finish(ended);
            }
        }
        self.observed
            .position
            .store(self.position_counter(), Ordering::SeqCst);
        if self.updates_on && now >= self.next_update {
            self.next_update = now + UPDATE_INTERVAL;
            if self.unacknowledged < UNACKNOWLEDGED_LIMIT {
                self.unacknowledged += 1;
                let status = self.dc_status();
                self.send_long(id::MOT_GET_DCSTATUSUPDATE, &status);
            }
        }
    }

    /// One step of `dt` seconds of the motion; what ended it, if it ended.
    fn step(&mut self, dt: f64) -> Option<Ended> {
        let motion = self.motion?;
        let ended = match motion {
            Motion::To {
                target,
                then,
                speed,
                acceleration,
                kind,
            } => {
                if !self.step_towards(target, speed, acceleration, dt) {
                    None
                } else if let Some(last) = then {
                    self.motion = Some(Motion::To {
                        target: last,
                        then: None,
                        speed,
                        acceleration,
                        kind,
                    });
                    None
                } else {
                    Some(Ended::Completed)
                }
            }
            Motion::Continuous {
                direction,
                speed,
                acceleration,
                ..
            } => {
                self.v = approach(self.v, direction * speed, acceleration * dt);
                self.x += self.v * dt;
                None
            }
            Motion::Stopping { acceleration } => {
                self.v = approach(self.v, 0.0, acceleration * dt);
                self.x += self.v * dt;
                (self.v == 0.0).then_some(Ended::Stopped)
            }
            Motion::Homing {
                seeking: true,
                direction,
                speed,
                acceleration,
            } => {
                self.v = approach(self.v, direction * speed, acceleration * dt);
                self.x += self.v * dt;
                None
            }
            Motion::Homing {
                seeking: false,
                speed,
                acceleration,
                ..
            } => {
                let home = self.home_position();
                self.step_towards(home, speed, acceleration, dt)
                    .then_some(Ended::Homed)
            }
        };
        ended.or_else(|| self.at_limit_switch())
    }

    /// Where homing ends: the offset away from the homing switch.
    fn home_position(&self) -> f64 {
        let offset = f64::from(self.homing.offset);
        if self.homing.limit_switch == 4 {
            counts(TRAVEL_MM) - offset
        } else {
            offset
        }
    }

    /// Accelerates, cruises or brakes towards `target`; true on arrival.
    fn step_towards(&mut self, target: f64, speed: f64, acceleration: f64, dt: f64) -> bool {
        let to_go = target - self.x;
        if to_go.abs() < 0.5 && self.v.abs() <= acceleration * dt {
            self.x = target;
            self.v = 0.0;
            return true;
        }
        // The fastest it may go here and still stop on the target.
        let braking = (2.0 * acceleration * to_go.abs()).sqrt();
        let wanted = to_go.signum() * speed.min(braking);
        self.v = approach(self.v, wanted, acceleration * dt);
        let next = self.x + self.v * dt;
        if (target - next).signum() != to_go.signum() {
            self.x = target;
            self.v = 0.0;
            return true;
        }
        self.x = next;
        false
    }

    /// A limit switch in the way stops the motor on it.
    fn at_limit_switch(&mut self) -> Option<Ended> {
        let travel = counts(TRAVEL_MM);
        let hit = (self.x >= travel && self.v > 0.0) || (self.x <= 0.0 && self.v < 0.0);
        if !hit {
            return None;
        }
        self.x = self.x.clamp(0.0, travel);
        self.v = 0.0;
        if let Some(Motion::Homing {
            seeking: true,
            speed,
            acceleration,
            direction,
        }) = self.motion
        {
            let homing_switch_is_forward = self.homing.limit_switch == 4;
            if (self.x > 0.0) == homing_switch_is_forward {
                self.motion = Some(Motion::Homing {
                    seeking: false,
                    direction,
                    speed,
                    acceleration,
                });
                return None;
            }
        }
        Some(Ended::Stopped)
    }

    fn finish(&mut self, ended: Ended) {
        self.motion = None;
        self.v = 0.0;
        match ended {
            Ended::Completed => {
                let status = self.dc_status();
                self.send_long(id::MOT_MOVE_COMPLETED, &status);
            }
            Ended::Stopped => {
                let status = self.dc_status();
                self.send_long(id::MOT_MOVE_STOPPED, &status);
            }
            Ended::Homed => {
                self.origin = self.x;
                self.homed = true;
                self.send_short(id::MOT_MOVE_HOMED, CHANNEL as u8, 0);
            }
        }
    }

    // ---- what it takes ----

    /// Splits `input` into messages and handles each; noise is dropped a
    /// byte at a time until a header makes sense again.
    fn take_messages(&mut self, now: Instant) {
        loop {
            if self.input.len() < 6 {
                return;
            }
            let header: [u8; 6] = self.input[..6].try_into().expect("six bytes");
            let id = u16::from_le_bytes([header[0], header[1]]);
            let (dest, source) = (header[4], header[5]);
            if dest & !DATA_FLAG != USB_UNIT || source != HOST {
                self.input.remove(0);
                continue;
            }
            if dest & DATA_FLAG == 0 {
                self.input.drain(..6);
                self.handle(id, header[3], None, now);
                continue;
            }
            let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
            if len > MAX_DATA_LEN {
                self.input.remove(0);
                continue;
            }
            if self.input.len() < 6 + len {
                return;
            }
            let data: Vec<u8> = self.input.drain(..6 + len).skip(6).collect();
            self.handle(id, 0, Some(&data), now);
        }
    }

    /// Message `id` with its second parameter (the first is the channel,
    /// always 1) or its data.
    fn handle(&mut self, id: u16, param2: u8, data: Option<&[u8]>, now: Instant) {
        match id {
            id::HW_REQ_INFO => {
                let info = self.info();
                self.send_long(id::HW_GET_INFO, &info);
            }
            id::MOD_IDENTIFY => {
                self.observed.identified.fetch_add(1, Ordering::SeqCst);
            }
            id::MOD_SET_CHANENABLESTATE => self.set_enabled(param2 == 0x01),
            id::MOD_REQ_CHANENABLESTATE => {
                let state = if self.enabled { 0x01 } else { 0x02 };
                self.send_short(id::MOD_GET_CHANENABLESTATE, CHANNEL as u8, state);
            }
            id::HW_START_UPDATEMSGS => {
                self.updates_on = true;
                self.unacknowledged = 0;
                self.next_update = now;
            }
            id::HW_STOP_UPDATEMSGS => self.updates_on = false,
            id::MOT_ACK_DCSTATUSUPDATE => self.unacknowledged = 0,
            id::MOT_REQ_DCSTATUSUPDATE => {
                let status = self.dc_status();
                self.send_long(id::MOT_GET_DCSTATUSUPDATE, &status);
            }
            id::MOT_REQ_STATUSBITS => {
                let data = channel_and(&[&self.status_bits().to_le_bytes()]);
                self.send_long(id::MOT_GET_STATUSBITS, &data);
            }
            id::MOT_SET_POSCOUNTER => {
                if let Some(position) = data.and_then(|d| i32_at(d, 2)) {
                    self.origin = self.x - f64::from(position);
                }
            }
            id::MOT_REQ_POSCOUNTER => {
                let data = channel_and(&[&self.position_counter().to_le_bytes()]);
                self.send_long(id::MOT_GET_POSCOUNTER, &data);
            }
            id::MOT_SET_VELPARAMS => {
                if let Some(data) = data.filter(|d| d.len() == 14) {
                    self.set_velocity_parameters(data);
                }
            }
            id::MOT_REQ_VELPARAMS => self.send_velocity_parameters(),
            id::MOT_SET_JOGPARAMS => {
                if let Some(data) = data.filter(|d| d.len() == 22) {
                    self.set_jog_parameters(data);
                }
            }
            id::MOT_REQ_JOGPARAMS => self.send_jog_parameters(),
            id::MOT_SET_HOMEPARAMS => {
                if let Some(data) = data.filter(|d| d.len() == 14) {
                    self.set_homing_parameters(data);
                }
            }
            id::MOT_REQ_HOMEPARAMS => self.send_homing_parameters(),
            id::MOT_SET_GENMOVEPARAMS => {
                if let Some(backlash) = data.and_then(|d| i32_at(d, 2)) {
                    self.backlash = backlash;
                }
            }
            id::MOT_REQ_GENMOVEPARAMS => {
                let data = channel_and(&[&self.backlash.to_le_bytes()]);
                self.send_long(id::MOT_GET_GENMOVEPARAMS, &data);
            }
            id::MOT_SET_MOVERELPARAMS => {
                if let Some(distance) = data.and_then(|d| i32_at(d, 2)) {
                    self.relative_distance = distance;
                }
            }
            id::MOT_REQ_MOVERELPARAMS => {
                let data = channel_and(&[&self.relative_distance.to_le_bytes()]);
                self.send_long(id::MOT_GET_MOVERELPARAMS, &data);
            }
            id::MOT_SET_MOVEABSPARAMS => {
                if let Some(position) = data.and_then(|d| i32_at(d, 2)) {
                    self.absolute_position = position;
                }
            }
            id::MOT_REQ_MOVEABSPARAMS => {
                let data = channel_and(&[&self.absolute_position.to_le_bytes()]);
                self.send_long(id::MOT_GET_MOVEABSPARAMS, &data);
            }
            id::MOT_MOVE_HOME => self.home(),
            id::MOT_MOVE_RELATIVE => {
                let distance = match data {
                    Some(data) => i32_at(data, 2),
                    None => Some(self.relative_distance),
                };
                if let Some(distance) = distance {
                    let target = self.x + f64::from(distance);
                    self.move_to(id, target, Kind::Move);
                }
            }
            id::MOT_MOVE_ABSOLUTE => {
                let position = match data {
                    Some(data) => i32_at(data, 2),
                    None => Some(self.absolute_position),
                };
                if let Some(position) = position {
                    let target = self.origin + f64::from(position);
                    self.move_to(id, target, Kind::Move);
                }
            }
            id::MOT_MOVE_VELOCITY => {
                let profile = self.profile;
                self.run(id, param2, profile, Kind::Move);
            }
            id::MOT_MOVE_JOG => self.jog(param2),
            id::MOT_MOVE_STOP => self.stop(param2 == 0x01),
            // Anything else is ignored, as the controller ignores it.
            _ => {}
        }
    }

    fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
        if !enabled && self.motion.is_some() {
            // The drive is off: the motor stops where it is.
            self.v = 0.0;
            self.finish(Ended::Stopped);
        }
    }

    /// Checks a velocity and acceleration against the stage's; refuses
    /// message `id` if it cannot do them.
    fn check_profile(&mut self, id: u16, what: &str, profile: Profile) -> bool {
        let (max_velocity, max_acceleration) = (
            apt_velocity(MAX_VELOCITY_MM_S),
            apt_acceleration(MAX_ACCELERATION_MM_S2),
        );
        let problem = if !(1..=max_velocity).contains(&profile.max_velocity) {
            format!(
                "{what} velocity {:.3} mm/s not in 0-{MAX_VELOCITY_MM_S} mm/s",
                counts_per_s(profile.max_velocity) / COUNTS_PER_MM
            )
        } else if !(1..=max_acceleration).contains(&profile.acceleration) {
            format!(
                "{what} acceleration {:.3} mm/s2 not in 0-{MAX_ACCELERATION_MM_S2} mm/s2",
                counts_per_s2(profile.acceleration) / COUNTS_PER_MM
            )
        } else {
            return true;
        };
        self.refuse(id, error_code::INVALID_VELOCITY_PARAMETER, &problem);
        false
    }

    fn set_velocity_parameters(&mut self, data: &[u8]) {
        let profile = Profile {
            acceleration: i32_at(data, 6).unwrap_or(0),
            max_velocity: i32_at(data, 10).unwrap_or(0),
        };
        if self.check_profile(id::MOT_SET_VELPARAMS, "move", profile) {
            self.profile = profile;
        }
    }

    fn send_velocity_parameters(&mut self) {
        let data = channel_and(&[
            &0i32.to_le_bytes(),
            &self.profile.acceleration.to_le_bytes(),
            &self.profile.max_velocity.to_le_bytes(),
        ]);
        self.send_long(id::MOT_GET_VELPARAMS, &data);
    }

    fn set_jog_parameters(&mut self, data: &[u8]) {
        let field = |at| i32_at(data, at).unwrap_or(0);
        let jog = Jog {
            mode: u16_at(data, 2).unwrap_or(0),
            step: field(4),
            profile: Profile {
                acceleration: field(12),
                max_velocity: field(16),
            },
            stop_mode: u16_at(data, 20).unwrap_or(0),
        };
        if !matches!(jog.mode, 1 | 2) || !matches!(jog.stop_mode, 1 | 2) {
            return; // not a jog the controller knows: ignored
        }
        if self.check_profile(id::MOT_SET_JOGPARAMS, "jog", jog.profile) {
            self.jog = jog;
        }
    }

    fn send_jog_parameters(&mut self) {
        let jog = self.jog;
        let data = channel_and(&[
            &jog.mode.to_le_bytes(),
            &jog.step.to_le_bytes(),
            &0i32.to_le_bytes(),
            &jog.profile.acceleration.to_le_bytes(),
            &jog.profile.max_velocity.to_le_bytes(),
            &jog.stop_mode.to_le_bytes(),
        ]);
        self.send_long(id::MOT_GET_JOGPARAMS, &data);
    }

    fn set_homing_parameters(&mut self, data: &[u8]) {
        let homing = Homing {
            direction: u16_at(data, 2).unwrap_or(0),
            limit_switch: u16_at(data, 4).unwrap_or(0),
            velocity: i32_at(data, 6).unwrap_or(0),
            offset: i32_at(data, 10).unwrap_or(0),
        };
        if !matches!(homing.direction, 1 | 2) || !matches!(homing.limit_switch, 1 | 4) {
            return;
        }
        let profile = Profile {
            acceleration: self.profile.acceleration,
            max_velocity: homing.velocity,
        };
        if self.check_profile(id::MOT_SET_HOMEPARAMS, "homing", profile) {
            self.homing = homing;
        }
    }

    fn send_homing_parameters(&mut self) {
        let homing = self.homing;
        let data = channel_and(&[
            &homing.direction.to_le_bytes(),
            &homing.limit_switch.to_le_bytes(),
            &homing.velocity.to_le_bytes(),
            &homing.offset.to_le_bytes(),
        ]);
        self.send_long(id::MOT_GET_HOMEPARAMS, &data);
    }

    /// Refuses a move (message `id`) while the drive is disabled.
    fn can_move(&mut self, id: u16) -> bool {
        if !self.enabled {
            self.refuse(
                id,
                error_code::CHANNEL_DISABLED,
                "channel 1 is disabled: enable it before moving",
            );
        }
        self.enabled
    }

    fn move_to(&mut self, id: u16, target: f64, kind: Kind) {
        if !self.can_move(id) {
            return;
        }
        let profile = match kind {
            Kind::Move => self.profile,
            Kind::Jog => self.jog.profile,
        };
        // Backlash correction: a move ending in reverse overshoots, then
        // comes back forward onto the target.
        let backlash = f64::from(self.backlash.max(0));
        let (first, then) = if target < self.x && backlash > 0.0 {
            (target - backlash, Some(target))
        } else {
            (target, None)
        };
        self.motion = Some(Motion::To {
            target: first,
            then,
            speed: counts_per_s(profile.max_velocity),
            acceleration: counts_per_s2(profile.acceleration),
            kind,
        });
    }

    /// Moves on in `direction` (1 forward, 2 reverse) until stopped.
    fn run(&mut self, id: u16, direction: u8, profile: Profile, kind: Kind) {
        if !matches!(direction, 1 | 2) || !self.can_move(id) {
            return;
        }
        self.motion = Some(Motion::Continuous {
            direction: if direction == 1 { 1.0 } else { -1.0 },
            speed: counts_per_s(profile.max_velocity),
            acceleration: counts_per_s2(profile.acceleration),
            kind,
        });
    }

    fn jog(&mut self, direction: u8) {
        if !matches!(direction, 1 | 2) {
            return;
        }
        if self.jog.mode == 1 {
            let profile = self.jog.profile;
            self.run(id::MOT_MOVE_JOG, direction, profile, Kind::Jog);
            return;
        }
        let step = f64::from(self.jog.step) * if direction == 1 { 1.0 } else { -1.0 };
        // A jog steps from where the last one was going, as the controller's do.
        let from = match self.motion {
            Some(Motion::To {
                target,
                then,
                kind: Kind::Jog,
                ..
            }) => then.unwrap_or(target),
            _ => self.x,
        };
        self.move_to(id::MOT_MOVE_JOG, from + step, Kind::Jog);
    }

    fn home(&mut self) {
        if !self.can_move(id::MOT_MOVE_HOME) {
            return;
        }
        self.homed = false;
        let direction = if self.homing.limit_switch == 4 {
            1.0
        } else {
            -1.0
        };
        self.motion = Some(Motion::Homing {
            seeking: true,
            direction,
            speed: counts_per_s(self.homing.velocity),
            acceleration: counts_per_s2(self.profile.acceleration),
        });
    }

    fn stop(&mut self, immediate: bool) {
        if self.motion.is_none() || immediate {
            self.v = 0.0;
            self.finish(Ended::Stopped);
            return;
        }
        let acceleration = match self.motion {
            Some(Motion::To { acceleration, .. })
            | Some(Motion::Continuous { acceleration, .. })
            | Some(Motion::Homing { acceleration, .. }) => acceleration,
            Some(Motion::Stopping { acceleration }) => acceleration,
            None => unreachable!("checked above"),
        };
        self.motion = Some(Motion::Stopping { acceleration });
    }
}

impl SerialDevice for Controller {
    fn receive(&mut self, bytes: &[u8], now: Instant) -> Vec<u8> {
        self.advance(now);
        self.input.extend_from_slice(bytes);
        self.take_messages(now);
        std::mem::take(&mut self.output)
    }

    fn poll(&mut self, now: Instant) -> Vec<u8> {
        self.advance(now);
        std::mem::take(&mut self.output)
    }
}

/// A simulated KDC101 with a Z825B on a pseudo-terminal; unplugged when
/// dropped.
pub struct Simulator {
    port: Plug,
    observed: Arc<Observed>,
    /// How it misbehaves.
    pub faults: Arc<Faults>,
}

impl Simulator {
    /// Powers up a fresh controller on a new pseudo-terminal.
    pub fn start() -> io::Result<Simulator> {
        Simulator::start_with(|controller| Ok(Plug::Pty(PtyPort::start(controller)?)))
    }

    /// Powers up a fresh controller behind a serial-to-Ethernet adapter
    /// on `host:port` (0: a free port).
    pub fn start_on_tcp(host: &str, port: u16) -> io::Result<Simulator> {
        Simulator::start_with(|controller| Ok(Plug::Tcp(TcpPort::start(controller, host, port)?)))
    }

    fn start_with(serve: impl FnOnce(Controller) -> io::Result<Plug>) -> io::Result<Simulator> {
        let faults = Arc::new(Faults::default());
        let observed = Arc::new(Observed::default());
        let controller =
            Controller::new(Arc::clone(&faults), Arc::clone(&observed), Instant::now());
        Ok(Simulator {
            port: serve(controller)?,
            observed,
            faults,
        })
    }

    /// The serial port to give the driver (`/dev/pts/N`; empty behind a
    /// TCP adapter).
    pub fn path(&self) -> &Path {
        self.port.path()
    }

    /// The VISA resource naming it (`ASRL/dev/pts/N::INSTR`, or
    /// `TCPIP0::127.0.0.1::PORT::SOCKET` behind a TCP adapter).
    pub fn resource(&self) -> String {
        self.port.resource()
    }

    /// Pulls the USB cable: the controller stops answering and the port
    /// closes under the driver.
    pub fn unplug(&mut self) {
        self.port.unplug();
    }

    /// Its serial number, as `HW_GET_INFO` gives it.
    pub fn serial_number(&self) -> u32 {
        SERIAL_NUMBER
    }

    /// How many times it was told to identify itself (`MOD_IDENTIFY`
    /// flashes the front panel's LED).
    pub fn identified(&self) -> u32 {
        self.observed.identified.load(Ordering::SeqCst)
    }

    /// Where the stage is, in mm on its position counter (what the
    /// instrument's display shows), independently of any driver.
    pub fn position_mm(&self) -> f64 {
        f64::from(self.observed.position.load(Ordering::SeqCst)) / COUNTS_PER_MM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The controller at time `t0`, updates off, and a clock.
    fn controller() -> (Controller, Instant) {
        let now = Instant::now();
        (Controller::new(Arc::default(), Arc::default(), now), now)
    }

    fn short(id: u16, param1: u8, param2: u8) -> Vec<u8> {
        let [low, high] = id.to_le_bytes();
        vec![low, high, param1, param2, USB_UNIT, HOST]
    }

    fn long(id: u16, data: &[u8]) -> Vec<u8> {
        let mut frame = id.to_le_bytes().to_vec();
        frame.extend_from_slice(&(data.len() as u16).to_le_bytes());
        frame.extend_from_slice(&[USB_UNIT | DATA_FLAG, HOST]);
        frame.extend_from_slice(data);
        frame
    }

    /// Splits what the controller sent into (id, data) messages.
    fn messages(mut bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        while bytes.len() >= 6 {
            let id = u16::from_le_bytes([bytes[0], bytes[1]]);
            assert_eq!(bytes[5], USB_UNIT);
            if bytes[4] & DATA_FLAG == 0 {
                assert_eq!(bytes[4], HOST);
                out.push((id, bytes[2..4].to_vec()));
                bytes = &bytes[6..];
            } else {
                let len = usize::from(u16::from_le_bytes([bytes[2], bytes[3]]));
                out.push((id, bytes[6..6 + len].to_vec()));
                bytes = &bytes[6 + len..];
            }
        }
        assert!(bytes.is_empty(), "a partial message: {bytes:?}");
        out
    }

    /// Runs the controller for `seconds` in 10 ms polls; what it sent.
    fn run_for(c: &mut Controller, now: &mut Instant, seconds: f64) -> Vec<(u16, Vec<u8>)> {
        let mut sent = Vec::new();
        let end = *now + Duration::from_secs_f64(seconds);
        while *now < end {
            *now += Duration::from_millis(10);
            sent.extend(c.poll(*now));
        }
        messages(&sent)
    }

    fn position_mm(c: &Controller) -> f64 {
        f64::from(c.position_counter()) / COUNTS_PER_MM
    }

    #[test]
    fn it_identifies_itself_and_reports_its_status_on_request() {
        let (mut c, now) = controller();
        let sent = messages(&c.receive(&short(id::HW_REQ_INFO, 0, 0), now));
        assert_eq!(sent[0].0, id::HW_GET_INFO);
        let info = &sent[0].1;
        assert_eq!(info.len(), 84);
        assert_eq!(&info[0..4], &SERIAL_NUMBER.to_le_bytes());
        assert_eq!(&info[4..10], b"KDC101");
        let sent = messages(&c.receive(&short(id::MOT_REQ_DCSTATUSUPDATE, 1, 0), now));
        let status = &sent[0].1;
        assert_eq!(sent[0].0, id::MOT_GET_DCSTATUSUPDATE);
        assert_eq!(
            i32_at(status, 2),
            Some(0),
            "the counter reads 0 at power-up"
        );
        let bits = u32::from_le_bytes(status[10..14].try_into().unwrap());
        assert_eq!(bits & status_bit::HOMED, 0);
        assert_ne!(bits & status_bit::CHANNEL_ENABLED, 0);
    }

    #[test]
    fn a_move_takes_the_time_its_profile_needs_and_ends_with_move_completed() {
        let (mut c, mut now) = controller();
        // 3 mm at 2 mm/s, 2 mm/s²: 1 s accelerating over 1 mm, 0.5 s
        // cruising over 1 mm, 1 s braking over the last.
        let profile = channel_and(&[
            &0i32.to_le_bytes(),
            &apt_acceleration(2.0).to_le_bytes(),
            &apt_velocity(2.0).to_le_bytes(),
        ]);
        c.receive(&long(id::MOT_SET_VELPARAMS, &profile), now);
        let target = counts(3.0).round() as i32;
        let absolute = long(
            id::MOT_MOVE_ABSOLUTE,
            &channel_and(&[&target.to_le_bytes()]),
        );
        assert!(c.receive(&absolute, now).is_empty());
        let early = run_for(&mut c, &mut now, 1.25);
        assert!(early.is_empty(), "{early:?}");
        assert!(c.status_bits() & status_bit::MOVING_FORWARD != 0);
        let cruising = position_mm(&c);
        assert!((cruising - 1.5).abs() < 0.05, "{cruising}");
        assert!(run_for(&mut c, &mut now, 1.15).is_empty(), "done too soon");
        let done = run_for(&mut c, &mut now, 0.2);
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].0, id::MOT_MOVE_COMPLETED);
        assert_eq!(i32_at(&done[0].1, 2), Some(target));
        let moving = status_bit::MOVING_FORWARD | status_bit::MOVING_REVERSE;
        assert_eq!(c.status_bits() & moving, 0);
    }

    #[test]
    fn homing_finds_the_reverse_switch_and_zeroes_the_counter_there() {
        let (mut c, mut now) = controller();
        c.receive(&short(id::MOT_MOVE_HOME, 1, 0), now);
        let first = run_for(&mut c, &mut now, 0.1);
        assert!(first.is_empty());
        assert!(c.status_bits() & status_bit::HOMING != 0);
        let sent = run_for(&mut c, &mut now, 1.5);
        assert_eq!(
            sent.iter().map(|m| m.0).collect::<Vec<_>>(),
            [id::MOT_MOVE_HOMED]
        );
        assert!(c.homed);
        assert_eq!(c.position_counter(), 0);
        assert!(c.status_bits() & status_bit::REVERSE_LIMIT != 0);
    }

    #[test]
    fn a_limit_switch_stops_a_move_beyond_the_travel() {
        let (mut c, mut now) = controller();
        let profile = channel_and(&[
            &0i32.to_le_bytes(),
            &apt_acceleration(4.0).to_le_bytes(),
            &apt_velocity(2.6).to_le_bytes(),
        ]);
        c.receive(&long(id::MOT_SET_VELPARAMS, &profile), now);
        let beyond = counts(-3.0).round() as i32;
        c.receive(
            &long(
                id::MOT_MOVE_RELATIVE,
                &channel_and(&[&beyond.to_le_bytes()]),
            ),
            now,
        );
        let sent = run_for(&mut c, &mut now, 1.0);
        assert_eq!(
            sent.iter().map(|m| m.0).collect::<Vec<_>>(),
            [id::MOT_MOVE_STOPPED]
        );
        assert_eq!(c.x, 0.0);
        assert!(c.status_bits() & status_bit::REVERSE_LIMIT != 0);
    }

    #[test]
    fn jogs_step_and_a_profiled_stop_brakes_a_continuous_motion() {
        let (mut c, mut now) = controller();
        c.receive(&short(id::MOT_MOVE_JOG, 1, 1), now);
        assert!(c.status_bits() & status_bit::JOGGING_FORWARD != 0);
        let sent = run_for(&mut c, &mut now, 1.0);
        assert_eq!(sent[0].0, id::MOT_MOVE_COMPLETED);
        assert!((position_mm(&c) - 0.1).abs() < 1e-4, "{}", position_mm(&c));

        c.receive(&short(id::MOT_MOVE_VELOCITY, 1, 1), now);
        run_for(&mut c, &mut now, 0.5);
        let moving_at = position_mm(&c);
        c.receive(&short(id::MOT_MOVE_STOP, 1, 2), now);
        assert!(run_for(&mut c, &mut now, 0.02).is_empty(), "still braking");
        let sent = run_for(&mut c, &mut now, 2.0);
        assert_eq!(sent[0].0, id::MOT_MOVE_STOPPED);
        assert!(position_mm(&c) > moving_at);
    }

    #[test]
    fn it_refuses_a_velocity_beyond_the_stage_s_with_a_rich_response() {
        let (mut c, now) = controller();
        let too_fast = channel_and(&[
            &0i32.to_le_bytes(),
            &apt_acceleration(1.0).to_le_bytes(),
            &apt_velocity(5.0).to_le_bytes(),
        ]);
        let sent = messages(&c.receive(&long(id::MOT_SET_VELPARAMS, &too_fast), now));
        assert_eq!(sent[0].0, id::HW_RICHRESPONSE);
        let data = &sent[0].1;
        assert_eq!(data.len(), 68);
        assert_eq!(u16_at(data, 0), Some(id::MOT_SET_VELPARAMS));
        assert_eq!(
            u16_at(data, 2),
            Some(error_code::INVALID_VELOCITY_PARAMETER)
        );
        let notes = String::from_utf8_lossy(&data[4..]);
        assert!(
            notes.starts_with("move velocity 5.000 mm/s not in 0-2.6 mm/s"),
            "{notes}"
        );
        assert_eq!(c.profile.max_velocity, apt_velocity(2.3), "kept its own");
    }

    #[test]
    fn status_updates_come_every_100_ms_until_50_go_unacknowledged() {
        let (mut c, mut now) = controller();
        c.receive(&short(id::HW_START_UPDATEMSGS, 0, 0), now);
        let sent = run_for(&mut c, &mut now, 1.0);
        assert!((9..=11).contains(&sent.len()), "{}", sent.len());
        let sent = run_for(&mut c, &mut now, 6.0);
        assert!(sent.len() < 45, "it went on unacknowledged: {}", sent.len());
        assert!(run_for(&mut c, &mut now, 0.5).is_empty());
        c.receive(&short(id::MOT_ACK_DCSTATUSUPDATE, 0, 0), now);
        assert!(!run_for(&mut c, &mut now, 0.5).is_empty());
    }

    #[test]
    fn garbled_output_is_no_apt_message_and_noise_on_its_input_is_skipped() {
        let (mut c, now) = controller();
        let mut input = vec![0xFF, 0x13, 0x00];
        input.extend(short(id::HW_REQ_INFO, 0, 0));
        let sent = messages(&c.receive(&input, now));
        assert_eq!(sent[0].0, id::HW_GET_INFO);
        c.faults.garble.store(true, Ordering::SeqCst);
        let sent = c.receive(&short(id::HW_REQ_INFO, 0, 0), now);
        assert_eq!(&sent[..2], &[0x99, 0x09]);
        c.faults.garble.store(false, Ordering::SeqCst);
        c.faults.mute.store(true, Ordering::SeqCst);
        assert!(c.receive(&short(id::HW_REQ_INFO, 0, 0), now).is_empty());
    }
}
