//! Finding, loading and calling driver plugins.
//!
//! A launch configuration names a service's driver the way PyroLab does, by
//! `module` and `classname`. [`PluginSearchPath::resolve`] maps the module
//! name to a library file, [`Loader::load`] opens it through the stable ABI
//! (checking it was built against a compatible plugin API), and
//! [`Library::create`] constructs an [`Instance`] whose [`Instance::call`]
//! runs driver methods.
//!
//! Libraries are loaded by path and never unloaded: changing a driver means
//! restarting the daemon that uses it.
//!
//! # Layout
//!
//! - `search.rs`: the plugin search path and module-name resolution.
//! - `library.rs`: opening a library and checking its compatibility.
//! - `instance.rs`: driver instances and calls.
//! - `error.rs`: [`LoadError`], one clear line per way loading can fail.

mod error;
mod instance;
mod library;
mod search;

pub use error::LoadError;
pub use instance::{Answer, Instance, ItemStream};
pub use library::{Library, Loader, host_plugin_api_version, loadable_plugin_api_series};
pub use search::{
    PLUGIN_PATH_ENV, PluginSearchPath, SYSTEM_PLUGIN_DIR, SYSTEM_PLUGIN_DIR_ENV, system_plugin_dir,
};
