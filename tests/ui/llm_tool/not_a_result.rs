use harness_core::llm_tool;

/// Looks up an order.
#[llm_tool(scope = "orders:read")]
async fn lookup_order(order_id: String) -> String {
    order_id
}

fn main() {}
