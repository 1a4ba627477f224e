use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[flowtrace::main]
fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}
