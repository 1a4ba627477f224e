use lambda_runtime::Error;
use serde_json::Value;

#[flowtrace::main]
async fn handler(event: Value) -> Result<(), Error> {
    let _ = event;
    Ok(())
}
