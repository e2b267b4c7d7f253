//! Calling a driver through a daemon from the Rust client, for the
//! instrument drivers' tests.

use pyrolab_host::client::{ClientError, Proxy};
use pyrolab_plugin_api::{CallArgs, Value};

/// `method(*args)` on `proxy`.
pub fn call(proxy: &Proxy, method: &str, args: Vec<Value>) -> Result<Value, ClientError> {
    proxy.call_with(method, CallArgs::positional(args))
}

/// The remote exception's class and message; anything else fails the test.
pub fn remote(result: Result<Value, ClientError>) -> (String, String) {
    match result {
        Err(ClientError::Remote(error)) => (error.kind().to_owned(), error.message.clone()),
        other => panic!("expected a remote exception, got {other:?}"),
    }
}
