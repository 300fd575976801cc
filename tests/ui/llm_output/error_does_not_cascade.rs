use harness_core::prelude::*;

// The derive fails, but the task returning the type reports nothing more.
#[derive(Debug, LlmOutput)]
struct Ticket {
    #[llm(lenght(max = 10))]
    id: String,
}

#[llm_task(
    prompt = "Open a ticket for {issue}",
    on_timeout = retry(2),
    on_rate_limited = retry(5),
    on_provider_error = retry(2).then(fail),
    on_invalid_output = reask(2).then(fail),
    on_refusal = escalate,
)]
async fn open(issue: &str) -> TaskResult<Ticket>;

fn main() {
    let _ = open("x");
}
