use lambda_runtime::LambdaEvent;
use serde_json::Value;

#[flowtrace::main]
async fn handler(event: LambdaEvent<Value>) {
    let _ = event;
}
