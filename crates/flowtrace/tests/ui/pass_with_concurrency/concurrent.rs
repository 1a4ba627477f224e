#[allow(dead_code)]
mod function {
    use lambda_runtime::{Error, LambdaEvent};
    use serde_json::Value;

    #[flowtrace::main(concurrent)]
    async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
        Ok(event.payload)
    }
}

fn main() {}
