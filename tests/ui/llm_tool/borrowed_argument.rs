use harness_core::llm_tool;
use harness_core::tools::ToolFailure;

/// Looks up an order.
#[llm_tool(scope = "orders:read")]
async fn lookup_order(order_id: &str) -> Result<String, ToolFailure> {
    Ok(order_id.to_owned())
}

fn main() {}
