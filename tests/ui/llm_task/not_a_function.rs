#[harness_core::llm_task(prompt = "hi")]
struct Nope;

fn main() {}
