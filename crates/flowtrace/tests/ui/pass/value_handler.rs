// The generated `main` is type-checked here but not run: it would need a Lambda runtime.
#[allow(dead_code)]
mod function {
    use lambda_runtime::{Error, LambdaEvent};
    use serde_json::Value;

    #[flowtrace::main]
    async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
        Ok(event.payload)
    }
}

fn main() {}
