package io.executiongateway.examples;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import io.executiongateway.execution.v1.CancelOrderRequest;
import io.executiongateway.execution.v1.ExecutionServiceGrpc;
import io.executiongateway.execution.v1.ExecutionServiceGrpc.ExecutionServiceBlockingStub;
import io.executiongateway.execution.v1.Order;
import io.executiongateway.execution.v1.OrderStatus;
import io.executiongateway.execution.v1.OrderType;
import io.executiongateway.execution.v1.OrderUpdate;
import io.executiongateway.execution.v1.PlaceOrderRequest;
import io.executiongateway.execution.v1.ReplaceOrderRequest;
import io.executiongateway.execution.v1.Side;
import io.executiongateway.execution.v1.SubscribeUpdatesRequest;
import io.executiongateway.execution.v1.SubscribeUpdatesResponse;
import io.executiongateway.execution.v1.TimeInForce;
import io.executiongateway.execution.v1.UpdateKind;
import io.grpc.CallCredentials;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.protobuf.StatusProto;
import java.util.Iterator;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * A small trading strategy against the execution gateway.
 *
 * <p>It connects with a bearer token, subscribes to its account's updates, rests a buy limit far
 * below the market and amends it (ReplaceOrder: a new quantity and price), sends a market order,
 * follows the stream until the market order is FILLED and the amend is confirmed (an update of
 * kind REPLACED), cancels the limit order while disconnected, and resumes the stream from the last
 * sequence it processed to see the cancel arrive: no update is lost in between.
 */
public final class Strategy {
  private static final long CALL_DEADLINE_SECONDS = 10;
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final ExecutionServiceBlockingStub stub;
  private final String account;
  private final String symbol;

  private Strategy(ExecutionServiceBlockingStub stub, String account, String symbol) {
    this.stub = stub;
    this.account = account;
    this.symbol = symbol;
  }

  /** Sends "authorization: Bearer &lt;token&gt;" with every call. */
  private static final class BearerToken extends CallCredentials {
    private final String token;

    BearerToken(String token) {
      this.token = token;
    }

    @Override
    public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + token);
      applier.apply(headers);
    }
  }

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = Flags.parse(argv);
    String target = args.getOrDefault("target", "127.0.0.1:50051");
    String token = args.getOrDefault("token", System.getenv().getOrDefault("GATEWAY_TOKEN", ""));
    boolean tls = Boolean.parseBoolean(args.getOrDefault("tls", "false"));

    ManagedChannel channel =
        Grpc.newChannelBuilder(
                target,
                tls ? TlsChannelCredentials.create() : InsecureChannelCredentials.create())
            .build();
    try {
      ExecutionServiceBlockingStub stub = ExecutionServiceGrpc.newBlockingStub(channel);
      if (!token.isEmpty()) {
        stub = stub.withCallCredentials(new BearerToken(token));
      }
      String account = args.getOrDefault("account", "acct-1");
      new Strategy(stub, account, args.getOrDefault("symbol", "AAPL")).run();
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private void run() throws Exception {
    // Subscribe before trading, so that no update of our orders is missed. The
    // stream runs in a cancellable context: cancelling it is our "disconnect".
    Context.CancellableContext live = Context.current().withCancellation();
    Iterator<SubscribeUpdatesResponse> updates =
        live.call(() -> stub.subscribeUpdates(
            SubscribeUpdatesRequest.newBuilder().addAccounts(account).build()));
    updates.next(); // the gateway's first message (a heartbeat): the subscription is live

    Order limit =
        place(
            PlaceOrderRequest.newBuilder()
                .setOrderType(OrderType.ORDER_TYPE_LIMIT)
                .setQuantity("5")
                .setLimitPrice("0.01") // far below the market: it rests until cancelled
                .setTimeInForce(TimeInForce.TIME_IN_FORCE_GTC));
    log("limit order %s is %s", limit.getOrderId(), limit.getStatus());

    // Amend it: a new total quantity and price (still far below the market). The answer is
    // PENDING_REPLACE; the outcome arrives on the stream. Retries reuse the replace_id, so the
    // broker sees one amend.
    ReplaceOrderRequest replace =
        ReplaceOrderRequest.newBuilder()
            .setAccount(account)
            .setOrderId(limit.getOrderId())
            .setReplaceId("java-" + UUID.randomUUID())
            .setQuantity("6")
            .setLimitPrice("0.02")
            .build();
    Order pending = retryUnknownOutcome(() -> withDeadline().replaceOrder(replace).getOrder());
    log("replace %s: %s", pending.getReplaceId(), pending.getStatus());

    Order market =
        place(
            PlaceOrderRequest.newBuilder()
                .setOrderType(OrderType.ORDER_TYPE_MARKET)
                .setQuantity("10")
                .setTimeInForce(TimeInForce.TIME_IN_FORCE_DAY));
    log("market order %s is %s", market.getOrderId(), market.getStatus());

    // Follow the stream until the market order has filled and the amend is settled, in either
    // order; the later of the two is the last update processed.
    OrderUpdate[] filled = new OrderUpdate[1];
    OrderUpdate[] amended = new OrderUpdate[1];
    OrderUpdate last =
        follow(updates, "", 0, update -> {
          Order order = update.getOrder();
          if (order.getOrderId().equals(market.getOrderId())
              && order.getStatus() == OrderStatus.ORDER_STATUS_FILLED) {
            filled[0] = update;
          }
          if (order.getOrderId().equals(limit.getOrderId())
              && (update.getKind() == UpdateKind.UPDATE_KIND_REPLACED
                  || update.getKind() == UpdateKind.UPDATE_KIND_REPLACE_REJECTED)) {
            amended[0] = update;
          }
          return filled[0] != null && amended[0] != null;
        });
    if (amended[0].getKind() == UpdateKind.UPDATE_KIND_REPLACE_REJECTED) {
      throw new IllegalStateException(
          "the broker refused the amend: " + amended[0].getOrder().getRejectReason());
    }
    long lastSequence = last.getSequence();
    live.cancel(null); // disconnect: what happens next must not be lost

    // A filled order cannot be cancelled: the error's details say why.
    try {
      withDeadline().cancelOrder(
          CancelOrderRequest.newBuilder().setAccount(account).setOrderId(market.getOrderId()).build());
    } catch (StatusRuntimeException e) {
      log("cancel of the filled order: %s (reason %s)", e.getStatus().getCode(), reason(e));
    }
    Order cancelling =
        withDeadline()
            .cancelOrder(
                CancelOrderRequest.newBuilder()
                    .setAccount(account)
                    .setClientOrderId(limit.getClientOrderId())
                    .build())
            .getOrder();
    log("cancel requested: %s is %s", cancelling.getOrderId(), cancelling.getStatus());

    // Resume after the last sequence processed: the cancel's updates arrive.
    Context.CancellableContext resumedContext = Context.current().withCancellation();
    try {
      Iterator<SubscribeUpdatesResponse> resumed =
          resumedContext.call(() -> stub.subscribeUpdates(
              SubscribeUpdatesRequest.newBuilder()
                  .addAccounts(account)
                  .setAfterSequence(lastSequence)
                  .build()));
      follow(resumed, " (resumed)", lastSequence,
          update -> update.getOrder().getOrderId().equals(limit.getOrderId())
              && update.getOrder().getStatus() == OrderStatus.ORDER_STATUS_CANCELED);
    } finally {
      resumedContext.cancel(null);
    }

    Order done = filled[0].getOrder();
    Order terms = amended[0].getOrder();
    System.out.printf(
        "strategy done: market order %s FILLED %s @ %s; limit order %s REPLACED %s @ %s, then"
            + " CANCELED; resumed after sequence %d%n",
        done.getOrderId(), done.getFilledQuantity(), done.getAverageFillPrice(), limit.getOrderId(),
        terms.getQuantity(), terms.getLimitPrice(), lastSequence);
  }

  private ExecutionServiceBlockingStub withDeadline() {
    return stub.withDeadlineAfter(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS);
  }

  /** Places an order, retrying with the same client_order_id while the outcome is unknown. */
  private Order place(PlaceOrderRequest.Builder order) {
    PlaceOrderRequest request =
        order
            .setAccount(account)
            .setSymbol(symbol)
            .setSide(Side.SIDE_BUY)
            .setClientOrderId("java-" + UUID.randomUUID())
            .build();
    return retryUnknownOutcome(() -> withDeadline().placeOrder(request).getOrder());
  }

  /** Runs an idempotent call (same request, same key), again while its outcome is unknown. */
  private static <T> T retryUnknownOutcome(Supplier<T> call) {
    for (int attempt = 1; ; attempt++) {
      try {
        return call.get();
      } catch (StatusRuntimeException e) {
        Status.Code code = e.getStatus().getCode();
        boolean unknownOutcome =
            code == Status.Code.UNAVAILABLE || code == Status.Code.DEADLINE_EXCEEDED;
        if (!unknownOutcome || attempt == 5) {
          throw e;
        }
        sleep(200L * attempt);
      }
    }
  }

  /** Reads order updates until one satisfies {@code done}; sequences must only grow. */
  private static OrderUpdate follow(
      Iterator<SubscribeUpdatesResponse> stream, String label, long after,
      Predicate<OrderUpdate> done) {
    while (stream.hasNext()) {
      SubscribeUpdatesResponse message = stream.next();
      if (!message.hasUpdate()) {
        continue; // a heartbeat, or a position or trading-state change
      }
      OrderUpdate update = message.getUpdate();
      if (update.getSequence() <= after) {
        throw new IllegalStateException(
            "sequence " + update.getSequence() + " repeated after " + after);
      }
      after = update.getSequence();
      Order order = update.getOrder();
      if (update.hasFill()) {
        log("#%d%s fill %s %s @ %s (%s)", after, label, order.getOrderId(),
            update.getFill().getQuantity(), update.getFill().getPrice(), update.getFill().getExecId());
      } else {
        log("#%d%s %s %s (%s)", after, label, order.getOrderId(), order.getStatus(),
            update.getKind());
      }
      if (done.test(update)) {
        return update;
      }
    }
    throw new IllegalStateException("update stream ended early");
  }

  /** The google.rpc.ErrorInfo reason a gateway error carries. */
  private static String reason(StatusRuntimeException e) {
    com.google.rpc.Status status = StatusProto.fromThrowable(e);
    if (status != null) {
      for (com.google.protobuf.Any detail : status.getDetailsList()) {
        if (detail.is(ErrorInfo.class)) {
          try {
            return detail.unpack(ErrorInfo.class).getReason();
          } catch (InvalidProtocolBufferException ignored) {
            return "unreadable";
          }
        }
      }
    }
    return "none";
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static void log(String format, Object... values) {
    System.err.printf(format + "%n", values);
  }

  /** "-name value" command-line flags. */
  private static final class Flags {
    static Map<String, String> parse(String[] argv) {
      Map<String, String> flags = new java.util.HashMap<>();
      for (int i = 0; i + 1 < argv.length; i += 2) {
        flags.put(argv[i].replaceFirst("^-+", ""), argv[i + 1]);
      }
      return flags;
    }
  }
}
