use harness_core::llm_tool;
use harness_core::tools::ToolFailure;

/// Deletes an account.
#[llm_tool(approval)]
async fn delete_account(account_id: String) -> Result<(), ToolFailure> {
    let _ = account_id;
    Ok(())
}

fn main() {}
