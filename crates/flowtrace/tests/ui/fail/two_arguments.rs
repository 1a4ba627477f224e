use lambda_runtime::{Context, Error};
use serde_json::Value;

#[flowtrace::main]
async fn handler(event: Value, context: Context) -> Result<(), Error> {
    let _ = (event, context);
    Ok(())
}
