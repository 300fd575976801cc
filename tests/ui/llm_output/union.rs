use harness_core::prelude::*;

#[derive(LlmOutput)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}
