//! Driver for the Thorlabs KDC101 K-Cube DC servo motor controller, over the APT protocol on its USB serial port.

use pyrolab_plugin_api::prelude::*;

/// The service's `parameters:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {}

pub struct Driver {
    _parameters: Parameters,
}

#[service(name = "KDC101")]
impl Driver {
    #[constructor]
    pub fn new(parameters: Parameters) -> Self {
        Driver {
            _parameters: parameters,
        }
    }
}

export_plugin!(Driver);
