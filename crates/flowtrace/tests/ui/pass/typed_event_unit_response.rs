#[allow(dead_code)]
mod function {
    use aws_lambda_events::event::sqs::SqsEvent;
    use lambda_runtime::{Error, LambdaEvent};

    #[flowtrace::main]
    async fn process(event: LambdaEvent<SqsEvent>) -> Result<(), Error> {
        for record in event.payload.records {
            let _ = record.body;
        }
        Ok(())
    }
}

fn main() {}
