//! Driver for the Pure Photonics PPCL550 and PPCL551 tunable lasers, over the OIF ITLA register protocol on a serial port.

use pyrolab_plugin_api::prelude::*;

/// The service's `parameters:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {}

pub struct Driver {
    _parameters: Parameters,
}

#[service(name = "PPCL550")]
impl Driver {
    #[constructor]
    pub fn new(parameters: Parameters) -> Self {
        Driver {
            _parameters: parameters,
        }
    }
}

export_plugin!(Driver);
