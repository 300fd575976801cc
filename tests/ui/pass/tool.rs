use harness_core::llm_tool;
use harness_core::tools::{Tool, ToolFailure};

#[derive(serde::Serialize)]
pub struct Order {
    status: String,
}

/// Looks up an order by its id.
#[llm_tool(scope = "orders:read", rate = "10/min", idempotent, timeout = "5s", errors = ["not_found"])]
pub async fn lookup_order(
    /// The order's id, such as `A-17`.
    order_id: String,
    /// Include the line items.
    details: Option<bool>,
) -> Result<Order, ToolFailure> {
    let _ = details;
    if order_id.is_empty() {
        return Err(ToolFailure::new("not_found", "no such order"));
    }
    Ok(Order { status: "shipped".into() })
}

/// Refunds an order to a payee the user named.
#[llm_tool(scope = "orders:write", approval, name = "refund_order")]
fn refund(order_id: String, #[llm(trusted)] payee: String, cents: u32) -> Result<u32, ToolFailure> {
    let _ = (order_id, payee);
    Ok(cents)
}

fn main() {
    let spec = lookup_order::spec();
    assert_eq!(spec.name, "lookup_order");
    assert!(spec.idempotent && !spec.approval);
    let refund_spec = refund::tool().spec();
    assert_eq!(refund_spec.name, "refund_order");
    assert_eq!(refund_spec.trusted, ["payee"]);
}
