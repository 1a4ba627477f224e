use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[flowtrace::main(concurrent)]
async fn handler(event: LambdaEvent<Value>) -> Result<(), Error> {
    let _ = event;
    Ok(())
}
