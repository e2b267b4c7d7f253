//! From the stage's units (mm, or degrees for a rotation stage) to the
//! KDC101's and back.
//!
//! The controller counts in encoder counts. With `C` counts per unit and
//! its servo cycle `T = 2048 / 6e6` s, the protocol document gives:
//!
//! - position: `counts = C × position`
//! - velocity: `apt = C × T × 65536 × velocity` (a Z8: 772 981.37 per mm/s)
//! - acceleration: `apt = C × T² × 65536 × acceleration` (a Z8: 263.84 per mm/s²)

use pyrolab_plugin_api::prelude::*;

/// The KDC101's servo cycle, in seconds.
pub const SAMPLE_INTERVAL: f64 = 2048.0 / 6e6;

/// A stage the KDC101 drives.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// The name it was chosen by.
    pub name: String,
    /// "mm" or "deg".
    pub unit: &'static str,
    /// Encoder counts per unit.
    pub counts_per_unit: f64,
    /// The travel, in units: the default soft limits.
    pub travel: (f64, f64),
}

/// Z8 actuators: a 512-count encoder on a 67.49:1 gearhead and a 1 mm
/// lead screw.
const Z8_COUNTS_PER_MM: f64 = 34_554.96;
/// The PRM1-Z8 rotation stage.
const PRM1_Z8_COUNTS_PER_DEGREE: f64 = 1_919.641_857_862_339;

/// A stage known by name.
struct Known {
    names: &'static [&'static str],
    unit: &'static str,
    counts_per_unit: f64,
    travel: (f64, f64),
}

const fn z8(names: &'static [&'static str], travel_mm: f64) -> Known {
    Known {
        names,
        unit: "mm",
        counts_per_unit: Z8_COUNTS_PER_MM,
        travel: (0.0, travel_mm),
    }
}

const STAGES: &[Known] = &[
    z8(&["Z806", "Z906"], 6.0),
    z8(&["Z812", "Z812B", "Z912", "Z912B"], 12.0),
    z8(&["Z8", "Z825", "Z825B", "Z9", "Z925B", "MTS25-Z8"], 25.0),
    z8(&["MTS50-Z8"], 50.0),
    Known {
        names: &["PRM1-Z8", "PRM1Z8"],
        unit: "deg",
        counts_per_unit: PRM1_Z8_COUNTS_PER_DEGREE,
        travel: (0.0, 360.0),
    },
];

impl Stage {
    /// The stage called `name` (case does not matter).
    pub fn named(name: &str) -> Result<Stage> {
        let wanted = name.trim().to_ascii_uppercase();
        STAGES
            .iter()
            .find(|known| known.names.contains(&wanted.as_str()))
            .map(|known| Stage {
                name: wanted.clone(),
                unit: known.unit,
                counts_per_unit: known.counts_per_unit,
                travel: known.travel,
            })
            .ok_or_else(|| {
                let names: Vec<&str> = STAGES
                    .iter()
                    .flat_map(|k| k.names.iter().copied())
                    .collect();
                DriverError::value(format!(
                    "unknown stage {name:?}: known are {}; for another, give counts_per_unit",
                    names.join(", ")
                ))
            })
    }

    fn velocity_factor(&self) -> f64 {
        self.counts_per_unit * SAMPLE_INTERVAL * 65536.0
    }

    fn acceleration_factor(&self) -> f64 {
        self.counts_per_unit * SAMPLE_INTERVAL * SAMPLE_INTERVAL * 65536.0
    }

    /// A position (or distance) in encoder counts.
    pub fn counts(&self, what: &str, position: f64) -> Result<i32> {
        to_i32(what, position, self.counts_per_unit, self.unit)
    }

    /// Encoder counts as a position.
    pub fn position(&self, counts: i32) -> f64 {
        f64::from(counts) / self.counts_per_unit
    }

    /// A velocity in APT units; it must be positive.
    pub fn apt_velocity(&self, what: &str, velocity: f64) -> Result<i32> {
        positive(what, velocity, &format!("{}/s", self.unit))?;
        to_i32(
            what,
            velocity,
            self.velocity_factor(),
            &format!("{}/s", self.unit),
        )
    }

    pub fn velocity(&self, apt: i32) -> f64 {
        f64::from(apt) / self.velocity_factor()
    }

    /// An acceleration in APT units; it must be positive.
    pub fn apt_acceleration(&self, what: &str, acceleration: f64) -> Result<i32> {
        let unit = format!("{}/s²", self.unit);
        positive(what, acceleration, &unit)?;
        to_i32(what, acceleration, self.acceleration_factor(), &unit)
    }

    pub fn acceleration(&self, apt: i32) -> f64 {
        f64::from(apt) / self.acceleration_factor()
    }

    /// The speed word of a DC status (encoder counts per servo cycle) as
    /// a speed in units/s.
    pub fn status_speed(&self, word: u16) -> f64 {
        f64::from(word) / SAMPLE_INTERVAL / self.counts_per_unit
    }
}

fn positive(what: &str, value: f64, unit: &str) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(DriverError::value(format!(
            "{what} must be a positive number of {unit}, not {value}"
        )))
    }
}

/// `value × factor`, rounded, if it fits the protocol's 32-bit field.
fn to_i32(what: &str, value: f64, factor: f64, unit: &str) -> Result<i32> {
    let scaled = (value * factor).round();
    if value.is_finite() && scaled.abs() <= f64::from(i32::MAX) {
        Ok(scaled as i32)
    } else {
        Err(DriverError::value(format!(
            "{what} {value} {unit} is out of the controller's range"
        )))
    }
}

/// Travel time of a trapezoidal move of `distance` at `velocity` with
/// `acceleration` (any consistent units), for waiting on it.
pub fn move_time(distance: f64, velocity: f64, acceleration: f64) -> f64 {
    let distance = distance.abs();
    if velocity <= 0.0 || acceleration <= 0.0 {
        return f64::INFINITY;
    }
    if distance >= velocity * velocity / acceleration {
        distance / velocity + velocity / acceleration
    } else {
        2.0 * (distance / acceleration).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_z8_s_scale_factors_are_the_protocol_document_s() {
        let z8 = Stage::named("z825b").unwrap();
        assert_eq!(z8.counts("position", 1.0).unwrap(), 34_555);
        assert!((z8.velocity_factor() - 772_981.369_2).abs() < 0.01);
        assert!((z8.acceleration_factor() - 263.844_307_2).abs() < 1e-5);
        assert_eq!(z8.apt_velocity("v", 2.3).unwrap(), 1_777_857);
        assert!((z8.velocity(1_777_857) - 2.3).abs() < 1e-6);
        let prm = Stage::named("PRM1-Z8").unwrap();
        assert_eq!(prm.unit, "deg");
        assert!((prm.velocity_factor() - 42_941.66).abs() < 0.01);
        assert!((prm.acceleration_factor() - 14.66).abs() < 0.01);
    }

    #[test]
    fn values_outside_what_the_controller_takes_are_value_errors() {
        let z8 = Stage::named("Z8").unwrap();
        for err in [
            z8.apt_velocity("move_velocity", 0.0).unwrap_err(),
            z8.apt_velocity("move_velocity", f64::NAN).unwrap_err(),
            z8.apt_acceleration("move_acceleration", -1.0).unwrap_err(),
            z8.counts("position", 1e6).unwrap_err(),
            Stage::named("Z999").unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::ValueError, "{err}");
        }
    }

    #[test]
    fn move_times_follow_the_trapezoid() {
        assert!((move_time(3.0, 2.0, 2.0) - 2.5).abs() < 1e-9);
        assert!((move_time(-2.0, 2.0, 2.0) - 2.0).abs() < 1e-9);
        assert!((move_time(0.5, 2.0, 2.0) - 1.0).abs() < 1e-9);
        assert!(move_time(1.0, 0.0, 1.0).is_infinite());
    }
}
