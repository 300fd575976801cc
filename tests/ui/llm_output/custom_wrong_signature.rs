use harness_core::prelude::*;

fn weekday(day: &u32) -> Result<(), String> {
    if *day < 7 { Ok(()) } else { Err("must be a weekday".into()) }
}

#[derive(Debug, LlmOutput)]
struct Answer {
    #[llm(custom = weekday)]
    day: String,
}

fn main() {}
