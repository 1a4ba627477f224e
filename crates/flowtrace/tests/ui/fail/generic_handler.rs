use lambda_runtime::{Error, LambdaEvent};

#[flowtrace::main]
async fn handler<T>(event: LambdaEvent<T>) -> Result<(), Error> {
    let _ = event;
    Ok(())
}
