//! Rust client for the execution gateway.
//!
//! The messages and the tonic client are generated from
//! `protos/execution/v1/execution.proto` at build time by `build.rs` (protox and
//! tonic-prost-build, into `OUT_DIR`); nothing generated is committed. The proto
//! is the API's manual: every field is documented there, and
//! the same comments are on the generated types.
//!
//! ```no_run
//! use execution_gateway_client::execution::v1::{
//!     execution_service_client::ExecutionServiceClient, GetOrderStatusRequest,
//!     get_order_status_request::OrderRef,
//! };
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut client = ExecutionServiceClient::connect("http://127.0.0.1:50051").await?;
//! let response = client
//!     .get_order_status(GetOrderStatusRequest {
//!         account: "acct-1".into(),
//!         order_ref: Some(OrderRef::ClientOrderId("my-order-1".into())),
//!     })
//!     .await?;
//! println!("{:?}", response.into_inner().order);
//! # Ok(())
//! # }
//! ```

/// The `execution` proto package.
pub mod execution {
    /// `execution.v1`: the gateway's public API.
    // Generated code is prost's to shape: SubscribeUpdatesResponse's oneof
    // holds an OrderUpdate unboxed, as prost does for every oneof.
    #[allow(clippy::large_enum_variant)]
    pub mod v1 {
        // The messages and, in the same file, the client (see build.rs).
        include!(concat!(env!("OUT_DIR"), "/execution.v1.rs"));
    }
}
