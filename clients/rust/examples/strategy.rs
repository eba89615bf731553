//! A small trading strategy against the execution gateway.
//!
//! It connects with a bearer token, subscribes to its account's updates, rests a
//! buy limit far below the market and amends it (ReplaceOrder: a new quantity
//! and price), sends a market order, follows the stream until the market order
//! is FILLED and the amend is confirmed (an update of kind REPLACED), cancels
//! the limit order while disconnected, and resumes the stream from the last
//! sequence it processed to see the cancel arrive: no update is lost in between.
//!
//! ```sh
//! cargo run --example strategy -- --target 127.0.0.1:50051 --account acct-1 --token "$TOKEN"
//! ```

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use execution_gateway_client::execution::v1::{
    CancelOrderRequest, Order, OrderStatus, OrderType, OrderUpdate, PlaceOrderRequest,
    ReplaceOrderRequest, Side, SubscribeUpdatesRequest, SubscribeUpdatesResponse, TimeInForce,
    UpdateKind, cancel_order_request::OrderRef, execution_service_client::ExecutionServiceClient,
    replace_order_request, subscribe_updates_response::Event,
};
use tokio::time;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::{Interceptor, interceptor::InterceptedService};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status, Streaming};
use tonic_types::StatusExt;

/// Every unary call gets this long; the gateway learns it from `grpc-timeout`.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `place` (or `replace`) sends a request whose outcome stays unknown.
const PLACE_ATTEMPTS: u32 = 5;

const USAGE: &str = "\
usage: strategy [--target HOST:PORT] [--account ACCOUNT] [--symbol SYMBOL]
                [--token TOKEN] [--tls] [--timeout SECONDS]

  --target   gateway address (default 127.0.0.1:50051)
  --account  trading account (default acct-1)
  --symbol   instrument (default AAPL)
  --token    bearer token (default $GATEWAY_TOKEN)
  --tls      connect with TLS, trusting the system's root certificates
  --timeout  give up after this many seconds (default 60)";

/// The client as the strategy uses it: every call carries the bearer token.
type Client = ExecutionServiceClient<InterceptedService<Channel, BearerToken>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse(std::env::args().skip(1))?;
    // One deadline for the whole run, like a strategy's session: whatever is in
    // flight when it passes (a call, a stream, a back-off) is abandoned.
    time::timeout(args.timeout, run(&args))
        .await
        .with_context(|| format!("strategy gave up after {:?}", args.timeout))?
        .context("strategy failed")
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let mut client = connect(args).await?;
    let account = &args.account;

    // Subscribe before trading, so that no update of our orders is missed.
    let mut stream = client
        .subscribe_updates(SubscribeUpdatesRequest {
            accounts: vec![account.clone()],
            ..Default::default()
        })
        .await
        .map_err(RpcError)
        .context("subscribe")?
        .into_inner();
    // The gateway's first message (a heartbeat) says the subscription is live.
    stream
        .message()
        .await
        .map_err(RpcError)
        .context("subscribe")?
        .context("subscribe: the stream ended at once")?;

    let limit = place(
        &mut client,
        PlaceOrderRequest {
            account: account.clone(),
            symbol: args.symbol.clone(),
            side: Side::Buy.into(),
            order_type: OrderType::Limit.into(),
            quantity: "5".into(),
            limit_price: "0.01".into(), // far below the market: it rests until cancelled
            time_in_force: TimeInForce::Gtc.into(),
            ..Default::default()
        },
    )
    .await?;
    eprintln!(
        "limit order {} is {}",
        limit.order_id,
        limit.status().as_str_name()
    );

    // Amend it: a new total quantity and price (still far below the market).
    // The answer is PENDING_REPLACE; the outcome arrives on the stream.
    let pending = replace(
        &mut client,
        ReplaceOrderRequest {
            account: account.clone(),
            order_ref: Some(replace_order_request::OrderRef::OrderId(
                limit.order_id.clone(),
            )),
            quantity: "6".into(),
            limit_price: "0.02".into(),
            ..Default::default()
        },
    )
    .await?;
    eprintln!(
        "replace {}: {}",
        pending.replace_id,
        pending.status().as_str_name()
    );

    let market = place(
        &mut client,
        PlaceOrderRequest {
            account: account.clone(),
            symbol: args.symbol.clone(),
            side: Side::Buy.into(),
            order_type: OrderType::Market.into(),
            quantity: "10".into(),
            time_in_force: TimeInForce::Day.into(),
            ..Default::default()
        },
    )
    .await?;
    eprintln!(
        "market order {} is {}",
        market.order_id,
        market.status().as_str_name()
    );

    // Follow the stream until the market order has filled completely and the
    // amend is settled, in either order: the later is the last update processed.
    let (mut filled, mut amended) = (None, None);
    let (filled, amended, last_sequence) = loop {
        let (update, order) = next_update(&mut stream)
            .await
            .context("update stream, before the market order filled")?;
        let sequence = update.sequence;
        match &update.fill {
            Some(fill) => eprintln!(
                "#{sequence} fill {} {} @ {} ({})",
                order.order_id, fill.quantity, fill.price, fill.exec_id
            ),
            None => eprintln!(
                "#{sequence} {} {} ({})",
                order.order_id,
                order.status().as_str_name(),
                update.kind().as_str_name()
            ),
        }
        if order.order_id == limit.order_id {
            match update.kind() {
                UpdateKind::Replaced => amended = Some(order.clone()),
                UpdateKind::ReplaceRejected => {
                    bail!("the broker refused the amend: {}", order.reject_reason)
                }
                _ => {}
            }
        }
        if order.order_id == market.order_id && order.status() == OrderStatus::Filled {
            filled = Some(order);
        }
        if let (Some(filled), Some(amended)) = (&filled, &amended) {
            break (filled.clone(), amended.clone(), sequence);
        }
    };
    drop(stream); // disconnect: what happens next must not be lost

    // A filled order cannot be cancelled: the error says why, in its details.
    match client
        .cancel_order(cancel(account, OrderRef::OrderId(market.order_id.clone())))
        .await
    {
        Ok(_) => eprintln!("cancel of the filled order: accepted?!"),
        Err(status) => eprintln!("cancel of the filled order: {}", RpcError(status)),
    }

    let cancelled = client
        .cancel_order(cancel(
            account,
            OrderRef::ClientOrderId(limit.client_order_id.clone()),
        ))
        .await
        .map_err(RpcError)
        .context("cancel")?
        .into_inner()
        .order
        .context("cancel answered without the order")?;
    eprintln!(
        "cancel requested: {} is {}",
        cancelled.order_id,
        cancelled.status().as_str_name()
    );

    // Resume after the last sequence processed: the cancel's updates arrive.
    let mut resumed = client
        .subscribe_updates(SubscribeUpdatesRequest {
            accounts: vec![account.clone()],
            after_sequence: Some(last_sequence),
            ..Default::default()
        })
        .await
        .map_err(RpcError)
        .context("resume")?
        .into_inner();
    loop {
        let (update, order) = next_update(&mut resumed)
            .await
            .context("resumed stream, before the cancel arrived")?;
        if update.sequence <= last_sequence {
            bail!(
                "resume replayed sequence {}, not after {last_sequence}",
                update.sequence
            );
        }
        eprintln!(
            "#{} (resumed) {} {}",
            update.sequence,
            order.order_id,
            order.status().as_str_name()
        );
        if order.order_id == limit.order_id && order.status() == OrderStatus::Canceled {
            break;
        }
    }

    println!(
        "strategy done: market order {} FILLED {} @ {}; limit order {} REPLACED {} @ {}, then CANCELED; resumed after sequence {last_sequence}",
        filled.order_id,
        filled.filled_quantity,
        filled.average_fill_price,
        limit.order_id,
        amended.quantity,
        amended.limit_price
    );
    Ok(())
}

async fn connect(args: &Args) -> anyhow::Result<Client> {
    let scheme = if args.tls { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", args.target))
        .with_context(|| format!("bad --target {:?}", args.target))?
        .connect_timeout(Duration::from_secs(5));
    if args.tls {
        endpoint = with_tls(endpoint)?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("connect to {}", args.target))?;
    let token = match &args.token {
        Some(token) => Some(
            format!("Bearer {token}")
                .parse()
                .context("the token must be printable ASCII")?,
        ),
        None => None,
    };
    Ok(ExecutionServiceClient::with_interceptor(
        channel,
        BearerToken(token),
    ))
}

#[cfg(feature = "tls")]
fn with_tls(endpoint: Endpoint) -> anyhow::Result<Endpoint> {
    use tonic::transport::ClientTlsConfig;
    Ok(endpoint.tls_config(ClientTlsConfig::new().with_native_roots())?)
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: Endpoint) -> anyhow::Result<Endpoint> {
    // Built with default-features = false: plaintext only.
    bail!("--tls needs the crate's `tls` feature (on by default)")
}

/// Sends "authorization: Bearer <token>" with every call. A loopback gateway
/// without authentication ignores it; without a token nothing is sent.
#[derive(Clone)]
struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Sends an order with a fresh `client_order_id` and retries it, with the same
/// id, while the outcome is unknown: the gateway places it once.
async fn place(client: &mut Client, mut order: PlaceOrderRequest) -> anyhow::Result<Order> {
    order.client_order_id = new_client_order_id()?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = Request::new(order.clone());
        request.set_timeout(CALL_TIMEOUT);
        let status = match client.place_order(request).await {
            Ok(response) => {
                return response
                    .into_inner()
                    .order
                    .context("PlaceOrder answered without the order");
            }
            Err(status) => status,
        };
        if !unknown_outcome(&status) || attempt == PLACE_ATTEMPTS {
            return Err(RpcError(status))
                .with_context(|| format!("place {}", order.client_order_id));
        }
        eprintln!(
            "place {}: {}; retrying",
            order.client_order_id,
            RpcError(status)
        );
        time::sleep(Duration::from_millis(200) * attempt).await;
    }
}

/// Amends an order under a fresh `replace_id` and retries it, with the same id,
/// while the outcome is unknown: the broker sees one amend.
async fn replace(client: &mut Client, mut amend: ReplaceOrderRequest) -> anyhow::Result<Order> {
    amend.replace_id = new_client_order_id()?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = Request::new(amend.clone());
        request.set_timeout(CALL_TIMEOUT);
        let status = match client.replace_order(request).await {
            Ok(response) => {
                return response
                    .into_inner()
                    .order
                    .context("ReplaceOrder answered without the order");
            }
            Err(status) => status,
        };
        if !unknown_outcome(&status) || attempt == PLACE_ATTEMPTS {
            return Err(RpcError(status)).with_context(|| format!("replace {}", amend.replace_id));
        }
        eprintln!(
            "replace {}: {}; retrying",
            amend.replace_id,
            RpcError(status)
        );
        time::sleep(Duration::from_millis(200) * attempt).await;
    }
}

/// Whether a failed call may have taken effect: UNAVAILABLE (the call may not
/// have arrived), DEADLINE_EXCEEDED and CANCELLED (what tonic reports when it
/// enforces the deadline itself: the answer did not arrive). Retry it with the
/// same key.
fn unknown_outcome(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
    )
}

/// The next order change on an update stream, with the order as of it.
async fn next_update(
    stream: &mut Streaming<SubscribeUpdatesResponse>,
) -> anyhow::Result<(OrderUpdate, Order)> {
    loop {
        let message = stream
            .message()
            .await
            .map_err(RpcError)?
            .context("the stream ended")?;
        if let Some(Event::Update(mut update)) = message.event {
            let order = update.order.take().context("an update without its order")?;
            return Ok((update, order));
        }
        // Otherwise a heartbeat (the stream is alive and nothing changed), or a
        // position or trading-state change, which this strategy does not follow.
    }
}

fn cancel(account: &str, order_ref: OrderRef) -> CancelOrderRequest {
    CancelOrderRequest {
        account: account.to_owned(),
        order_ref: Some(order_ref),
    }
}

/// A `client_order_id`: unique within the account for good, so random, not a counter.
fn new_client_order_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).context("no randomness for a client_order_id")?;
    Ok(bytes
        .iter()
        .fold(String::from("rs-"), |id, byte| id + &format!("{byte:02x}")))
}

/// A gateway error as a strategy reads it: the gRPC code, the message, and the
/// `google.rpc` details from `grpc-status-details-bin` (`ErrorInfo.reason`, a
/// stable machine-readable name, and `BadRequest` field violations).
#[derive(Debug)]
struct RpcError(Status);

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.0.code(), self.0.message())?;
        let details = self.0.get_error_details();
        if let Some(info) = details.error_info() {
            write!(f, " (reason {})", info.reason)?;
        }
        if let Some(bad_request) = details.bad_request() {
            for violation in &bad_request.field_violations {
                write!(f, " [{}: {}]", violation.field, violation.description)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// Command-line flags, parsed by hand: five flags do not need a parser crate.
struct Args {
    target: String,
    account: String,
    symbol: String,
    token: Option<String>,
    tls: bool,
    timeout: Duration,
}

impl Args {
    fn parse(mut flags: impl Iterator<Item = String>) -> anyhow::Result<Self> {
        let mut args = Args {
            target: "127.0.0.1:50051".into(),
            account: "acct-1".into(),
            symbol: "AAPL".into(),
            token: std::env::var("GATEWAY_TOKEN").ok(),
            tls: false,
            timeout: Duration::from_secs(60),
        };
        while let Some(flag) = flags.next() {
            // Both "--flag value" and "--flag=value".
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (flag, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| flags.next())
                    .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
            };
            match name.as_str() {
                "--target" => args.target = value()?,
                "--account" => args.account = value()?,
                "--symbol" => args.symbol = value()?,
                "--token" => args.token = Some(value()?),
                "--timeout" => {
                    let seconds = value()?;
                    let seconds: u64 = seconds
                        .parse()
                        .with_context(|| format!("--timeout {seconds:?} is not whole seconds"))?;
                    args.timeout = Duration::from_secs(seconds);
                }
                "--tls" => args.tls = true,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => bail!("unknown flag {name:?}\n\n{USAGE}"),
            }
        }
        // An empty token (GATEWAY_TOKEN= or --token "") means none.
        args.token = args.token.filter(|token| !token.is_empty());
        Ok(args)
    }
}
