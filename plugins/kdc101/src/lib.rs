//! Driver for the Thorlabs KDC101 K-Cube DC servo motor controller, over
//! Thorlabs' APT binary protocol on the controller's USB serial port (an
//! FTDI chip: 115200 baud, 8N1), on every operating system, with no
//! Kinesis DLLs.
//!
//! The class is `KDC101`, with PyroLab's methods, properties and arguments
//! (`module: pyrolab.drivers.motion.kinesis.kdc101`). Positions are in the
//! stage's units (mm, or degrees for a rotation stage), converted with the
//! stage's encoder counts per unit and the KDC101's servo cycle as the
//! protocol document gives ([`units`]). Differences from PyroLab's driver
//! are listed in docs/kdc101.md; the main ones: moves outside the soft
//! limits are refused before anything is sent, every wait has a timeout,
//! and the controller's own error reports reach the caller as
//! `RuntimeError`s with their code and text.
//!
//! Parameters (all optional): `serialno` (checked against the
//! controller's; on Linux it also finds the port), `port` (a serial
//! device, or an `ASRL...::INSTR` / `TCPIP0::host::port::SOCKET`
//! resource), `home` (home on connecting), `polling` (accepted for
//! PyroLab's configurations; the controller's own 100 ms updates are
//! used), `stage` (`Z8` by default), `counts_per_unit`, `min_position`,
//! `max_position`, `soft_limits_mode`, `timeout` (seconds a reply may
//! take, 2).

pub mod apt;
pub mod link;
pub mod units;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use instrument_io::Resource;
use pyrolab_plugin_api::prelude::*;
use pyrolab_plugin_api::tracing;

use apt::{DcStatus, Frame, HomeParams, HwInfo, JogParams, VelParams, bits, id};
use link::{Awaiting, Link, Outcome};
use units::Stage;

/// The service's `parameters:` (PyroLab's `connect()` arguments, and ours).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    /// The controller's serial number (8 digits, beginning with 27).
    #[serde(default, deserialize_with = "serial_number")]
    pub serialno: Option<String>,
    /// The serial port: `/dev/ttyUSB0`, `COM5`, `ASRL/dev/ttyUSB0::INSTR`,
    /// or `TCPIP0::host::port::SOCKET` for a port served over the network.
    #[serde(default)]
    pub port: Option<String>,
    /// PyroLab's polling period (ms); accepted, not used.
    #[serde(default)]
    pub polling: Option<u32>,
    /// Whether `connect()` homes the stage.
    #[serde(default)]
    pub home: bool,
    /// The stage the controller drives.
    #[serde(default = "default_stage")]
    pub stage: String,
    /// Encoder counts per mm (or degree), for a stage not known by name.
    #[serde(default)]
    pub counts_per_unit: Option<f64>,
    /// The soft limits, in the stage's units (default its travel).
    #[serde(default)]
    pub min_position: Option<f64>,
    #[serde(default)]
    pub max_position: Option<f64>,
    /// `disallow` (default), `partial` or `all`.
    #[serde(default = "default_limits_mode")]
    pub soft_limits_mode: String,
    /// Seconds a reply may take.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            serialno: None,
            port: None,
            polling: None,
            home: false,
            stage: default_stage(),
            counts_per_unit: None,
            min_position: None,
            max_position: None,
            soft_limits_mode: default_limits_mode(),
            timeout: default_timeout(),
        }
    }
}

fn default_stage() -> String {
    "Z8".to_owned()
}

fn default_limits_mode() -> String {
    "disallow".to_owned()
}

fn default_timeout() -> f64 {
    2.0
}

/// A serial number written as a number (`serialno: 27000101`, as PyroLab
/// configurations do) or as text.
fn serial_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Number(u64),
        Text(String),
    }
    Ok(match Option::<Given>::deserialize(deserializer)? {
        Some(Given::Number(n)) => Some(n.to_string()),
        Some(Given::Text(text)) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    })
}

/// What a move outside the soft limits does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LimitsMode {
    /// Refused (`ValueError`), nothing sent.
    Disallow,
    /// Cut short at the limit.
    Partial,
    /// Sent as asked (the hardware limit switches still stop the stage).
    All,
}

impl LimitsMode {
    fn parse(mode: &str) -> Result<LimitsMode> {
        match mode {
            "disallow" => Ok(LimitsMode::Disallow),
            "partial" => Ok(LimitsMode::Partial),
            "all" => Ok(LimitsMode::All),
            other => Err(DriverError::value(format!(
                "soft_limits_mode must be 'disallow', 'partial' or 'all', not {other:?}"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            LimitsMode::Disallow => "disallow",
            LimitsMode::Partial => "partial",
            LimitsMode::All => "all",
        }
    }
}

/// The software limits, in the stage's units, kept by the driver.
#[derive(Clone, Copy, Debug)]
struct SoftLimits {
    min: f64,
    max: f64,
    mode: LimitsMode,
}

impl SoftLimits {
    fn new(min: f64, max: f64, mode: LimitsMode) -> Result<SoftLimits> {
        if min.is_finite() && max.is_finite() && min < max {
            Ok(SoftLimits { min, max, mode })
        } else {
            Err(DriverError::value(format!(
                "the soft limits must be finite with min_position < max_position, not {min} and {max}"
            )))
        }
    }

    /// Where a motion aimed at `target` may go.
    fn apply(&self, what: &str, target: f64, unit: &str) -> Result<f64> {
        if !target.is_finite() {
            return Err(DriverError::value(format!(
                "{what} must be a number of {unit}, not {target}"
            )));
        }
        if (self.min..=self.max).contains(&target) || self.mode == LimitsMode::All {
            return Ok(target);
        }
        match self.mode {
            LimitsMode::Partial => Ok(target.clamp(self.min, self.max)),
            _ => Err(DriverError::value(format!(
                "{what} {target} {unit} is outside the soft limits, {} to {} {unit} (min_pos, max_pos; soft_limits_mode 'disallow')",
                self.min, self.max
            ))),
        }
    }
}

/// Where udev links serial ports by their USB serial numbers (Linux).
const SERIAL_BY_ID: &str = "/dev/serial/by-id";

/// The KDC101 serial number in a `/dev/serial/by-id` name such as
/// `usb-Thorlabs_Kinesis_K-Cube__DC_Driver_27000101-if00-port0`.
fn kdc101_serial_in(name: &str) -> Option<&str> {
    let stem = name.rsplit_once("-if").map_or(name, |(stem, _)| stem);
    let serial = stem.rsplit('_').next()?;
    let is_kdc101 =
        serial.len() == 8 && serial.starts_with("27") && serial.bytes().all(|b| b.is_ascii_digit());
    is_kdc101.then_some(serial)
}

/// The KDC101s plugged in (serial number, port), as udev names them.
fn plugged_in() -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(SERIAL_BY_ID) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            Some((kdc101_serial_in(&name)?.to_owned(), entry.path()))
        })
        .collect();
    found.sort();
    found
}

/// The resource a `port` names.
fn resource_of(port: &str) -> Result<Resource> {
    let port = port.trim();
    let keyword = |k: &str| {
        port.get(..k.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(k))
    };
    if port.is_empty() {
        return Err(DriverError::value("port must not be empty"));
    }
    if !keyword("ASRL") && !keyword("TCPIP") {
        return Ok(Resource::Serial {
            port: port.to_owned(),
        });
    }
    match Resource::parse(port)? {
        Resource::Vxi11 { .. } => Err(DriverError::value(format!(
            "{port:?} is a VXI-11 resource; a KDC101 speaks APT over a serial port (ASRL...::INSTR) or a raw socket (TCPIP0::HOST::PORT::SOCKET)"
        ))),
        resource => Ok(resource),
    }
}

/// How long to give a motion expected to take `expected` seconds: what
/// the caller asked, or twice the expected time and 2 s more.
fn deadline(expected: f64, asked: Option<f64>) -> Result<Instant> {
    let seconds = match asked {
        Some(t) if t.is_finite() && t > 0.0 => t,
        Some(t) => {
            return Err(DriverError::value(format!(
                "timeout must be a positive number of seconds, not {t}"
            )));
        }
        None => (2.0 * expected + 2.0).min(3600.0),
    };
    Ok(Instant::now() + Duration::from_secs_f64(seconds))
}

fn direction_of(direction: &str) -> Result<u8> {
    match direction {
        "forward" => Ok(apt::FORWARD),
        "backward" | "reverse" => Ok(apt::REVERSE),
        other => Err(DriverError::value(format!(
            "direction '{other}' unrecognized: 'forward' or 'backward'"
        ))),
    }
}

/// A status, decoded (`status()`).
#[derive(Serialize, Debug)]
pub struct StatusReport {
    pub position: f64,
    pub velocity: f64,
    pub bits: u32,
    pub forward_limit: bool,
    pub reverse_limit: bool,
    pub moving_forward: bool,
    pub moving_reverse: bool,
    pub jogging_forward: bool,
    pub jogging_reverse: bool,
    pub motor_connected: bool,
    pub homing: bool,
    pub homed: bool,
    pub motion_error: bool,
    pub current_limit: bool,
    pub channel_enabled: bool,
}

/// What the controller is (`info()`).
#[derive(Serialize, Debug)]
pub struct InfoReport {
    pub serial_number: u32,
    pub model: String,
    pub hardware_type: u16,
    pub firmware: String,
    pub hardware_version: u16,
    pub modification_state: u16,
    pub channels: u16,
    pub stage: String,
    pub unit: &'static str,
    pub counts_per_unit: f64,
}

/// The Thorlabs KDC101.
pub struct Kdc101 {
    parameters: Parameters,
    stage: Stage,
    limits: SoftLimits,
    link: Option<Link>,
    /// Where the controller was connected: after a lost connection the
    /// next call connects there again. `None` after `close()`.
    resource: Option<Resource>,
    /// The serial number the controller must have, if one was given.
    expected_serial: Option<String>,
    info: Option<HwInfo>,
    /// The motion parameters as last read or set, to know how long a
    /// motion should take.
    velocity: Option<VelParams>,
    jog: Option<JogParams>,
    homing: Option<HomeParams>,
}

impl Kdc101 {
    /// Runs `operation` on the link, connecting again first if the
    /// connection was lost; a link that fails for good is dropped.
    fn on_link<T>(&mut self, operation: impl FnOnce(&mut Link) -> Result<T>) -> Result<T> {
        self.ensure_connected()?;
        let link = self.link.as_mut().expect("connected above");
        let result = operation(link);
        if link.lost() {
            tracing::warn!("lost the KDC101; the next call connects again");
            self.link = None;
        }
        result
    }

    fn ensure_connected(&mut self) -> Result<()> {
        if self.link.is_some() {
            return Ok(());
        }
        let Some(resource) = self.resource.clone() else {
            return Err(DriverError::connection(
                "not connected to a KDC101: call connect() or autoconnect() first",
            ));
        };
        tracing::info!(%resource, "connecting to the KDC101 again");
        self.open(&resource)
    }

    /// Opens `resource`, starts a session and reads the motion parameters.
    fn open(&mut self, resource: &Resource) -> Result<()> {
        let timeout = Duration::from_secs_f64(self.parameters.timeout);
        let mut link = Link::open(resource, timeout)?;
        let info = link
            .start_session()
            .map_err(|err| err.context(format!("while connecting to the KDC101 on {resource}")))?;
        if info.model != "KDC101" {
            return Err(DriverError::connection(format!(
                "the controller on {resource} is a {:?} (serial number {}), not a KDC101",
                info.model, info.serial_number
            )));
        }
        if let Some(expected) = &self.expected_serial
            && *expected != info.serial_number.to_string()
        {
            return Err(DriverError::connection(format!(
                "the KDC101 on {resource} has serial number {}, not {expected}",
                info.serial_number
            )));
        }
        self.velocity = Some(read_velocity(&mut link)?);
        self.jog = Some(read_jog(&mut link)?);
        self.homing = Some(read_homing(&mut link)?);
        tracing::info!(
            %resource,
            serial = info.serial_number,
            firmware = %info.firmware_version(),
            "connected to the KDC101"
        );
        self.info = Some(info);
        self.link = Some(link);
        Ok(())
    }

    /// The port to use: given, from the parameters, or found by serial
    /// number.
    fn resource_for(&self, port: Option<String>, serialno: Option<&str>) -> Result<Resource> {
        if let Some(port) = port.or_else(|| self.parameters.port.clone()) {
            return resource_of(&port);
        }
        let Some(serialno) = serialno else {
            return Err(DriverError::value(
                "No serial number provided: give serialno (or port) to connect(), or the service parameters",
            ));
        };
        plugged_in()
            .into_iter()
            .find(|(serial, _)| serial == serialno)
            .map(|(_, path)| Resource::Serial {
                port: path.display().to_string(),
            })
            .ok_or_else(|| {
                DriverError::connection(format!(
                    "no KDC101 with serial number {serialno} is plugged in (none in {SERIAL_BY_ID}); give its port"
                ))
            })
    }

    fn units(&self) -> &'static str {
        self.stage.unit
    }

    /// The status now.
    fn fresh_status(&mut self) -> Result<DcStatus> {
        self.on_link(Link::fresh_status)
    }

    /// The velocity parameters, changed by `change`, set and confirmed.
    fn update_velocity(&mut self, what: &str, change: impl FnOnce(&mut VelParams)) -> Result<()> {
        let confirmed = self.on_link(|link| {
            let mut wanted = read_velocity(link)?;
            change(&mut wanted);
            let reply = link.set_and_read(
                &wanted.set(),
                &Frame::request(id::MOT_REQ_VELPARAMS),
                id::MOT_GET_VELPARAMS,
            )?;
            confirm(what, wanted, VelParams::decode(reply.data()))
        })?;
        self.velocity = Some(confirmed);
        Ok(())
    }

    fn update_jog(&mut self, what: &str, change: impl FnOnce(&mut JogParams)) -> Result<()> {
        let confirmed = self.on_link(|link| {
            let mut wanted = read_jog(link)?;
            change(&mut wanted);
            let reply = link.set_and_read(
                &wanted.set(),
                &Frame::request(id::MOT_REQ_JOGPARAMS),
                id::MOT_GET_JOGPARAMS,
            )?;
            confirm(what, wanted, JogParams::decode(reply.data()))
        })?;
        self.jog = Some(confirmed);
        Ok(())
    }

    fn update_homing(&mut self, what: &str, change: impl FnOnce(&mut HomeParams)) -> Result<()> {
        let confirmed = self.on_link(|link| {
            let mut wanted = read_homing(link)?;
            change(&mut wanted);
            let reply = link.set_and_read(
                &wanted.set(),
                &Frame::request(id::MOT_REQ_HOMEPARAMS),
                id::MOT_GET_HOMEPARAMS,
            )?;
            confirm(what, wanted, HomeParams::decode(reply.data()))
        })?;
        self.homing = Some(confirmed);
        Ok(())
    }

    /// Seconds a move of `distance` units takes with the move or jog
    /// profile.
    fn expected_time(&self, distance: f64, profile: Option<(i32, i32)>) -> f64 {
        match profile {
            Some((velocity, acceleration)) => units::move_time(
                distance,
                self.stage.velocity(velocity),
                self.stage.acceleration(acceleration),
            ),
            None => f64::INFINITY,
        }
    }

    fn move_profile(&self) -> Option<(i32, i32)> {
        self.velocity.map(|v| (v.max_velocity, v.acceleration))
    }

    /// Sends a move (or single-step jog) `frame` and, with `block`, waits
    /// until `deadline` for it to complete.
    fn run_move(&mut self, frame: Frame, block: bool, deadline: Instant, what: &str) -> Result<()> {
        let outcome = self.on_link(|link| {
            link.start(&frame, Some(Awaiting::Move))?;
            if block {
                link.wait(deadline, what)
            } else {
                Ok(None)
            }
        })?;
        self.finished(outcome, Awaiting::Move, what)
    }

    /// What an awaited motion's end means for its caller.
    fn finished(&self, outcome: Option<Outcome>, expected: Awaiting, what: &str) -> Result<()> {
        let Some(Outcome::Stopped(status)) = outcome else {
            return Ok(());
        };
        if expected == Awaiting::Stop {
            return Ok(());
        }
        let at = format!(
            "{:.4} {}",
            self.stage.position(status.position),
            self.units()
        );
        let why = if status.bits & bits::FORWARD_LIMIT != 0 {
            " at the forward limit switch"
        } else if status.bits & bits::REVERSE_LIMIT != 0 {
            " at the reverse limit switch"
        } else {
            " (a stop from another command or the controller's panel)"
        };
        Err(DriverError::runtime(format!(
            "{what} stopped before its end, at {at}{why}"
        )))
    }

    /// Homes, waiting with `block`.
    fn go_home_with(&mut self, block: bool, timeout: Option<f64>) -> Result<()> {
        let homing_velocity = self.homing.map(|h| h.velocity);
        let acceleration = self.velocity.map(|v| v.acceleration);
        let span = self.stage.travel.1 - self.stage.travel.0;
        let expected = self.expected_time(span, homing_velocity.zip(acceleration));
        let deadline = deadline(expected, timeout)?;
        let outcome = self.on_link(|link| {
            link.start(&Frame::request(id::MOT_MOVE_HOME), Some(Awaiting::Home))?;
            if block {
                link.wait(deadline, "homing")
            } else {
                Ok(None)
            }
        })?;
        self.finished(outcome, Awaiting::Home, "homing")
    }
}

fn read_velocity(link: &mut Link) -> Result<VelParams> {
    let reply = link.request(
        &Frame::request(id::MOT_REQ_VELPARAMS),
        id::MOT_GET_VELPARAMS,
    )?;
    Ok(VelParams::decode(reply.data()))
}

fn read_jog(link: &mut Link) -> Result<JogParams> {
    let reply = link.request(
        &Frame::request(id::MOT_REQ_JOGPARAMS),
        id::MOT_GET_JOGPARAMS,
    )?;
    Ok(JogParams::decode(reply.data()))
}

fn read_homing(link: &mut Link) -> Result<HomeParams> {
    let reply = link.request(
        &Frame::request(id::MOT_REQ_HOMEPARAMS),
        id::MOT_GET_HOMEPARAMS,
    )?;
    Ok(HomeParams::decode(reply.data()))
}

fn read_backlash(link: &mut Link) -> Result<i32> {
    let reply = link.request(
        &Frame::request(id::MOT_REQ_GENMOVEPARAMS),
        id::MOT_GET_GENMOVEPARAMS,
    )?;
    Ok(apt::decode_backlash(reply.data()))
}

/// The parameters the controller read back, if they are what was set.
fn confirm<T: PartialEq + std::fmt::Debug>(what: &str, wanted: T, got: T) -> Result<T> {
    if wanted == got {
        Ok(got)
    } else {
        Err(DriverError::value(format!(
            "the KDC101 did not take the {what} (asked {wanted:?}, it keeps {got:?})"
        )))
    }
}

/// Drives a Thorlabs KDC101 K-Cube DC servo motor controller over the APT
/// protocol on its USB serial port (PyroLab's KDC101, without Kinesis:
/// units in mm or degrees, soft limits checked before sending, timeouts,
/// and the controller's own error reports).
#[service(name = "KDC101")]
impl Kdc101 {
    #[constructor]
    pub fn new(parameters: Parameters) -> Result<Self> {
        let mut stage = Stage::named(&parameters.stage)?;
        if let Some(counts) = parameters.counts_per_unit {
            if !(counts.is_finite() && counts > 0.0) {
                return Err(DriverError::value(format!(
                    "counts_per_unit must be a positive number, not {counts}"
                )));
            }
            stage.counts_per_unit = counts;
        }
        let limits = SoftLimits::new(
            parameters.min_position.unwrap_or(stage.travel.0),
            parameters.max_position.unwrap_or(stage.travel.1),
            LimitsMode::parse(&parameters.soft_limits_mode)?,
        )?;
        if !(parameters.timeout > 0.0 && parameters.timeout <= 60.0) {
            return Err(DriverError::value(format!(
                "timeout must be more than 0 and at most 60 seconds, not {}",
                parameters.timeout
            )));
        }
        Ok(Kdc101 {
            parameters,
            stage,
            limits,
            link: None,
            resource: None,
            expected_serial: None,
            info: None,
            velocity: None,
            jog: None,
            homing: None,
        })
    }

    /// The KDC101s plugged in, as `connect()` keyword arguments
    /// (`serialno`, `port`); found by their USB serial numbers on Linux,
    /// none elsewhere.
    pub fn detect_devices(&self) -> Vec<BTreeMap<String, String>> {
        plugged_in()
            .into_iter()
            .map(|(serial, port)| {
                BTreeMap::from([
                    ("serialno".to_owned(), serial),
                    ("port".to_owned(), port.display().to_string()),
                ])
            })
            .collect()
    }

    /// Connects to the controller (serial number `serialno`, on `port`),
    /// starts its status updates and enables its motor; with `home`, homes
    /// the stage. Arguments not given come from the service's parameters.
    /// Any earlier connection is closed first. Returns True.
    pub fn connect(
        &mut self,
        serialno: Option<String>,
        polling: Option<u32>,
        home: Option<bool>,
        port: Option<String>,
    ) -> Result<bool> {
        if polling == Some(0) {
            return Err(DriverError::value(
                "polling must be a positive number of ms",
            ));
        }
        let serialno = serialno
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .or_else(|| self.parameters.serialno.clone());
        let resource = self.resource_for(port, serialno.as_deref())?;
        self.close();
        self.expected_serial = serialno;
        self.open(&resource)?;
        self.resource = Some(resource);
        if home.unwrap_or(self.parameters.home) {
            self.go_home_with(true, None)?;
        }
        Ok(true)
    }

    /// Connects with the service's parameters.
    pub fn autoconnect(&mut self) -> Result<bool> {
        self.connect(None, None, None, None)
    }

    /// Stops the status updates and closes the port (the stage keeps
    /// its position; the controller its settings).
    pub fn close(&mut self) {
        if let Some(mut link) = self.link.take() {
            link.end_session();
            tracing::info!("disconnected from the KDC101");
        }
        self.resource = None;
    }

    /// Whether the controller answers now.
    pub fn check_connection(&mut self) -> bool {
        self.link.is_some() && self.fresh_status().is_ok()
    }

    /// The serial number, as the controller gives it ("" before
    /// connecting).
    #[getter]
    pub fn serialno(&self) -> String {
        self.info
            .as_ref()
            .map(|info| info.serial_number.to_string())
            .unwrap_or_default()
    }

    /// What the controller is: serial number, model, firmware, hardware
    /// version, and the stage this driver converts for.
    pub fn info(&mut self) -> Result<InfoReport> {
        self.ensure_connected()?;
        let info = self.info.clone().expect("read when connecting");
        Ok(InfoReport {
            serial_number: info.serial_number,
            model: info.model.clone(),
            hardware_type: info.hardware_type,
            firmware: info.firmware_version(),
            hardware_version: info.hardware_version,
            modification_state: info.modification_state,
            channels: info.channels,
            stage: self.stage.name.clone(),
            unit: self.stage.unit,
            counts_per_unit: self.stage.counts_per_unit,
        })
    }

    /// Flashes the controller's front-panel LED.
    pub fn identify(&mut self) -> Result<()> {
        self.on_link(|link| link.command(&Frame::short(id::MOD_IDENTIFY, apt::CHANNEL as u8, 0)))
    }

    /// Homes the stage (ignoring the soft limits); with `block`, waits
    /// until it is homed (within `timeout` s, or twice the time the
    /// travel takes at the homing velocity).
    pub fn home(&mut self, #[default(true)] block: bool, timeout: Option<f64>) -> Result<()> {
        self.go_home_with(block, timeout)
    }

    /// The same as `home()` (PyroLab has both).
    pub fn go_home(&mut self, #[default(true)] block: bool, timeout: Option<f64>) -> Result<()> {
        self.go_home_with(block, timeout)
    }

    /// Moves to `pos` (mm or degrees); with `block`, waits until the move
    /// completes (within `timeout` s, or twice the time its profile takes
    /// and 2 s more).
    pub fn move_to(
        &mut self,
        pos: f64,
        #[default(true)] block: bool,
        timeout: Option<f64>,
    ) -> Result<()> {
        let target = self.limits.apply("position", pos, self.units())?;
        let counts = self.stage.counts("position", target)?;
        let from = self.fresh_status()?.position;
        let distance = self.stage.position(counts - from);
        let deadline = deadline(self.expected_time(distance, self.move_profile()), timeout)?;
        let what = format!("the move to {target} {}", self.units());
        self.run_move(apt::move_absolute(counts), block, deadline, &what)
    }

    /// Moves by `displacement` (mm or degrees, signed), as `move_to`.
    pub fn move_by(
        &mut self,
        displacement: f64,
        #[default(true)] block: bool,
        timeout: Option<f64>,
    ) -> Result<()> {
        if !displacement.is_finite() {
            return Err(DriverError::value(format!(
                "displacement must be a number, not {displacement}"
            )));
        }
        let from = self.fresh_status()?.position;
        let from = self.stage.position(from);
        let target = self
            .limits
            .apply("the target", from + displacement, self.units())?;
        let distance = self.stage.counts("displacement", target - from)?;
        let deadline = deadline(
            self.expected_time(target - from, self.move_profile()),
            timeout,
        )?;
        let what = format!("the move by {displacement} {}", self.units());
        self.run_move(apt::move_relative(distance), block, deadline, &what)
    }

    /// Moves on at the move velocity in `direction` ("forward" or
    /// "backward") until `stop()` or a limit switch stops it (the soft
    /// limits cannot stop it: no position is checked while it runs).
    pub fn move_continuous(&mut self, #[default("forward")] direction: String) -> Result<()> {
        let direction = direction_of(&direction)?;
        self.on_link(|link| {
            link.start(
                &Frame::short(id::MOT_MOVE_VELOCITY, apt::CHANNEL as u8, direction),
                None,
            )
        })
    }

    /// Jogs in `direction` ("forward" or "backward"): one jog step in
    /// stepped mode (waited for with `block`; refused if it would leave
    /// the soft limits, unless their mode is 'all'), or on until `stop()`
    /// in continuous mode.
    pub fn jog(
        &mut self,
        direction: String,
        #[default(true)] block: bool,
        timeout: Option<f64>,
    ) -> Result<()> {
        let code = direction_of(&direction)?;
        let jog = self.on_link(read_jog)?;
        self.jog = Some(jog);
        let frame = Frame::short(id::MOT_MOVE_JOG, apt::CHANNEL as u8, code);
        if jog.mode == apt::JOG_CONTINUOUS {
            return self.on_link(|link| link.start(&frame, None));
        }
        let step = self.stage.position(jog.step) * if code == apt::FORWARD { 1.0 } else { -1.0 };
        let from = self.fresh_status()?.position;
        let from = self.stage.position(from);
        let limits = SoftLimits {
            mode: match self.limits.mode {
                LimitsMode::All => LimitsMode::All,
                _ => LimitsMode::Disallow,
            },
            ..self.limits
        };
        limits.apply("the jog's end", from + step, self.units())?;
        let expected = self.expected_time(step, Some((jog.max_velocity, jog.acceleration)));
        let deadline = deadline(expected, timeout)?;
        self.run_move(frame, block, deadline, &format!("the jog {direction}"))
    }

    /// Stops the motor, braking at the acceleration (profiled), or at once
    /// with `immediate`; waits until it stands still.
    pub fn stop(&mut self, #[default(false)] immediate: bool) -> Result<()> {
        let mode = if immediate {
            apt::STOP_IMMEDIATE
        } else {
            apt::STOP_PROFILED
        } as u8;
        // Braking from the fastest the stage goes takes well under this.
        let deadline = Instant::now() + Duration::from_secs(10);
        let outcome = self.on_link(|link| {
            let moving = link.fresh_status()?.bits & bits::IN_MOTION != 0;
            let awaiting = moving.then_some(Awaiting::Stop);
            link.start(
                &Frame::short(id::MOT_MOVE_STOP, apt::CHANNEL as u8, mode),
                awaiting,
            )?;
            if moving {
                link.wait(deadline, "stopping")
            } else {
                Ok(None)
            }
        })?;
        self.finished(outcome, Awaiting::Stop, "stopping")
    }

    /// Waits for a motion started with `block=False` to end: `id` is
    /// "homed", "moved", "stopped" or "limit_updated" (the soft limits are
    /// the driver's, updated at once). Returns at once if no such motion
    /// is under way; waits at most `MAX_WAIT_TIME` s (0: as long as the
    /// motion should take; homing always so).
    #[allow(non_snake_case)]
    pub fn wait_for_completion(
        &mut self,
        #[default("homed")] id: String,
        #[default(5.0)] MAX_WAIT_TIME: f64,
    ) -> Result<()> {
        let expected = match id.as_str() {
            "homed" => Awaiting::Home,
            "moved" => Awaiting::Move,
            "stopped" => Awaiting::Stop,
            "limit_updated" => return Ok(()),
            other => {
                return Err(DriverError::value(format!(
                    "id must be 'homed', 'moved', 'stopped' or 'limit_updated', not {other:?}"
                )));
            }
        };
        let asked = (MAX_WAIT_TIME > 0.0 && expected != Awaiting::Home).then_some(MAX_WAIT_TIME);
        let span = self.stage.travel.1 - self.stage.travel.0;
        let expected_time = match expected {
            Awaiting::Home => self.expected_time(
                span,
                self.homing
                    .map(|h| h.velocity)
                    .zip(self.velocity.map(|v| v.acceleration)),
            ),
            _ => self.expected_time(span, self.move_profile()),
        };
        let deadline = deadline(expected_time, asked)?;
        let what = format!("waiting for '{id}'");
        let outcome = self.on_link(|link| {
            link.catch_up()?;
            if link.awaiting() == Some(expected) {
                link.wait(deadline, &what)
            } else {
                Ok(None)
            }
        })?;
        self.finished(outcome, expected, &what)
    }

    /// The position (mm or degrees).
    pub fn get_position(&mut self) -> Result<f64> {
        let counts = self.fresh_status()?.position;
        Ok(self.stage.position(counts))
    }

    /// The position (mm or degrees), as `get_position()`.
    #[getter]
    pub fn position(&mut self) -> Result<f64> {
        self.get_position()
    }

    /// The status bits (see `status()` for their meanings).
    pub fn get_status_bits(&mut self) -> Result<u32> {
        Ok(self.fresh_status()?.bits)
    }

    /// Whether the motor moves: a move, a jog or homing.
    pub fn is_moving(&mut self) -> Result<bool> {
        Ok(self.fresh_status()?.bits & bits::IN_MOTION != 0)
    }

    /// Whether the stage has been homed since the controller powered up.
    #[getter]
    pub fn homed(&mut self) -> Result<bool> {
        Ok(self.fresh_status()?.bits & bits::HOMED != 0)
    }

    /// The status: position, speed (units/s), and the status bits, raw and
    /// by name.
    pub fn status(&mut self) -> Result<StatusReport> {
        let status = self.fresh_status()?;
        let bit = |mask: u32| status.bits & mask != 0;
        Ok(StatusReport {
            position: self.stage.position(status.position),
            velocity: self.stage.status_speed(status.velocity),
            bits: status.bits,
            forward_limit: bit(bits::FORWARD_LIMIT),
            reverse_limit: bit(bits::REVERSE_LIMIT),
            moving_forward: bit(bits::MOVING_FORWARD),
            moving_reverse: bit(bits::MOVING_REVERSE),
            jogging_forward: bit(bits::JOGGING_FORWARD),
            jogging_reverse: bit(bits::JOGGING_REVERSE),
            motor_connected: bit(bits::MOTOR_CONNECTED),
            homing: bit(bits::HOMING),
            homed: bit(bits::HOMED),
            motion_error: bit(bits::MOTION_ERROR),
            current_limit: bit(bits::CURRENT_LIMIT),
            channel_enabled: bit(bits::CHANNEL_ENABLED),
        })
    }

    /// The backlash distance (mm or degrees): moves ending in reverse
    /// overshoot by it and come back forward.
    #[getter]
    pub fn backlash(&mut self) -> Result<f64> {
        let counts = self.on_link(read_backlash)?;
        Ok(self.stage.position(counts))
    }

    /// Sets the backlash distance (mm or degrees; 0 turns the correction
    /// off).
    #[setter]
    pub fn set_backlash(&mut self, val: f64) -> Result<()> {
        if !(val.is_finite() && val >= 0.0) {
            return Err(DriverError::value(format!(
                "backlash must be 0 or more {}, not {val}",
                self.units()
            )));
        }
        let counts = self.stage.counts("backlash", val)?;
        let got = self.on_link(|link| {
            let reply = link.set_and_read(
                &apt::set_backlash(counts),
                &Frame::request(id::MOT_REQ_GENMOVEPARAMS),
                id::MOT_GET_GENMOVEPARAMS,
            )?;
            Ok(apt::decode_backlash(reply.data()))
        })?;
        confirm("backlash", counts, got).map(drop)
    }

    /// The homing velocity (units/s).
    #[getter]
    pub fn homing_velocity(&mut self) -> Result<f64> {
        let homing = self.on_link(read_homing)?;
        Ok(self.stage.velocity(homing.velocity))
    }

    #[setter]
    pub fn set_homing_velocity(&mut self, velocity: f64) -> Result<()> {
        let apt = self.stage.apt_velocity("homing_velocity", velocity)?;
        self.update_homing("homing velocity", |h| h.velocity = apt)
    }

    /// "stepped" (one jog step per jog) or "continuous" (on until stopped).
    #[getter]
    pub fn jog_mode(&mut self) -> Result<String> {
        let jog = self.on_link(read_jog)?;
        match jog.mode {
            apt::JOG_CONTINUOUS => Ok("continuous".to_owned()),
            apt::JOG_SINGLE_STEP => Ok("stepped".to_owned()),
            other => Err(DriverError::runtime(format!(
                "the KDC101 reports an unknown jog mode {other}"
            ))),
        }
    }

    #[setter]
    pub fn set_jog_mode(&mut self, jog_mode: String) -> Result<()> {
        let mode = match jog_mode.as_str() {
            "continuous" => apt::JOG_CONTINUOUS,
            "stepped" => apt::JOG_SINGLE_STEP,
            other => {
                return Err(DriverError::value(format!(
                    "jog_mode must be 'stepped' or 'continuous', not {other:?}"
                )));
            }
        };
        self.update_jog("jog mode", |j| j.mode = mode)
    }

    /// The jog step (mm or degrees).
    #[getter]
    pub fn jog_step_size(&mut self) -> Result<f64> {
        let jog = self.on_link(read_jog)?;
        Ok(self.stage.position(jog.step))
    }

    #[setter]
    pub fn set_jog_step_size(&mut self, step_size: f64) -> Result<()> {
        if !(step_size.is_finite() && step_size > 0.0) {
            return Err(DriverError::value(format!(
                "jog_step_size must be a positive number of {}, not {step_size}",
                self.units()
            )));
        }
        let counts = self.stage.counts("jog_step_size", step_size)?;
        self.update_jog("jog step", |j| j.step = counts)
    }

    /// How a jog stops: "immediate" or "profiled".
    #[getter]
    pub fn stop_mode(&mut self) -> Result<String> {
        let jog = self.on_link(read_jog)?;
        match jog.stop_mode {
            apt::STOP_IMMEDIATE => Ok("immediate".to_owned()),
            apt::STOP_PROFILED => Ok("profiled".to_owned()),
            other => Err(DriverError::runtime(format!(
                "the KDC101 reports an unknown stop mode {other}"
            ))),
        }
    }

    #[setter]
    pub fn set_stop_mode(&mut self, stop_mode: String) -> Result<()> {
        let mode = match stop_mode.as_str() {
            "immediate" => apt::STOP_IMMEDIATE,
            "profiled" => apt::STOP_PROFILED,
            other => {
                return Err(DriverError::value(format!(
                    "stop_mode must be 'immediate' or 'profiled', not {other:?}"
                )));
            }
        };
        self.update_jog("stop mode", |j| j.stop_mode = mode)
    }

    /// The upper soft limit (mm or degrees).
    #[getter]
    pub fn max_pos(&self) -> f64 {
        self.limits.max
    }

    #[setter]
    pub fn set_max_pos(&mut self, max: f64) -> Result<()> {
        self.limits = SoftLimits::new(self.limits.min, max, self.limits.mode)?;
        Ok(())
    }

    /// The lower soft limit (mm or degrees).
    #[getter]
    pub fn min_pos(&self) -> f64 {
        self.limits.min
    }

    #[setter]
    pub fn set_min_pos(&mut self, min: f64) -> Result<()> {
        self.limits = SoftLimits::new(min, self.limits.max, self.limits.mode)?;
        Ok(())
    }

    /// What a move beyond the soft limits does: "disallow" (refused),
    /// "partial" (cut short at the limit) or "all" (made).
    #[getter]
    pub fn soft_limits_mode(&self) -> String {
        self.limits.mode.name().to_owned()
    }

    #[setter]
    pub fn set_soft_limits_mode(&mut self, mode: String) -> Result<()> {
        self.limits.mode = LimitsMode::parse(&mode)?;
        Ok(())
    }

    /// The move velocity (units/s).
    #[getter]
    pub fn move_velocity(&mut self) -> Result<f64> {
        let velocity = self.on_link(read_velocity)?;
        Ok(self.stage.velocity(velocity.max_velocity))
    }

    #[setter]
    pub fn set_move_velocity(&mut self, velocity: f64) -> Result<()> {
        let apt = self.stage.apt_velocity("move_velocity", velocity)?;
        self.update_velocity("move velocity", |v| v.max_velocity = apt)
    }

    /// The move acceleration (units/s²).
    #[getter]
    pub fn move_acceleration(&mut self) -> Result<f64> {
        let velocity = self.on_link(read_velocity)?;
        Ok(self.stage.acceleration(velocity.acceleration))
    }

    #[setter]
    pub fn set_move_acceleration(&mut self, acceleration: f64) -> Result<()> {
        let apt = self
            .stage
            .apt_acceleration("move_acceleration", acceleration)?;
        self.update_velocity("move acceleration", |v| v.acceleration = apt)
    }

    /// The jog velocity (units/s).
    #[getter]
    pub fn jog_velocity(&mut self) -> Result<f64> {
        let jog = self.on_link(read_jog)?;
        Ok(self.stage.velocity(jog.max_velocity))
    }

    #[setter]
    pub fn set_jog_velocity(&mut self, velocity: f64) -> Result<()> {
        let apt = self.stage.apt_velocity("jog_velocity", velocity)?;
        self.update_jog("jog velocity", |j| j.max_velocity = apt)
    }

    /// The jog acceleration (units/s²).
    #[getter]
    pub fn jog_acceleration(&mut self) -> Result<f64> {
        let jog = self.on_link(read_jog)?;
        Ok(self.stage.acceleration(jog.acceleration))
    }

    #[setter]
    pub fn set_jog_acceleration(&mut self, acceleration: f64) -> Result<()> {
        let apt = self
            .stage
            .apt_acceleration("jog_acceleration", acceleration)?;
        self.update_jog("jog acceleration", |j| j.acceleration = apt)
    }
}

impl Drop for Kdc101 {
    fn drop(&mut self) {
        self.close();
    }
}

export_plugin!(Kdc101);

#[cfg(all(test, target_os = "linux"))]
mod tests;
