//! Driver for the Pure Photonics PPCL550 (C band) and PPCL551 (L band)
//! tunable lasers, over the OIF-ITLA-MSA register protocol on their USB
//! serial port, with no vendor library.
//!
//! Two classes, `PPCL550` and `PPCL551`, as PyroLab's
//! (`module: pyrolab.drivers.lasers.ppcl55x`), with its methods and
//! arguments; they differ in their wavelength ranges (1515–1570 nm and
//! 1569–1625 nm), which are checked before anything is sent. Differences
//! from PyroLab's driver are listed in docs/ppcl55x.md; in short: every
//! reply is checked (checksum, echo, status) and the laser's own refusals
//! are `RuntimeError`s naming its error code (`RVE (register value range
//! error)`), pending operations are waited for by polling NOP within
//! `settle_timeout`, frequencies are set to 1 MHz (FCF3) when the laser has
//! the register, and power readings are signed.
//!
//! Parameters (all optional): `port` (`/dev/ttyUSB0`, `COM6` or
//! `ASRL/dev/ttyUSB0::INSTR`), `baudrate` (9600), `timeout` (seconds a
//! reply may take, 0.5 as PyroLab's), `settle_timeout` (seconds turning on
//! or tuning may take, 60).

pub mod link;
pub mod protocol;

use std::time::Duration;

use pyrolab_plugin_api::prelude::*;
use pyrolab_plugin_api::tracing;

use link::Itla;
use protocol::{C_SPEED, SENA, join_mhz, register, split_mhz};

/// The service's `parameters:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    /// The serial port: `/dev/ttyUSB0`, `COM6`, or `ASRL/dev/ttyUSB0::INSTR`.
    #[serde(default)]
    pub port: Option<String>,
    /// The laser's baud rate (an ITLA's: 4800 to 115200; 9600 at power-up).
    #[serde(default = "default_baudrate")]
    pub baudrate: u32,
    /// Seconds a reply may take.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Seconds turning the output on, tuning or changing mode may take.
    #[serde(default = "default_settle_timeout")]
    pub settle_timeout: f64,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            port: None,
            baudrate: default_baudrate(),
            timeout: default_timeout(),
            settle_timeout: default_settle_timeout(),
        }
    }
}

fn default_baudrate() -> u32 {
    9600
}

fn default_timeout() -> f64 {
    0.5
}

fn default_settle_timeout() -> f64 {
    60.0
}

/// The baud rates an ITLA's IOCap register can select.
const BAUD_RATES: [u32; 6] = [4800, 9600, 19200, 38400, 57600, 115200];

fn check_parameters(parameters: &Parameters) -> Result<()> {
    if !BAUD_RATES.contains(&parameters.baudrate) {
        return Err(DriverError::value(format!(
            "baudrate must be one of an ITLA's rates {BAUD_RATES:?}, not {}",
            parameters.baudrate
        )));
    }
    check_seconds("timeout", parameters.timeout, 60.0)?;
    check_seconds("settle_timeout", parameters.settle_timeout, 3600.0)
}

fn check_seconds(name: &str, seconds: f64, max: f64) -> Result<()> {
    if seconds.is_finite() && seconds > 0.0 && seconds <= max {
        Ok(())
    } else {
        Err(DriverError::value(format!(
            "{name} must be more than 0 and at most {max} seconds, not {seconds}"
        )))
    }
}

/// What differs between the PPCL550 and the PPCL551: PyroLab's ranges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Model {
    pub name: &'static str,
    /// nm.
    pub min_wavelength: f64,
    pub max_wavelength: f64,
    /// dBm.
    pub min_power_dbm: f64,
    pub max_power_dbm: f64,
}

/// The C-band PPCL550.
pub const PPCL550: Model = Model {
    name: "PPCL550",
    min_wavelength: 1515.0,
    max_wavelength: 1570.0,
    min_power_dbm: 6.0,
    max_power_dbm: 13.5,
};

/// The L-band PPCL551.
pub const PPCL551: Model = Model {
    name: "PPCL551",
    min_wavelength: 1569.0,
    max_wavelength: 1625.0,
    min_power_dbm: 6.0,
    max_power_dbm: 13.5,
};

impl Model {
    /// GHz (PyroLab's `MINIMUM_FREQUENCY`: c / nm).
    pub fn min_frequency(&self) -> f64 {
        C_SPEED / self.max_wavelength
    }

    pub fn max_frequency(&self) -> f64 {
        C_SPEED / self.min_wavelength
    }

    pub fn min_power_mw(&self) -> f64 {
        mw_of_dbm(self.min_power_dbm)
    }

    pub fn max_power_mw(&self) -> f64 {
        mw_of_dbm(self.max_power_dbm)
    }
}

fn mw_of_dbm(dbm: f64) -> f64 {
    10f64.powf(dbm / 10.0)
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn check_range(what: &str, value: f64, min: f64, max: f64, unit: &str) -> Result<()> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(DriverError::value(format!(
            "{what} must be between {min} and {max} {unit}, not {value}"
        )))
    }
}

/// The laser's identification, read from its string registers.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Identity {
    pub device_type: String,
    pub manufacturer: String,
    pub model: String,
    pub serial_number: String,
    pub manufacturing_date: String,
    pub release: String,
}

/// The laser's own ranges (LFL/LFH, OPSL/OPSH).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Limits {
    /// GHz.
    pub min_frequency: f64,
    pub max_frequency: f64,
    /// dBm.
    #[serde(rename = "min_power_dBm")]
    pub min_power_dbm: f64,
    #[serde(rename = "max_power_dBm")]
    pub max_power_dbm: f64,
}

/// Everything both classes do; each class is this with its [`Model`].
pub struct Laser {
    model: Model,
    parameters: Parameters,
    link: Option<Itla>,
    /// Whether the laser has the MHz registers (FCF3, LF3), once known.
    fine_tuning: Option<bool>,
}

impl Laser {
    /// A driver for `model`, not yet connected.
    pub fn new(model: Model, parameters: Parameters) -> Result<Laser> {
        check_parameters(&parameters)?;
        Ok(Laser {
            model,
            parameters,
            link: None,
            fine_tuning: None,
        })
    }

    /// A driver talking over `itla` (a test's, or a port opened elsewhere).
    pub fn with_link(model: Model, parameters: Parameters, itla: Itla) -> Result<Laser> {
        let mut laser = Laser::new(model, parameters)?;
        laser.link = Some(itla);
        Ok(laser)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    fn link(&mut self) -> Result<&mut Itla> {
        self.link.as_mut().ok_or_else(|| {
            DriverError::connection(
                "not connected to the laser: call connect() or autoconnect() first",
            )
        })
    }

    fn settle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.parameters.settle_timeout)
    }

    /// Writes `data` and waits for what it started, if anything.
    fn write_and_settle(&mut self, register: u8, data: u16, what: &str) -> Result<()> {
        let limit = self.settle_timeout();
        let link = self.link()?;
        if link.write(register, data)? {
            link.wait_until_ready(limit, what)?;
        }
        Ok(())
    }

    /// Opens the port and checks the laser answers (a NOP read). Already
    /// connected to that port: nothing to do. Another port: that one.
    pub fn connect(&mut self, port: Option<String>, baudrate: Option<u32>) -> Result<bool> {
        let port = port
            .filter(|port| !port.trim().is_empty())
            .or_else(|| self.parameters.port.clone())
            .ok_or_else(|| {
                DriverError::value(
                    "no port: give connect(port=...) or the service parameter `port`",
                )
            })?;
        if self.link.as_ref().is_some_and(|link| link.port() == port) {
            return Ok(true);
        }
        let mut settings = self.parameters.clone();
        settings.baudrate = baudrate.unwrap_or(settings.baudrate);
        check_parameters(&settings)?;
        self.close();
        let timeout = Duration::from_secs_f64(settings.timeout);
        let mut itla = Itla::open(&port, settings.baudrate, timeout)?;
        itla.read(register::NOP)
            .map_err(|err| err.context(format!("while connecting to the laser on {port}")))?;
        self.link = Some(itla);
        tracing::info!(%port, model = self.model.name, "connected to the laser");
        Ok(true)
    }

    /// Connects with the service's parameters.
    pub fn autoconnect(&mut self) -> Result<bool> {
        self.connect(None, None)
    }

    /// Closes the port; the laser keeps its state (on stays on).
    pub fn close(&mut self) {
        if let Some(link) = self.link.take() {
            tracing::info!(port = link.port(), "disconnected from the laser");
        }
        self.fine_tuning = None;
    }

    pub fn connected(&self) -> bool {
        self.link.is_some()
    }

    /// The string registers: DevTyp, MFGR, Model, SerNo, MFGDate, Release.
    pub fn identify(&mut self) -> Result<Identity> {
        let link = self.link()?;
        Ok(Identity {
            device_type: link.read_string(register::DEV_TYP)?,
            manufacturer: link.read_string(register::MFGR)?,
            model: link.read_string(register::MODEL)?,
            serial_number: link.read_string(register::SER_NO)?,
            manufacturing_date: link.read_string(register::MFG_DATE)?,
            release: link.read_string(register::RELEASE)?,
        })
    }

    /// Enables the output (ResEna SENA) and waits until the laser is
    /// locked.
    pub fn on(&mut self) -> Result<()> {
        self.write_and_settle(register::RES_ENA, SENA, "turning on")
    }

    /// Disables the output.
    pub fn off(&mut self) -> Result<()> {
        self.write_and_settle(register::RES_ENA, 0, "turning off")
    }

    /// Whether the output is enabled (ResEna's SENA bit).
    pub fn is_on(&mut self) -> Result<bool> {
        Ok(self.link()?.read(register::RES_ENA)? & SENA != 0)
    }

    /// The optical output power (OOP), in dBm; with `power`, sets the
    /// set point (PWR) instead.
    pub fn power_dbm(&mut self, power: Option<f64>) -> Result<Option<f64>> {
        let Some(dbm) = power else {
            let reading = self.link()?.read_signed(register::OOP)?;
            return Ok(Some(f64::from(reading) / 100.0));
        };
        let model = self.model;
        check_range(
            "power",
            dbm,
            model.min_power_dbm,
            model.max_power_dbm,
            "dBm",
        )?;
        self.set_power(dbm)
    }

    /// The output power in mW; with `power`, sets it instead.
    pub fn power_mw(&mut self, power: Option<f64>) -> Result<Option<f64>> {
        let Some(mw) = power else {
            let dbm = self.power_dbm(None)?.unwrap_or(f64::NEG_INFINITY);
            return Ok(Some(round_to(mw_of_dbm(dbm), 2)));
        };
        let model = self.model;
        check_range(
            "power",
            mw,
            model.min_power_mw(),
            model.max_power_mw(),
            "mW",
        )?;
        self.set_power(10.0 * mw.log10())
    }

    fn set_power(&mut self, dbm: f64) -> Result<Option<f64>> {
        let dbm100 = (dbm * 100.0).round() as i16;
        self.write_and_settle(register::PWR, dbm100 as u16, "changing power")?;
        Ok(None)
    }

    /// The laser's frequency (LF1..3) in GHz; with `frequency` (GHz), tunes
    /// there instead.
    pub fn frequency(&mut self, frequency: Option<f64>) -> Result<Option<f64>> {
        let Some(ghz) = frequency else {
            return self.read_frequency().map(Some);
        };
        let model = self.model;
        check_range(
            "frequency",
            ghz,
            model.min_frequency(),
            model.max_frequency(),
            "GHz",
        )?;
        self.tune(ghz)?;
        Ok(None)
    }

    /// The laser's wavelength in nm (to 1 pm, as PyroLab's); with
    /// `wavelength` (nm), tunes there instead.
    pub fn wavelength(&mut self, wavelength: Option<f64>) -> Result<Option<f64>> {
        let Some(nm) = wavelength else {
            let ghz = self.read_frequency()?;
            if ghz <= 0.0 {
                return Err(DriverError::runtime(format!(
                    "the laser reports a frequency of {ghz} GHz, which has no wavelength"
                )));
            }
            return Ok(Some(round_to(C_SPEED / ghz, 3)));
        };
        let model = self.model;
        check_range(
            "wavelength",
            nm,
            model.min_wavelength,
            model.max_wavelength,
            "nm",
        )?;
        self.tune(C_SPEED / nm)?;
        Ok(None)
    }

    /// Whether the laser has the MHz registers (FCF3, LF3: OIF-ITLA-MSA
    /// 01.3); asked once per connection.
    fn fine_tuning(&mut self) -> Result<bool> {
        if let Some(fine) = self.fine_tuning {
            return Ok(fine);
        }
        let fine = self.link()?.read_optional(register::FCF3)?.is_some();
        self.fine_tuning = Some(fine);
        Ok(fine)
    }

    fn read_frequency(&mut self) -> Result<f64> {
        let fine = self.fine_tuning()?;
        let link = self.link()?;
        let thz = link.read(register::LF1)?;
        let ghz10 = link.read(register::LF2)?;
        let mhz = if fine { link.read(register::LF3)? } else { 0 };
        Ok(join_mhz([thz, ghz10, mhz]) as f64 / 1000.0)
    }

    /// Tunes to `ghz`, to 1 MHz (0.1 GHz, as PyroLab, on a laser without
    /// FCF3): the output off if it was on, FCF1, FCF2 (and FCF3), and on
    /// again, waiting until the laser is locked. A frequency the laser
    /// refuses leaves it at the one it had (and on, if it was).
    fn tune(&mut self, ghz: f64) -> Result<()> {
        let fine = self.fine_tuning()?;
        let mhz = if fine {
            (ghz * 1000.0).round() as u64
        } else {
            (ghz * 10.0).round() as u64 * 100
        };
        let previous = self.first_channel(fine)?;
        let was_on = self.is_on()?;
        if was_on {
            self.off()?;
        }
        if let Err(refused) = self.set_first_channel(split_mhz(mhz), fine) {
            let restored = self.set_first_channel(previous, fine);
            let back_on = if was_on { self.on() } else { Ok(()) };
            let outcome = match restored.and(back_on) {
                Ok(()) => format!("it stays at {} GHz", join_mhz(previous) as f64 / 1000.0),
                Err(err) => format!("and restoring its frequency failed too: {err}"),
            };
            return Err(DriverError::new(
                refused.kind(),
                format!("{}; {outcome}", refused.message()),
            ));
        }
        tracing::debug!(mhz, was_on, "tuned");
        if was_on {
            self.on()?;
        }
        Ok(())
    }

    /// FCF1, FCF2 (and FCF3), in MSA units.
    fn first_channel(&mut self, fine: bool) -> Result<[u16; 3]> {
        let link = self.link()?;
        let thz = link.read(register::FCF1)?;
        let ghz10 = link.read(register::FCF2)?;
        let mhz = if fine { link.read(register::FCF3)? } else { 0 };
        Ok([thz, ghz10, mhz])
    }

    /// Writes FCF1, FCF2 (and FCF3) in that order: the order in which the
    /// laser's range checks pass for any frequency within its range.
    fn set_first_channel(&mut self, [thz, ghz10, mhz]: [u16; 3], fine: bool) -> Result<()> {
        let link = self.link()?;
        link.write(register::FCF1, thz)?;
        link.write(register::FCF2, ghz10)?;
        if fine {
            link.write(register::FCF3, mhz)?;
        }
        Ok(())
    }

    /// Sets the channel (Channel 0x30: the first channel's frequency plus
    /// `channel - 1` grid spacings); returns the channel the laser took.
    pub fn set_channel(&mut self, channel: u16) -> Result<u16> {
        self.write_and_settle(register::CHANNEL, channel, "changing channel")?;
        self.link()?.read(register::CHANNEL)
    }

    /// Sets Pure Photonics' mode (0x90): 0 standard (dither), 1 no dither,
    /// 2 whisper; returns the mode the laser took.
    pub fn set_mode(&mut self, mode: u16) -> Result<u16> {
        if mode > 2 {
            return Err(DriverError::value(format!(
                "mode must be 0 (standard, dither), 1 (no dither) or 2 (whisper), not {mode}"
            )));
        }
        self.write_and_settle(register::MODE, mode, "changing mode")?;
        self.mode()
    }

    /// The mode: 0 standard (dither), 1 no dither, 2 whisper.
    pub fn mode(&mut self) -> Result<u16> {
        self.link()?.read(register::MODE)
    }

    /// The laser's own ranges, as it reports them.
    pub fn laser_limits(&mut self) -> Result<Limits> {
        let link = self.link()?;
        let low = join_mhz([link.read(register::LFL1)?, link.read(register::LFL2)?, 0]);
        let high = join_mhz([link.read(register::LFH1)?, link.read(register::LFH2)?, 0]);
        Ok(Limits {
            min_frequency: low as f64 / 1000.0,
            max_frequency: high as f64 / 1000.0,
            min_power_dbm: f64::from(link.read_signed(register::OPSL)?) / 100.0,
            max_power_dbm: f64::from(link.read_signed(register::OPSH)?) / 100.0,
        })
    }
}

/// One class per model: the same methods, PyroLab's names, the model's
/// ranges. (`#[service]` makes one class of an impl block, so the block is
/// written once here and stamped out per model.)
macro_rules! laser_class {
    ($(#[$doc:meta])* $ty:ident, $name:tt, $model:expr) => {
        $(#[$doc])*
        pub struct $ty {
            laser: Laser,
        }

        $(#[$doc])*
        #[service(name = $name)]
        impl $ty {
            #[constructor]
            pub fn new(parameters: Parameters) -> Result<Self> {
                Ok($ty {
                    laser: Laser::new($model, parameters)?,
                })
            }

            /// Opens the serial port (`port`, default the service's; a path,
            /// `COM6` or `ASRL...::INSTR`) at `baudrate` and checks that the
            /// laser answers. Returns True.
            pub fn connect(&mut self, port: Option<String>, baudrate: Option<u32>) -> Result<bool> {
                self.laser.connect(port, baudrate)
            }

            /// Connects with the service's parameters.
            pub fn autoconnect(&mut self) -> Result<bool> {
                self.laser.autoconnect()
            }

            /// Closes the serial port (the laser keeps its state).
            pub fn close(&mut self) {
                self.laser.close()
            }

            /// Whether a port is open.
            #[getter]
            pub fn connected(&self) -> bool {
                self.laser.connected()
            }

            /// Whether the output is on (read from the laser).
            #[getter]
            pub fn is_on(&mut self) -> Result<bool> {
                self.laser.is_on()
            }

            /// The laser's identification: device type, manufacturer,
            /// model, serial number, manufacturing date, firmware release.
            pub fn identify(&mut self) -> Result<Identity> {
                self.laser.identify()
            }

            /// Turns the output on and waits until the laser is locked.
            pub fn on(&mut self) -> Result<()> {
                self.laser.on()
            }

            /// Turns the output off.
            pub fn off(&mut self) -> Result<()> {
                self.laser.off()
            }

            /// The output power in mW; with `power`, sets it (and returns
            /// None).
            #[allow(non_snake_case)]
            pub fn power_mW(&mut self, power: Option<f64>) -> Result<Option<f64>> {
                self.laser.power_mw(power)
            }

            /// The output power in dBm (negative while the output is off);
            /// with `power`, sets it (and returns None).
            #[allow(non_snake_case)]
            pub fn power_dBm(&mut self, power: Option<f64>) -> Result<Option<f64>> {
                self.laser.power_dbm(power)
            }

            /// The frequency in GHz; with `frequency` (GHz, to 1 MHz), tunes
            /// there (turning the output off and on again if it is on) and
            /// returns None.
            pub fn frequency(&mut self, frequency: Option<f64>) -> Result<Option<f64>> {
                self.laser.frequency(frequency)
            }

            /// The wavelength in nm; with `wavelength` (nm), tunes there
            /// (as `frequency`) and returns None.
            pub fn wavelength(&mut self, wavelength: Option<f64>) -> Result<Option<f64>> {
                self.laser.wavelength(wavelength)
            }

            /// Sets the channel (should be 1 unless a grid is set); returns
            /// the laser's channel.
            pub fn set_channel(&mut self, channel: u16) -> Result<u16> {
                self.laser.set_channel(channel)
            }

            /// Sets the mode: 0 standard (dither), 1 no dither, 2 whisper
            /// (clean); returns the laser's mode.
            pub fn set_mode(&mut self, mode: u16) -> Result<u16> {
                self.laser.set_mode(mode)
            }

            /// The mode: 0 standard (dither), 1 no dither, 2 whisper.
            pub fn mode(&mut self) -> Result<u16> {
                self.laser.mode()
            }

            /// The laser's own frequency (GHz) and power (dBm) ranges.
            pub fn laser_limits(&mut self) -> Result<Limits> {
                self.laser.laser_limits()
            }

            /// The lowest frequency this class sets, in GHz.
            #[getter(MINIMUM_FREQUENCY)]
            pub fn minimum_frequency(&self) -> f64 {
                self.laser.model().min_frequency()
            }

            /// The highest frequency this class sets, in GHz.
            #[getter(MAXIMUM_FREQUENCY)]
            pub fn maximum_frequency(&self) -> f64 {
                self.laser.model().max_frequency()
            }

            /// The lowest wavelength this class sets, in nm.
            #[getter(MINIMUM_WAVELENGTH)]
            pub fn minimum_wavelength(&self) -> f64 {
                self.laser.model().min_wavelength
            }

            /// The highest wavelength this class sets, in nm.
            #[getter(MAXIMUM_WAVELENGTH)]
            pub fn maximum_wavelength(&self) -> f64 {
                self.laser.model().max_wavelength
            }

            /// The lowest power this class sets, in mW.
            #[getter(MINIMUM_POWER_MW)]
            pub fn minimum_power_mw(&self) -> f64 {
                self.laser.model().min_power_mw()
            }

            /// The highest power this class sets, in mW.
            #[getter(MAXIMUM_POWER_MW)]
            pub fn maximum_power_mw(&self) -> f64 {
                self.laser.model().max_power_mw()
            }

            /// The lowest power this class sets, in dBm.
            #[getter(MINIMUM_POWER_DBM)]
            pub fn minimum_power_dbm(&self) -> f64 {
                self.laser.model().min_power_dbm
            }

            /// The highest power this class sets, in dBm.
            #[getter(MAXIMUM_POWER_DBM)]
            pub fn maximum_power_dbm(&self) -> f64 {
                self.laser.model().max_power_dbm
            }
        }
    };
}

laser_class!(
    /// A Pure Photonics PPCL550 (C band: 1515 to 1570 nm, 6 to 13.5 dBm),
    /// over the OIF-ITLA-MSA register protocol (PyroLab's PPCL550).
    Ppcl550,
    "PPCL550",
    PPCL550
);

laser_class!(
    /// A Pure Photonics PPCL551 (L band: 1569 to 1625 nm, 6 to 13.5 dBm),
    /// over the OIF-ITLA-MSA register protocol (PyroLab's PPCL551).
    Ppcl551,
    "PPCL551",
    PPCL551
);

export_plugin!(Ppcl550, Ppcl551);

#[cfg(test)]
mod tests;
