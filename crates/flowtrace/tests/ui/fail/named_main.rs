use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[flowtrace::main]
async fn main(event: LambdaEvent<Value>) -> Result<(), Error> {
    let _ = event;
    Ok(())
}
