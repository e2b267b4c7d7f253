//! The TSL-550's remote command set ("command set 2", the only one over
//! RS-232C and USB), as Santec's operation manual (ver. 1.4, chapter 7)
//! documents it and PyroLab's driver uses it.
//!
//! A command is ASCII, `<CMD>` to read a value or `<CMD><value>` to set it
//! (`WA1550.0000`, `OP-3.00`), ended by CR. The laser answers every command
//! with one line ended by CR: the value (zero-padded, e.g. `-010.000`) for
//! value commands, on setting as on reading; an empty line for actions
//! (`LO`, `SO`, `SG`, ...). The manual documents no error reply: a value
//! the laser cannot take is not applied, and the reply is the value it
//! keeps.

use std::collections::BTreeMap;

/// Speed of light, m/s (for wavelength ⇄ frequency).
pub const SPEED_OF_LIGHT: f64 = 299_792_458.0;

/// The wavelength range (nm) of the common C+L model, PyroLab's limits.
pub const MIN_WAVELENGTH: f64 = 1500.0;
/// See [`MIN_WAVELENGTH`].
pub const MAX_WAVELENGTH: f64 = 1630.0;
/// Output power limits (dBm), PyroLab's.
pub const MIN_POWER_DBM: f64 = -15.0;
/// See [`MIN_POWER_DBM`].
pub const MAX_POWER_DBM: f64 = 13.0;
/// Attenuator range (dB).
pub const MIN_ATTENUATION: f64 = 0.0;
/// See [`MIN_ATTENUATION`].
pub const MAX_ATTENUATION: f64 = 30.0;
/// Sweep speed range (nm/s).
pub const MIN_SWEEP_SPEED: f64 = 0.5;
/// See [`MIN_SWEEP_SPEED`].
pub const MAX_SWEEP_SPEED: f64 = 100.0;
/// Sweep delay and step-time range (s).
pub const MAX_SWEEP_TIME: f64 = 999.9;
/// Sweep repetitions (`SZ`).
pub const MAX_SWEEP_COUNT: u32 = 999;
/// Sweep step range (nm).
pub const MIN_SWEEP_STEP: f64 = 0.0001;
/// See [`MIN_SWEEP_STEP`].
pub const MAX_SWEEP_STEP: f64 = 160.0;

/// Frequency (THz) of a wavelength (nm).
pub fn frequency_of(wavelength_nm: f64) -> f64 {
    SPEED_OF_LIGHT / 1000.0 / wavelength_nm
}

/// Wavelength (nm) of a frequency (THz).
pub fn wavelength_of(frequency_thz: f64) -> f64 {
    SPEED_OF_LIGHT / 1000.0 / frequency_thz
}

/// mW of dBm.
pub fn mw_of_dbm(dbm: f64) -> f64 {
    10f64.powf(dbm / 10.0)
}

/// dBm of mW.
pub fn dbm_of_mw(mw: f64) -> f64 {
    10.0 * mw.log10()
}

/// A command with a value, as PyroLab formats it: fixed decimals, no `+`.
pub fn with_value(command: &str, value: f64, decimals: usize) -> String {
    format!("{command}{value:.decimals$}")
}

/// Parses a numeric reply (zero-padded, maybe signed, maybe surrounded by
/// spaces).
pub fn number(reply: &str) -> Option<f64> {
    let value: f64 = reply.trim().parse().ok()?;
    value.is_finite().then_some(value)
}

/// Parses an integer reply (`00009`, `1`).
pub fn integer(reply: &str) -> Option<i64> {
    reply.trim().parse().ok()
}

/// Sweep status (`SK`).
pub mod sweep_status {
    /// Not sweeping.
    pub const OFF: i64 = 0;
    /// Sweeping.
    pub const RUNNING: i64 = 1;
    /// Paused (`SP`).
    pub const PAUSED: i64 = 2;
    /// Waiting for a trigger.
    pub const TRIGGER_WAIT: i64 = 3;
    /// Returning to the start wavelength.
    pub const JUMP: i64 = 4;
}

/// A sweep mode: how `SM1`..`SM12` combine its four choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepMode {
    /// Continuous (rather than stepped).
    pub continuous: bool,
    /// There and back (rather than one way).
    pub twoway: bool,
    /// Each sweep waits for a trigger.
    pub trigger: bool,
    /// Steps of constant frequency (rather than wavelength).
    pub const_freq_step: bool,
}

/// `SM` numbers by mode (PyroLab's `SWEEP_MODE_MAP`, the manual's table).
const SWEEP_MODES: [(u8, SweepMode); 12] = {
    const fn mode(c: bool, t: bool, tr: bool, f: bool) -> SweepMode {
        SweepMode {
            continuous: c,
            twoway: t,
            trigger: tr,
            const_freq_step: f,
        }
    }
    [
        (1, mode(true, false, false, false)),
        (2, mode(true, true, false, false)),
        (3, mode(false, false, false, false)),
        (4, mode(false, true, false, false)),
        (5, mode(false, false, false, true)),
        (6, mode(false, true, false, true)),
        (7, mode(true, false, true, false)),
        (8, mode(true, true, true, false)),
        (9, mode(false, false, true, false)),
        (10, mode(false, true, true, false)),
        (11, mode(false, false, true, true)),
        (12, mode(false, true, true, true)),
    ]
};

impl SweepMode {
    /// The `SM` number of this mode, if the laser has it (a continuous
    /// sweep has no constant-frequency steps).
    pub fn number(self) -> Option<u8> {
        SWEEP_MODES
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
    }

    /// The mode numbered `n`.
    pub fn from_number(n: i64) -> Option<SweepMode> {
        SWEEP_MODES
            .iter()
            .find(|(number, _)| i64::from(*number) == n)
            .map(|(_, m)| *m)
    }

    /// As PyroLab's `sweep_get_mode()` returns it.
    pub fn to_map(self) -> BTreeMap<&'static str, bool> {
        BTreeMap::from([
            ("continuous", self.continuous),
            ("twoway", self.twoway),
            ("trigger", self.trigger),
            ("const_freq_step", self.const_freq_step),
        ])
    }
}

/// Trigger modes (`TM`), by number.
pub const TRIGGER_MODES: [&str; 4] = ["None", "Stop", "Start", "Step"];

/// The laser's status word (`SU`): a sign and six digits, `-654321`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The reply as received.
    pub raw: String,
    /// The laser diode is on (the sign is `-`).
    pub diode_on: bool,
    /// Coherence control is on (6th digit).
    pub coherence_control: bool,
    /// Fine tuning is on (5th digit).
    pub fine_tuning: bool,
    /// Power control / attenuator / power-monitor range (4th digit).
    pub power_mode: u8,
    /// LD temperature error (3rd digit).
    pub temperature_error: bool,
    /// LD current-limit error (2nd digit).
    pub current_error: bool,
    /// Operation in progress (1st digit): 0 complete; bits 1 wavelength
    /// tuning, 2 LD current setting, 4 attenuator setting.
    pub operation: u8,
}

impl Status {
    /// Decodes an `SU` reply.
    pub fn parse(reply: &str) -> Option<Status> {
        let raw = reply.trim();
        let (diode_on, digits) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw.strip_prefix('+').unwrap_or(raw)),
        };
        let digits: Vec<u8> = digits
            .bytes()
            .map(|b| b.is_ascii_digit().then(|| b - b'0'))
            .collect::<Option<_>>()?;
        if digits.len() != 6 {
            return None;
        }
        Some(Status {
            raw: raw.to_owned(),
            diode_on,
            coherence_control: digits[0] == 1,
            fine_tuning: digits[1] == 1,
            power_mode: digits[2],
            temperature_error: digits[3] != 0,
            current_error: digits[4] != 0,
            operation: digits[5],
        })
    }

    /// The status word of these settings.
    pub fn word(&self) -> String {
        format!(
            "{}{}{}{}{}{}{}",
            if self.diode_on { "-" } else { "" },
            u8::from(self.coherence_control),
            u8::from(self.fine_tuning),
            self.power_mode,
            u8::from(self.temperature_error),
            u8::from(self.current_error),
            self.operation
        )
    }

    /// What it means, in words (PyroLab's `status(verbose=True)`).
    pub fn describe(&self) -> String {
        let on_off = |on: bool| if on { "ON" } else { "OFF" };
        let (control, attenuator, monitor) = match self.power_mode {
            0 => ("Auto", "Hold", "Auto"),
            1 => ("Manual", "Hold (Manual)", "Auto"),
            2 => ("Auto", "Auto", "Auto"),
            4 => ("Auto", "Hold", "Hold"),
            5 => ("Manual", "Hold (Manual)", "Hold"),
            _ => ("unknown", "unknown", "unknown"),
        };
        let mut operation = Vec::new();
        if self.operation & 1 != 0 {
            operation.push("wavelength tuning");
        }
        if self.operation & 2 != 0 {
            operation.push("LD current setting");
        }
        if self.operation & 4 != 0 {
            operation.push("attenuator setting");
        }
        let operation = if operation.is_empty() {
            "complete".to_owned()
        } else {
            operation.join(", ")
        };
        format!(
            "LD {}; coherence control {}; fine-tuning {}; power control {control}, attenuator {attenuator}, power monitor range {monitor}; LD temperature {}; LD current {}; operation {operation}",
            on_off(self.diode_on),
            on_off(self.coherence_control),
            on_off(self.fine_tuning),
            if self.temperature_error {
                "ERROR"
            } else {
                "normal"
            },
            if self.current_error {
                "LIMIT ERROR"
            } else {
                "normal"
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_formatted_as_pyrolab_does() {
        assert_eq!(with_value("WA", 1550.0, 4), "WA1550.0000");
        assert_eq!(with_value("OP", -3.0, 2), "OP-3.00");
        assert_eq!(with_value("FQ", 193.41449, 5), "FQ193.41449");
        assert_eq!(with_value("SA", 0.0, 1), "SA0.0");
    }

    #[test]
    fn replies_parse_leniently() {
        assert_eq!(number("-010.000"), Some(-10.0));
        assert_eq!(number(" 1560.000 "), Some(1560.0));
        assert_eq!(number("#@!"), None);
        assert_eq!(integer("00009"), Some(9));
    }

    #[test]
    fn sweep_modes_round_trip() {
        for n in 1..=12 {
            let mode = SweepMode::from_number(n).expect("a mode");
            assert_eq!(mode.number(), Some(n as u8));
        }
        let continuous_freq = SweepMode {
            continuous: true,
            twoway: false,
            trigger: false,
            const_freq_step: true,
        };
        assert_eq!(continuous_freq.number(), None);
        assert_eq!(SweepMode::from_number(0), None);
    }

    #[test]
    fn the_status_word_decodes() {
        let status = Status::parse("-000005").expect("a status");
        assert!(status.diode_on);
        assert_eq!(status.operation, 5);
        assert!(
            status
                .describe()
                .contains("wavelength tuning, attenuator setting")
        );
        assert_eq!(status.word(), "-000005");
        let off = Status::parse("000000").expect("a status");
        assert!(
            !off.diode_on,
            "no sign: off (PyroLab's int() test gets this wrong)"
        );
        assert_eq!(Status::parse("-00005"), None);
        assert_eq!(Status::parse("garbage"), None);
    }

    #[test]
    fn units_convert() {
        assert!((frequency_of(1550.0) - 193.414_489).abs() < 1e-5);
        assert!((wavelength_of(frequency_of(1550.0)) - 1550.0).abs() < 1e-9);
        assert!((mw_of_dbm(0.0) - 1.0).abs() < 1e-12);
        assert!((dbm_of_mw(10.0) - 10.0).abs() < 1e-12);
    }
}
