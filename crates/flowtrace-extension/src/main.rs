//! The flowtrace Lambda extension binary: reads the environment, runs until SHUTDOWN.

use std::process::ExitCode;

use flowtrace_extension::config::Config;

fn main() -> ExitCode {
    let config = Config::from_env();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            flowtrace_extension::log!(Error, "cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(flowtrace_extension::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            flowtrace_extension::log!(Error, "{error}");
            ExitCode::FAILURE
        }
    }
}
