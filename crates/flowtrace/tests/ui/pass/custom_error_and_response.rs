#[allow(dead_code)]
mod function {
    use lambda_runtime::{Diagnostic, LambdaEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize)]
    struct Order {
        id: String,
    }

    #[derive(Serialize)]
    struct Receipt {
        id: String,
    }

    #[derive(Debug)]
    struct Declined;

    impl From<Declined> for Diagnostic {
        fn from(_: Declined) -> Self {
            Diagnostic { error_type: "Declined".into(), error_message: "card declined".into() }
        }
    }

    #[flowtrace::main]
    async fn checkout(event: LambdaEvent<Order>) -> Result<Receipt, Declined> {
        Ok(Receipt { id: event.payload.id })
    }
}

fn main() {}
