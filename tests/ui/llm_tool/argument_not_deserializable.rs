use harness_core::llm_tool;
use harness_core::tools::ToolFailure;

/// A type that is neither `Deserialize` nor `JsonSchema`.
pub struct Handle(u64);

/// Closes a handle.
#[llm_tool(scope = "files:write")]
async fn close(handle: Handle) -> Result<(), ToolFailure> {
    let _ = handle.0;
    Ok(())
}

fn main() {}
