/**
 * A small trading strategy against the execution gateway, on Node with @grpc/grpc-js.
 *
 * It connects with a bearer token, subscribes to its account's updates, rests a
 * buy limit far below the market and amends it (ReplaceOrder: a new quantity and
 * price), sends a market order, follows the stream until the market order is
 * FILLED and the amend is confirmed (an update of kind REPLACED), cancels the
 * limit order while disconnected, and resumes the stream from the last sequence
 * it processed to see the cancel arrive: no update is lost in between.
 *
 *   npm run strategy -- --target 127.0.0.1:50051 --account acct-1 --token "$TOKEN"
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import {
  type CallOptions,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import {
  ExecutionServiceClient,
  type Order,
  OrderStatus,
  orderStatusToJSON,
  OrderType,
  type OrderUpdate,
  type PlaceOrderRequest,
  type ReplaceOrderRequest,
  Side,
  type SubscribeUpdatesResponse,
  TimeInForce,
  UpdateKind,
  updateKindToJSON,
} from "../gen/execution/v1/execution";
import { errorReason } from "./errors";

const CALL_DEADLINE_MS = 10_000;

const { values: args } = parseArgs({
  options: {
    target: { type: "string", default: "127.0.0.1:50051" },
    account: { type: "string", default: "acct-1" },
    symbol: { type: "string", default: "AAPL" },
    token: { type: "string", default: process.env.GATEWAY_TOKEN ?? "" },
    tls: { type: "boolean", default: false },
  },
});

/** Call metadata: the bearer token, when there is one. */
function authMetadata(token: string): Metadata {
  const metadata = new Metadata();
  if (token) metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/** Run one unary call as a promise, with a deadline. */
function unary<Req, Res>(method: Unary<Req, Res>, request: Req, metadata: Metadata): Promise<Res> {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + CALL_DEADLINE_MS);
    method(request, metadata, { deadline }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

function isServiceError(error: unknown): error is ServiceError {
  return typeof error === "object" && error !== null && "code" in error && "metadata" in error;
}

/** Place an order, retrying with the same client_order_id while the outcome is unknown. */
async function place(
  client: ExecutionServiceClient,
  metadata: Metadata,
  order: Omit<PlaceOrderRequest, "clientOrderId">,
): Promise<Order> {
  const request: PlaceOrderRequest = { ...order, clientOrderId: `ts-${randomUUID()}` };
  return retryUnknownOutcome(() => unary(client.placeOrder.bind(client), request, metadata));
}

/** Amend an order, retrying with the same replace_id while the outcome is unknown. */
async function replace(
  client: ExecutionServiceClient,
  metadata: Metadata,
  amend: Omit<ReplaceOrderRequest, "replaceId">,
): Promise<Order> {
  const request: ReplaceOrderRequest = { ...amend, replaceId: `ts-${randomUUID()}` };
  return retryUnknownOutcome(() => unary(client.replaceOrder.bind(client), request, metadata));
}

/** Run an idempotent call (same request, same key) again while its outcome is unknown. */
async function retryUnknownOutcome(
  call: () => Promise<{ order?: Order | undefined }>,
): Promise<Order> {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await call();
      return response.order!;
    } catch (error) {
      const retryable =
        isServiceError(error) &&
        (error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED);
      if (!retryable || attempt === 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, attempt * 200));
    }
  }
}

/** Read order updates from a stream until `done` says so; return the last sequence seen. */
async function follow(
  stream: AsyncIterable<SubscribeUpdatesResponse>,
  label: string,
  done: (update: OrderUpdate & { order: Order }) => boolean,
  afterSequence = 0n,
): Promise<bigint> {
  for await (const message of stream) {
    const update = message.update;
    if (!update?.order) continue; // a heartbeat, or a position or trading-state change
    if (update.sequence <= afterSequence) {
      throw new Error(`sequence ${update.sequence} repeated after ${afterSequence}`);
    }
    afterSequence = update.sequence;
    const { order, fill } = update;
    const what = fill
      ? `fill ${fill.quantity} @ ${fill.price} (${fill.execId})`
      : `${orderStatusToJSON(order.status)} (${updateKindToJSON(update.kind)})`;
    console.error(`#${update.sequence}${label} ${order.orderId} ${what}`);
    if (done({ ...update, order })) return afterSequence;
  }
  throw new Error("update stream ended early");
}

async function main(): Promise<void> {
  const transport = args.tls ? credentials.createSsl() : credentials.createInsecure();
  const client = new ExecutionServiceClient(args.target, transport);
  const metadata = authMetadata(args.token);
  const account = args.account;

  // Subscribe before trading so that no update of our orders is missed; the
  // gateway's first message (a heartbeat) says the subscription is live.
  const live = client.subscribeUpdates({ accounts: [account], symbols: [], snapshot: false }, metadata);
  const updates = live[Symbol.asyncIterator]() as AsyncIterator<SubscribeUpdatesResponse>;
  await updates.next();

  const limit = await place(client, metadata, {
    account,
    symbol: args.symbol,
    side: Side.SIDE_BUY,
    orderType: OrderType.ORDER_TYPE_LIMIT,
    quantity: "5",
    limitPrice: "0.01", // far below the market: it rests until cancelled
    stopPrice: "",
    timeInForce: TimeInForce.TIME_IN_FORCE_GTC,
  });
  console.error(`limit order ${limit.orderId} is ${orderStatusToJSON(limit.status)}`);

  // Amend it: a new total quantity and price (still far below the market). The
  // answer is PENDING_REPLACE; the outcome arrives on the stream.
  const pending = await replace(client, metadata, {
    account,
    orderId: limit.orderId,
    quantity: "6",
    limitPrice: "0.02",
    stopPrice: "",
  });
  console.error(`replace ${pending.replaceId}: ${orderStatusToJSON(pending.status)}`);
  const market = await place(client, metadata, {
    account,
    symbol: args.symbol,
    side: Side.SIDE_BUY,
    orderType: OrderType.ORDER_TYPE_MARKET,
    quantity: "10",
    limitPrice: "",
    stopPrice: "",
    timeInForce: TimeInForce.TIME_IN_FORCE_DAY,
  });
  console.error(`market order ${market.orderId} is ${orderStatusToJSON(market.status)}`);

  // Until the market order has filled and the amend is settled, in either order.
  let filled: Order | undefined;
  let amended: Order | undefined;
  const stream = { [Symbol.asyncIterator]: () => updates };
  const lastSequence = await follow(stream, "", ({ order, kind }) => {
    if (order.orderId === market.orderId && order.status === OrderStatus.ORDER_STATUS_FILLED) {
      filled = order;
    }
    if (order.orderId === limit.orderId && kind === UpdateKind.UPDATE_KIND_REPLACE_REJECTED) {
      throw new Error(`the broker refused the amend: ${order.rejectReason}`);
    }
    if (order.orderId === limit.orderId && kind === UpdateKind.UPDATE_KIND_REPLACED) {
      amended = order;
    }
    return filled !== undefined && amended !== undefined;
  });
  live.cancel(); // disconnect: what happens next must not be lost

  // A filled order cannot be cancelled: FAILED_PRECONDITION, and the ErrorInfo says why.
  try {
    await unary(client.cancelOrder.bind(client), { account, orderId: market.orderId }, metadata);
  } catch (error) {
    if (!isServiceError(error) || error.code !== status.FAILED_PRECONDITION) throw error;
    const reason = errorReason(error);
    if (reason !== "ORDER_ALREADY_TERMINAL") throw error;
    console.error(`cancel of the filled order: ${status[error.code]} (reason ${reason})`);
  }
  const cancel = await unary(
    client.cancelOrder.bind(client),
    { account, clientOrderId: limit.clientOrderId },
    metadata,
  );
  console.error(`cancel requested: ${limit.orderId} is ${orderStatusToJSON(cancel.order!.status)}`);

  // Resume after the last sequence processed: the cancel's updates arrive.
  const resumed = client.subscribeUpdates(
    { accounts: [account], symbols: [], afterSequence: lastSequence, snapshot: false },
    metadata,
  );
  await follow(
    resumed,
    " (resumed)",
    ({ order }) => order.orderId === limit.orderId && order.status === OrderStatus.ORDER_STATUS_CANCELED,
    lastSequence,
  );
  resumed.cancel();
  client.close();

  console.log(
    `strategy done: market order ${filled!.orderId} FILLED ${filled!.filledQuantity} @ ` +
      `${filled!.averageFillPrice}; limit order ${limit.orderId} REPLACED ` +
      `${amended!.quantity} @ ${amended!.limitPrice}, then CANCELED; ` +
      `resumed after sequence ${lastSequence}`,
  );
}

main().catch((error: unknown) => {
  console.error("strategy failed:", error);
  process.exit(1);
});
