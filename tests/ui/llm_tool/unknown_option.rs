use harness_core::llm_tool;
use harness_core::tools::ToolFailure;

/// Looks up an order.
#[llm_tool(scope = "orders:read", idempotnet)]
async fn lookup_order(order_id: String) -> Result<String, ToolFailure> {
    Ok(order_id)
}

fn main() {}
