use lambda_runtime::Error;

#[flowtrace::main]
async fn handler() -> Result<(), Error> {
    Ok(())
}
