//! Driver for the Rohde & Schwarz SMCV100B vector signal generator, over
//! SCPI on the network (its socket, port 5025, or VXI-11), with no VISA
//! library.
//!
//! The class is `SMCV100B`, with PyroLab's methods and arguments
//! (`module: pyrolab.drivers.function_generators.smcv100b`). Differences
//! from PyroLab's driver (docs/smcv100b.md): `connect(address)` also takes a
//! whole VISA resource; values are checked against the instrument's ranges
//! before anything is sent (`ValueError`); `amp_running()` /
//! `freq_running()` return a bool; and it adds readings (`frequency()`,
//! `amplitude()`, `output_on()`) and modulation basics (AM depth, FM
//! deviation, each on or off).
//!
//! Parameters (all optional): `address` (host or VISA resource), `timeout`
//! (milliseconds, 2000 as PyroLab's), `portmapper_port` (where a VXI-11
//! host's portmapper listens: 111; another only for a simulator).

use instrument_io::Session;
use pyrolab_plugin_api::prelude::*;
use pyrolab_plugin_api::tracing;

/// The service's `parameters:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub timeout: Option<f64>,
    #[serde(default)]
    pub portmapper_port: Option<u16>,
}

/// The frequency range, in hertz (the SMCV100B's RF path).
pub const MIN_FREQUENCY: f64 = 4e3;
pub const MAX_FREQUENCY: f64 = 7.125e9;
/// The level range, in dBm.
pub const MIN_LEVEL: f64 = -145.0;
pub const MAX_LEVEL: f64 = 20.0;

/// The Rohde & Schwarz SMCV100B.
pub struct Smcv100b {
    parameters: Parameters,
    session: Session,
}

fn check(what: &str, value: f64, min: f64, max: f64, unit: &str) -> Result<()> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(DriverError::value(format!(
            "{what} must be between {min} and {max} {unit}, not {value}"
        )))
    }
}

impl Smcv100b {
    fn block(&mut self, command: String) -> Result<()> {
        self.session.write_block(&command)
    }

    fn running(&mut self, query: &str) -> Result<bool> {
        let reply = self.session.query(query, None)?;
        match reply.trim() {
            "1" | "ON" => Ok(true),
            "0" | "OFF" => Ok(false),
            other => Err(DriverError::connection(format!(
                "garbled reply to {query:?}: {other:?}"
            ))),
        }
    }

    fn check_sweep(
        what: &str,
        start: f64,
        stop: f64,
        min: f64,
        max: f64,
        unit: &str,
    ) -> Result<()> {
        check(&format!("{what} start"), start, min, max, unit)?;
        check(&format!("{what} stop"), stop, min, max, unit)
    }

    fn check_dwell(dwell: f64) -> Result<()> {
        check("dwell", dwell, 0.001, 100.0, "s")
    }

    /// One user step of `step` (within `range`) `UP` or `DOWN`: the step
    /// size under `subsystem`, then the move of `setting`.
    fn user_step(
        &mut self,
        subsystem: &str,
        setting: &str,
        (min, max, unit): (f64, f64, &str),
        step: f64,
        direction: &str,
    ) -> Result<()> {
        check("step", step, min, max, unit)?;
        self.block(format!("{subsystem}:STEP {step}"))?;
        self.block(format!("{subsystem}:STEP:MODE USER"))?;
        self.block(format!("{setting} {direction}"))
    }

    /// A frequency sweep from `start` to `stop` Hz, its spacing and step
    /// commands given, `dwell` s a step; started at once.
    fn frequency_sweep(
        &mut self,
        start: f64,
        stop: f64,
        spacing: Option<&str>,
        step: String,
        dwell: f64,
    ) -> Result<()> {
        Self::check_sweep("frequency", start, stop, MIN_FREQUENCY, MAX_FREQUENCY, "Hz")?;
        Self::check_dwell(dwell)?;
        let mut commands = vec![
            "SOUR:FREQ:MODE SWE".to_owned(),
            format!("SOUR:FREQ:STAR {start}"),
            format!("SOUR:FREQ:STOP {stop}"),
        ];
        commands.extend(spacing.map(str::to_owned));
        commands.extend([
            step,
            format!("SOUR:SWE:FREQ:DWEL1 {dwell}"),
            "TRIG:FSW:SOUR SING".to_owned(),
            "TRIG:FSW:IMM".to_owned(),
        ]);
        for command in commands {
            self.block(command)?;
        }
        Ok(())
    }
}

/// Drives a Rohde & Schwarz SMCV100B vector signal generator over SCPI
/// (PyroLab's SMCV100B, with timeouts, checked values and the
/// instrument's errors).
#[service(name = "SMCV100B")]
impl Smcv100b {
    #[constructor]
    pub fn new(parameters: Parameters) -> Result<Self> {
        let mut session = Session::new(
            "a signal generator",
            5025,
            parameters.timeout.unwrap_or(2000.0),
        )?;
        if let Some(port) = parameters.portmapper_port {
            session.set_portmapper_port(port);
        }
        Ok(Smcv100b {
            parameters,
            session,
        })
    }

    /// Network device detection is not supported (as in PyroLab).
    pub fn detect_devices(&self) -> Vec<String> {
        Vec::new()
    }

    /// Connects to the generator at `address` (host, port 5025, or a VISA
    /// resource) and resets it (`*RST;*CLS`, `:DISP:UPD ON`). Returns True.
    pub fn connect(&mut self, address: Option<String>, timeout: Option<f64>) -> Result<bool> {
        let default = self.parameters.address.clone();
        let address = self.session.connect_to(
            address,
            default.as_deref(),
            timeout,
            &["*RST;*CLS", ":DISP:UPD ON"],
        )?;
        tracing::info!(%address, "connected to the SMCV100B");
        Ok(true)
    }

    /// Connects with the service's parameters.
    pub fn autoconnect(&mut self) -> Result<bool> {
        self.connect(None, None)
    }

    /// Closes the connection.
    pub fn close(&mut self) {
        self.session.close();
    }

    // `timeout`, `query`, `write`, `write_block`, `wait_for_device`:
    // PyroLab's network-instrument methods. Their behaviour is
    // instrument-io's `Session`; each class lists them only because
    // `#[service]` exposes a class's own methods.

    /// The reply timeout, in milliseconds.
    #[getter]
    pub fn timeout(&self) -> f64 {
        self.session.timeout_ms()
    }

    /// Sets the reply timeout, in milliseconds.
    #[setter]
    pub fn set_timeout(&mut self, ms: f64) -> Result<()> {
        self.session.set_timeout_ms(ms)
    }

    /// Sends `message` and returns the reply (`delay` s between them).
    pub fn query(&mut self, message: String, delay: Option<f64>) -> Result<String> {
        self.session.query(&message, delay)
    }

    /// Sends `message`.
    pub fn write(
        &mut self,
        message: String,
        termination: Option<String>,
        encoding: Option<String>,
    ) -> Result<()> {
        self.session
            .write(&message, termination.as_deref(), encoding.as_deref())
    }

    /// Sends `message`, waits until done, checks the error queue.
    pub fn write_block(&mut self, message: String) -> Result<()> {
        self.session.write_block(&message)
    }

    /// Waits until the last operation is complete.
    pub fn wait_for_device(&mut self) -> Result<()> {
        self.session.wait_for_device()
    }

    /// Turns every RF output on (1) or off (0).
    pub fn set_output(&mut self, state: i64) -> Result<()> {
        if !matches!(state, 0 | 1) {
            return Err(DriverError::value(format!(
                "state must be 0 or 1, not {state}"
            )));
        }
        self.block(format!("OUTP:ALL:STAT {state}"))
    }

    pub fn turn_on(&mut self) -> Result<()> {
        self.set_output(1)
    }

    pub fn turn_off(&mut self) -> Result<()> {
        self.set_output(0)
    }

    /// Whether the RF output is on (ours).
    pub fn output_on(&mut self) -> Result<bool> {
        self.running("OUTP:STAT?")
    }

    /// Sets the level, in dBm.
    pub fn set_amp(&mut self, amplitude: f64) -> Result<()> {
        check("amplitude", amplitude, MIN_LEVEL, MAX_LEVEL, "dBm")?;
        self.block(format!("SOUR:POW:LEV:AMPL {amplitude}"))
    }

    /// The level, in dBm (ours).
    pub fn amplitude(&mut self) -> Result<f64> {
        self.session.scpi()?.query_parsed("SOUR:POW:LEV:AMPL?")
    }

    /// Sets the level offset, in dB (not a DC offset).
    pub fn set_amp_offset(&mut self, offset: f64) -> Result<()> {
        check("offset", offset, -100.0, 100.0, "dB")?;
        self.block(format!("SOUR:POW:OFFS {offset}"))
    }

    /// Sweeps the level from `start` to `stop` dBm in `step` dB steps,
    /// `dwell` s each.
    pub fn sweep_amp(
        &mut self,
        start: f64,
        stop: f64,
        step: f64,
        #[default(1.0)] dwell: f64,
    ) -> Result<()> {
        Self::check_sweep("amplitude", start, stop, MIN_LEVEL, MAX_LEVEL, "dBm")?;
        check("step", step, 0.01, 165.0, "dB")?;
        Self::check_dwell(dwell)?;
        for command in [
            "SOUR:POW:MODE SWE".to_owned(),
            format!("SOUR:POW:STAR {start}"),
            format!("SOUR:POW:STOP {stop}"),
            format!("SOUR:SWE:POW:STEP:LOG {step}"),
            format!("SOUR:SWE:POW:DWEL1 {dwell}"),
            "TRIG:PSW:SOUR SING".to_owned(),
            "TRIG:PSW:IMM".to_owned(),
        ] {
            self.block(command)?;
        }
        Ok(())
    }

    /// Whether the level sweep runs.
    pub fn amp_running(&mut self) -> Result<bool> {
        self.running("SOUR:SWE:POW:RUNN?")
    }

    /// Steps the level up by `step` dB.
    pub fn amp_step_up(&mut self, step: f64) -> Result<()> {
        self.user_step(
            "SOUR:POW",
            "SOUR:POW:LEV:AMPL",
            (0.01, 165.0, "dB"),
            step,
            "UP",
        )
    }

    /// Steps the level down by `step` dB.
    pub fn amp_step_down(&mut self, step: f64) -> Result<()> {
        self.user_step(
            "SOUR:POW",
            "SOUR:POW:LEV:AMPL",
            (0.01, 165.0, "dB"),
            step,
            "DOWN",
        )
    }

    /// Sets the frequency, in Hz.
    pub fn set_freq(&mut self, frequency: f64) -> Result<()> {
        check("frequency", frequency, MIN_FREQUENCY, MAX_FREQUENCY, "Hz")?;
        self.block(format!("SOUR:FREQ:FIX {frequency}"))
    }

    /// The frequency, in Hz (ours).
    pub fn frequency(&mut self) -> Result<f64> {
        self.session.scpi()?.query_parsed("SOUR:FREQ:FIX?")
    }

    /// Sets the frequency offset, in Hz.
    pub fn set_freq_offset(&mut self, offset: f64) -> Result<()> {
        check("offset", offset, -67e9, 67e9, "Hz")?;
        self.block(format!("SOUR:FREQ:OFFS {offset}"))
    }

    /// Sets the phase, in degrees.
    pub fn set_phase(&mut self, phase: f64) -> Result<()> {
        check("phase", phase, -36000.0, 36000.0, "degrees")?;
        self.block(format!("SOUR:PHAS {phase}"))
    }

    /// Sweeps the frequency linearly, `step` Hz, `dwell` s each.
    pub fn sweep_freq_lin(
        &mut self,
        start: f64,
        stop: f64,
        step: f64,
        #[default(1.0)] dwell: f64,
    ) -> Result<()> {
        check("step", step, 0.001, MAX_FREQUENCY, "Hz")?;
        self.frequency_sweep(
            start,
            stop,
            None,
            format!("SOUR:SWE:FREQ:STEP:LIN {step}"),
            dwell,
        )
    }

    /// Sweeps the frequency logarithmically, `step` percent, `dwell` s each.
    pub fn sweep_freq_log(
        &mut self,
        start: f64,
        stop: f64,
        step: f64,
        #[default(1.0)] dwell: f64,
    ) -> Result<()> {
        check("step", step, 0.01, 100.0, "%")?;
        self.frequency_sweep(
            start,
            stop,
            Some("SOUR:SWE:FREQ:SPAC LOG"),
            format!("SOUR:SWE:FREQ:STEP:LOG {step}"),
            dwell,
        )
    }

    /// Whether the frequency sweep runs.
    pub fn freq_running(&mut self) -> Result<bool> {
        self.running("SOUR:SWE:FREQ:RUNN?")
    }

    /// Steps the frequency up by `step` Hz.
    pub fn freq_step_up(&mut self, #[default(1e6)] step: f64) -> Result<()> {
        self.user_step(
            "SOUR:FREQ",
            "SOUR:FREQ:FIX",
            (0.001, MAX_FREQUENCY, "Hz"),
            step,
            "UP",
        )
    }

    /// Steps the frequency down by `step` Hz.
    pub fn freq_step_down(&mut self, #[default(1e6)] step: f64) -> Result<()> {
        self.user_step(
            "SOUR:FREQ",
            "SOUR:FREQ:FIX",
            (0.001, MAX_FREQUENCY, "Hz"),
            step,
            "DOWN",
        )
    }

    /// Resets every sweep to its start.
    pub fn reset_sweeps(&mut self) -> Result<()> {
        self.block("SOUR:SWE:RES:ALL".to_owned())
    }

    /// Amplitude modulation (ours): `depth` percent, on or off.
    pub fn set_am(&mut self, depth: f64, #[default(true)] on: bool) -> Result<()> {
        check("AM depth", depth, 0.0, 100.0, "%")?;
        self.block(format!("SOUR:AM:DEPT {depth}"))?;
        self.block(format!("SOUR:AM:STAT {}", if on { "ON" } else { "OFF" }))
    }

    /// Frequency modulation (ours): `deviation` Hz, on or off.
    pub fn set_fm(&mut self, deviation: f64, #[default(true)] on: bool) -> Result<()> {
        check("FM deviation", deviation, 0.0, 40e6, "Hz")?;
        self.block(format!("SOUR:FM:DEV {deviation}"))?;
        self.block(format!("SOUR:FM:STAT {}", if on { "ON" } else { "OFF" }))
    }

    /// Shuts the instrument down (`SYST:SHUT`).
    pub fn shut_down(&mut self) -> Result<()> {
        self.session.write("SYST:SHUT", None, None)
    }
}

export_plugin!(Smcv100b);
