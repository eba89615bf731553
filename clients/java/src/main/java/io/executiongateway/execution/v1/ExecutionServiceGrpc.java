package io.executiongateway.execution.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * ExecutionService is the whole trading surface of the gateway.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class ExecutionServiceGrpc {

  private ExecutionServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "execution.v1.ExecutionService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.executiongateway.execution.v1.PlaceOrderRequest,
      io.executiongateway.execution.v1.PlaceOrderResponse> getPlaceOrderMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "PlaceOrder",
      requestType = io.executiongateway.execution.v1.PlaceOrderRequest.class,
      responseType = io.executiongateway.execution.v1.PlaceOrderResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.executiongateway.execution.v1.PlaceOrderRequest,
      io.executiongateway.execution.v1.PlaceOrderResponse> getPlaceOrderMethod() {
    io.grpc.MethodDescriptor<io.executiongateway.execution.v1.PlaceOrderRequest, io.executiongateway.execution.v1.PlaceOrderResponse> getPlaceOrderMethod;
    if ((getPlaceOrderMethod = ExecutionServiceGrpc.getPlaceOrderMethod) == null) {
      synchronized (ExecutionServiceGrpc.class) {
        if ((getPlaceOrderMethod = ExecutionServiceGrpc.getPlaceOrderMethod) == null) {
          ExecutionServiceGrpc.getPlaceOrderMethod = getPlaceOrderMethod =
              io.grpc.MethodDescriptor.<io.executiongateway.execution.v1.PlaceOrderRequest, io.executiongateway.execution.v1.PlaceOrderResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "PlaceOrder"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.executiongateway.execution.v1.PlaceOrderRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.executiongateway.execution.v1.PlaceOrderResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ExecutionServiceMethodDescriptorSupplier("PlaceOrder"))
              .build();
        }
      }
    }
    return getPlaceOrderMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.executiongateway.execution.v1.CancelOrderRequest,
      io.executiongateway.execution.v1.CancelOrderResponse> getCancelOrderMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CancelOrder",
      requestType = io.executiongateway.execution.v1.CancelOrderRequest.class,
      responseType = io.executiongateway.execution.v1.CancelOrderResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.executiongateway.execution.v1.CancelOrderRequest,
      io.executiongateway.execution.v1.CancelOrderResponse> getCancelOrderMethod() {
    io.grpc.MethodDescriptor<io.executiongateway.execution.v1.CancelOrderRequest, io.executiongateway.execution.v1.CancelOrderResponse> getCancelOrderMethod;
    if ((getCancelOrderMethod = ExecutionServiceGrpc.getCancelOrderMethod) == null) {
      synchronized (ExecutionServiceGrpc.class) {
        if ((getCancelOrderMethod = ExecutionServiceGrpc.getCancelOrderMethod) == null) {
          ExecutionServiceGrpc.getCancelOrderMethod = getCancelOrderMethod =
              io.grpc.MethodDescriptor.<io.executiongateway.execution.v1.CancelOrderRequest, io.executiongateway.execution.v1.CancelOrderResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CancelOrder"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.executiongateway.execution.v1.CancelOrderRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.executiongateway.execution.v1.CancelOrderResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ExecutionServiceMethodDescriptorSupplier("CancelOrder"))
              .build();
        }
      }
    }
    return getCancelOrderMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.executiongateway.execution.v1.GetOrderStatusRequest,
      io.executiongateway.execution.v1.GetOrderStatusResponse> getGetOrderStatusMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetOrderStatus",
      requestType = io.executiongateway.execution.v1.GetOrderStatusRequest.class,
      responseType = io.executiongateway.execution.v1.GetOrderStatusResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.executiongateway.execution.v1.GetOrderStatusRequest,
      io.executiongateway.execution.v1.GetOrderStatusResponse> getGetOrderStatusMethod() {
    io.grpc.MethodDescriptor<io.executiongateway.execution.v1.GetOrderStatusRequest, io.executiongateway.execution.v1.GetOrderStatusResponse> getGetOrderStatusMethod;
    if ((getGetOrderStatusMethod = ExecutionServiceGrpc.getGetOrderStatusMethod) == null) {
      synchronized (ExecutionServiceGrpc.class) {
        if ((getGetOrderStatusMethod = ExecutionServiceGrpc.getGetOrderStatusMethod) == null) {
          ExecutionServiceGrpc.getGetOrderStatusMethod = getGetOrderStatusMethod =
              io.grpc.MethodDescriptor.<io.executiongateway.execution.v1.GetOrderStatusRequest, io.executiongateway.execution.v1.GetOrderStatusResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetOrderStatus"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.executiongateway.execution.v1.GetOrderStatusRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.executiongateway.execution.v1.GetOrderStatusResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ExecutionServiceMethodDescriptorSupplier("GetOrderStatus"))
              .build();
        }
      }
    }
    return getGetOrderStatusMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.executiongateway.execution.v1.ListOrdersRequest,
      io.executiongateway.execution.v1.ListOrdersResponse> getListOrdersMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListOrders",
      requestType = io.executiongateway.execution.v1.ListOrdersRequest.class,
      responseType = io.executiongateway.execution.v1.ListOrdersResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.executiongateway.execution.v1.ListOrdersRequest,
      io.executiongateway.execution.v1.ListOrdersResponse> getListOrdersMethod() {
    io.grpc.MethodDescriptor<io.executiongateway.execution.v1.ListOrdersRequest, io.executiongateway.execution.v1.ListOrdersResponse> getListOrdersMethod;
    if ((getListOrdersMethod = ExecutionServiceGrpc.getListOrdersMethod) == null) {
      synchronized (ExecutionServiceGrpc.class) {
        if ((getListOrdersMethod = ExecutionServiceGrpc.getListOrdersMethod) == null) {
          ExecutionServiceGrpc.getListOrdersMethod = getListOrdersMethod =
              io.grpc.MethodDescriptor.<io.executiongateway.execution.v1.ListOrdersRequest, io.executiongateway.execution.v1.ListOrdersResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListOrders"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.executiongateway.execution.v1.ListOrdersRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.executiongateway.execution.v1.ListOrdersResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ExecutionServiceMethodDescriptorSupplier("ListOrders"))
              .build();
        }
      }
    }
    return getListOrdersMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.executiongateway.execution.v1.SubscribeUpdatesRequest,
      io.executiongateway.execution.v1.SubscribeUpdatesResponse> getSubscribeUpdatesMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "SubscribeUpdates",
      requestType = io.executiongateway.execution.v1.SubscribeUpdatesRequest.class,
      responseType = io.executiongateway.execution.v1.SubscribeUpdatesResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<io.executiongateway.execution.v1.SubscribeUpdatesRequest,
      io.executiongateway.execution.v1.SubscribeUpdatesResponse> getSubscribeUpdatesMethod() {
    io.grpc.MethodDescriptor<io.executiongateway.execution.v1.SubscribeUpdatesRequest, io.executiongateway.execution.v1.SubscribeUpdatesResponse> getSubscribeUpdatesMethod;
    if ((getSubscribeUpdatesMethod = ExecutionServiceGrpc.getSubscribeUpdatesMethod) == null) {
      synchronized (ExecutionServiceGrpc.class) {
        if ((getSubscribeUpdatesMethod = ExecutionServiceGrpc.getSubscribeUpdatesMethod) == null) {
          ExecutionServiceGrpc.getSubscribeUpdatesMethod = getSubscribeUpdatesMethod =
              io.grpc.MethodDescriptor.<io.executiongateway.execution.v1.SubscribeUpdatesRequest, io.executiongateway.execution.v1.SubscribeUpdatesResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "SubscribeUpdates"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.executiongateway.execution.v1.SubscribeUpdatesRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.executiongateway.execution.v1.SubscribeUpdatesResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ExecutionServiceMethodDescriptorSupplier("SubscribeUpdates"))
              .build();
        }
      }
    }
    return getSubscribeUpdatesMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static ExecutionServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ExecutionServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ExecutionServiceStub>() {
        @java.lang.Override
        public ExecutionServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ExecutionServiceStub(channel, callOptions);
        }
      };
    return ExecutionServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static ExecutionServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ExecutionServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ExecutionServiceBlockingV2Stub>() {
        @java.lang.Override
        public ExecutionServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ExecutionServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return ExecutionServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static ExecutionServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ExecutionServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ExecutionServiceBlockingStub>() {
        @java.lang.Override
        public ExecutionServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ExecutionServiceBlockingStub(channel, callOptions);
        }
      };
    return ExecutionServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static ExecutionServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ExecutionServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ExecutionServiceFutureStub>() {
        @java.lang.Override
        public ExecutionServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ExecutionServiceFutureStub(channel, callOptions);
        }
      };
    return ExecutionServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * ExecutionService is the whole trading surface of the gateway.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * PlaceOrder sends a new order to the broker, idempotently.
     * (account, client_order_id) names the order for good: repeating the call
     * with the same key and the same parameters returns the existing order and
     * never reaches the broker twice, also while the first call is in flight.
     * The same key with different parameters is ALREADY_EXISTS.
     * The call answers once the broker has acknowledged or rejected the order,
     * or, if the broker is slow to answer, with the order still PENDING_NEW
     * after the gateway's configured wait; the outcome then arrives on
     * SubscribeUpdates. A rejection by the broker is not an RPC error: the
     * order comes back with status REJECTED and a reject_reason.
     * </pre>
     */
    default void placeOrder(io.executiongateway.execution.v1.PlaceOrderRequest request,
        io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.PlaceOrderResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getPlaceOrderMethod(), responseObserver);
    }

    /**
     * <pre>
     * CancelOrder asks the broker to cancel an open order.
     * Cancelling is a request: the answer carries the order in PENDING_CANCEL
     * (or already CANCELED); the outcome arrives on SubscribeUpdates. A fill
     * may still arrive before the cancel takes effect. Cancelling an order that
     * is already FILLED, CANCELED, REJECTED or EXPIRED is FAILED_PRECONDITION;
     * an unknown order is NOT_FOUND.
     * </pre>
     */
    default void cancelOrder(io.executiongateway.execution.v1.CancelOrderRequest request,
        io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.CancelOrderResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCancelOrderMethod(), responseObserver);
    }

    /**
     * <pre>
     * GetOrderStatus returns the current state of one order.
     * </pre>
     */
    default void getOrderStatus(io.executiongateway.execution.v1.GetOrderStatusRequest request,
        io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.GetOrderStatusResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetOrderStatusMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListOrders returns an account's orders, oldest first, a page at a time.
     * </pre>
     */
    default void listOrders(io.executiongateway.execution.v1.ListOrdersRequest request,
        io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.ListOrdersResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListOrdersMethod(), responseObserver);
    }

    /**
     * <pre>
     * SubscribeUpdates streams every change to the matching orders, each with a
     * gateway-wide sequence number, and heartbeats while nothing changes.
     * A client that reconnects passes the last sequence it processed as
     * after_sequence and misses nothing. A client that reads too slowly is
     * ended with RESOURCE_EXHAUSTED and may resume the same way.
     * </pre>
     */
    default void subscribeUpdates(io.executiongateway.execution.v1.SubscribeUpdatesRequest request,
        io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.SubscribeUpdatesResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSubscribeUpdatesMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service ExecutionService.
   * <pre>
   * ExecutionService is the whole trading surface of the gateway.
   * </pre>
   */
  public static abstract class ExecutionServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return ExecutionServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service ExecutionService.
   * <pre>
   * ExecutionService is the whole trading surface of the gateway.
   * </pre>
   */
  public static final class ExecutionServiceStub
      extends io.grpc.stub.AbstractAsyncStub<ExecutionServiceStub> {
    private ExecutionServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ExecutionServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ExecutionServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * PlaceOrder sends a new order to the broker, idempotently.
     * (account, client_order_id) names the order for good: repeating the call
     * with the same key and the same parameters returns the existing order and
     * never reaches the broker twice, also while the first call is in flight.
     * The same key with different parameters is ALREADY_EXISTS.
     * The call answers once the broker has acknowledged or rejected the order,
     * or, if the broker is slow to answer, with the order still PENDING_NEW
     * after the gateway's configured wait; the outcome then arrives on
     * SubscribeUpdates. A rejection by the broker is not an RPC error: the
     * order comes back with status REJECTED and a reject_reason.
     * </pre>
     */
    public void placeOrder(io.executiongateway.execution.v1.PlaceOrderRequest request,
        io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.PlaceOrderResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getPlaceOrderMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * CancelOrder asks the broker to cancel an open order.
     * Cancelling is a request: the answer carries the order in PENDING_CANCEL
     * (or already CANCELED); the outcome arrives on SubscribeUpdates. A fill
     * may still arrive before the cancel takes effect. Cancelling an order that
     * is already FILLED, CANCELED, REJECTED or EXPIRED is FAILED_PRECONDITION;
     * an unknown order is NOT_FOUND.
     * </pre>
     */
    public void cancelOrder(io.executiongateway.execution.v1.CancelOrderRequest request,
        io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.CancelOrderResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCancelOrderMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GetOrderStatus returns the current state of one order.
     * </pre>
     */
    public void getOrderStatus(io.executiongateway.execution.v1.GetOrderStatusRequest request,
        io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.GetOrderStatusResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetOrderStatusMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListOrders returns an account's orders, oldest first, a page at a time.
     * </pre>
     */
    public void listOrders(io.executiongateway.execution.v1.ListOrdersRequest request,
        io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.ListOrdersResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListOrdersMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * SubscribeUpdates streams every change to the matching orders, each with a
     * gateway-wide sequence number, and heartbeats while nothing changes.
     * A client that reconnects passes the last sequence it processed as
     * after_sequence and misses nothing. A client that reads too slowly is
     * ended with RESOURCE_EXHAUSTED and may resume the same way.
     * </pre>
     */
    public void subscribeUpdates(io.executiongateway.execution.v1.SubscribeUpdatesRequest request,
        io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.SubscribeUpdatesResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getSubscribeUpdatesMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service ExecutionService.
   * <pre>
   * ExecutionService is the whole trading surface of the gateway.
   * </pre>
   */
  public static final class ExecutionServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<ExecutionServiceBlockingV2Stub> {
    private ExecutionServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ExecutionServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ExecutionServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * PlaceOrder sends a new order to the broker, idempotently.
     * (account, client_order_id) names the order for good: repeating the call
     * with the same key and the same parameters returns the existing order and
     * never reaches the broker twice, also while the first call is in flight.
     * The same key with different parameters is ALREADY_EXISTS.
     * The call answers once the broker has acknowledged or rejected the order,
     * or, if the broker is slow to answer, with the order still PENDING_NEW
     * after the gateway's configured wait; the outcome then arrives on
     * SubscribeUpdates. A rejection by the broker is not an RPC error: the
     * order comes back with status REJECTED and a reject_reason.
     * </pre>
     */
    public io.executiongateway.execution.v1.PlaceOrderResponse placeOrder(io.executiongateway.execution.v1.PlaceOrderRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getPlaceOrderMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CancelOrder asks the broker to cancel an open order.
     * Cancelling is a request: the answer carries the order in PENDING_CANCEL
     * (or already CANCELED); the outcome arrives on SubscribeUpdates. A fill
     * may still arrive before the cancel takes effect. Cancelling an order that
     * is already FILLED, CANCELED, REJECTED or EXPIRED is FAILED_PRECONDITION;
     * an unknown order is NOT_FOUND.
     * </pre>
     */
    public io.executiongateway.execution.v1.CancelOrderResponse cancelOrder(io.executiongateway.execution.v1.CancelOrderRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCancelOrderMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetOrderStatus returns the current state of one order.
     * </pre>
     */
    public io.executiongateway.execution.v1.GetOrderStatusResponse getOrderStatus(io.executiongateway.execution.v1.GetOrderStatusRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetOrderStatusMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListOrders returns an account's orders, oldest first, a page at a time.
     * </pre>
     */
    public io.executiongateway.execution.v1.ListOrdersResponse listOrders(io.executiongateway.execution.v1.ListOrdersRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListOrdersMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * SubscribeUpdates streams every change to the matching orders, each with a
     * gateway-wide sequence number, and heartbeats while nothing changes.
     * A client that reconnects passes the last sequence it processed as
     * after_sequence and misses nothing. A client that reads too slowly is
     * ended with RESOURCE_EXHAUSTED and may resume the same way.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, io.executiongateway.execution.v1.SubscribeUpdatesResponse>
        subscribeUpdates(io.executiongateway.execution.v1.SubscribeUpdatesRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getSubscribeUpdatesMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service ExecutionService.
   * <pre>
   * ExecutionService is the whole trading surface of the gateway.
   * </pre>
   */
  public static final class ExecutionServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<ExecutionServiceBlockingStub> {
    private ExecutionServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ExecutionServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ExecutionServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * PlaceOrder sends a new order to the broker, idempotently.
     * (account, client_order_id) names the order for good: repeating the call
     * with the same key and the same parameters returns the existing order and
     * never reaches the broker twice, also while the first call is in flight.
     * The same key with different parameters is ALREADY_EXISTS.
     * The call answers once the broker has acknowledged or rejected the order,
     * or, if the broker is slow to answer, with the order still PENDING_NEW
     * after the gateway's configured wait; the outcome then arrives on
     * SubscribeUpdates. A rejection by the broker is not an RPC error: the
     * order comes back with status REJECTED and a reject_reason.
     * </pre>
     */
    public io.executiongateway.execution.v1.PlaceOrderResponse placeOrder(io.executiongateway.execution.v1.PlaceOrderRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getPlaceOrderMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CancelOrder asks the broker to cancel an open order.
     * Cancelling is a request: the answer carries the order in PENDING_CANCEL
     * (or already CANCELED); the outcome arrives on SubscribeUpdates. A fill
     * may still arrive before the cancel takes effect. Cancelling an order that
     * is already FILLED, CANCELED, REJECTED or EXPIRED is FAILED_PRECONDITION;
     * an unknown order is NOT_FOUND.
     * </pre>
     */
    public io.executiongateway.execution.v1.CancelOrderResponse cancelOrder(io.executiongateway.execution.v1.CancelOrderRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCancelOrderMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetOrderStatus returns the current state of one order.
     * </pre>
     */
    public io.executiongateway.execution.v1.GetOrderStatusResponse getOrderStatus(io.executiongateway.execution.v1.GetOrderStatusRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetOrderStatusMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListOrders returns an account's orders, oldest first, a page at a time.
     * </pre>
     */
    public io.executiongateway.execution.v1.ListOrdersResponse listOrders(io.executiongateway.execution.v1.ListOrdersRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListOrdersMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * SubscribeUpdates streams every change to the matching orders, each with a
     * gateway-wide sequence number, and heartbeats while nothing changes.
     * A client that reconnects passes the last sequence it processed as
     * after_sequence and misses nothing. A client that reads too slowly is
     * ended with RESOURCE_EXHAUSTED and may resume the same way.
     * </pre>
     */
    public java.util.Iterator<io.executiongateway.execution.v1.SubscribeUpdatesResponse> subscribeUpdates(
        io.executiongateway.execution.v1.SubscribeUpdatesRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getSubscribeUpdatesMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service ExecutionService.
   * <pre>
   * ExecutionService is the whole trading surface of the gateway.
   * </pre>
   */
  public static final class ExecutionServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<ExecutionServiceFutureStub> {
    private ExecutionServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ExecutionServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ExecutionServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * PlaceOrder sends a new order to the broker, idempotently.
     * (account, client_order_id) names the order for good: repeating the call
     * with the same key and the same parameters returns the existing order and
     * never reaches the broker twice, also while the first call is in flight.
     * The same key with different parameters is ALREADY_EXISTS.
     * The call answers once the broker has acknowledged or rejected the order,
     * or, if the broker is slow to answer, with the order still PENDING_NEW
     * after the gateway's configured wait; the outcome then arrives on
     * SubscribeUpdates. A rejection by the broker is not an RPC error: the
     * order comes back with status REJECTED and a reject_reason.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.executiongateway.execution.v1.PlaceOrderResponse> placeOrder(
        io.executiongateway.execution.v1.PlaceOrderRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getPlaceOrderMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * CancelOrder asks the broker to cancel an open order.
     * Cancelling is a request: the answer carries the order in PENDING_CANCEL
     * (or already CANCELED); the outcome arrives on SubscribeUpdates. A fill
     * may still arrive before the cancel takes effect. Cancelling an order that
     * is already FILLED, CANCELED, REJECTED or EXPIRED is FAILED_PRECONDITION;
     * an unknown order is NOT_FOUND.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.executiongateway.execution.v1.CancelOrderResponse> cancelOrder(
        io.executiongateway.execution.v1.CancelOrderRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCancelOrderMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GetOrderStatus returns the current state of one order.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.executiongateway.execution.v1.GetOrderStatusResponse> getOrderStatus(
        io.executiongateway.execution.v1.GetOrderStatusRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetOrderStatusMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListOrders returns an account's orders, oldest first, a page at a time.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.executiongateway.execution.v1.ListOrdersResponse> listOrders(
        io.executiongateway.execution.v1.ListOrdersRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListOrdersMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_PLACE_ORDER = 0;
  private static final int METHODID_CANCEL_ORDER = 1;
  private static final int METHODID_GET_ORDER_STATUS = 2;
  private static final int METHODID_LIST_ORDERS = 3;
  private static final int METHODID_SUBSCRIBE_UPDATES = 4;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_PLACE_ORDER:
          serviceImpl.placeOrder((io.executiongateway.execution.v1.PlaceOrderRequest) request,
              (io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.PlaceOrderResponse>) responseObserver);
          break;
        case METHODID_CANCEL_ORDER:
          serviceImpl.cancelOrder((io.executiongateway.execution.v1.CancelOrderRequest) request,
              (io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.CancelOrderResponse>) responseObserver);
          break;
        case METHODID_GET_ORDER_STATUS:
          serviceImpl.getOrderStatus((io.executiongateway.execution.v1.GetOrderStatusRequest) request,
              (io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.GetOrderStatusResponse>) responseObserver);
          break;
        case METHODID_LIST_ORDERS:
          serviceImpl.listOrders((io.executiongateway.execution.v1.ListOrdersRequest) request,
              (io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.ListOrdersResponse>) responseObserver);
          break;
        case METHODID_SUBSCRIBE_UPDATES:
          serviceImpl.subscribeUpdates((io.executiongateway.execution.v1.SubscribeUpdatesRequest) request,
              (io.grpc.stub.StreamObserver<io.executiongateway.execution.v1.SubscribeUpdatesResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getPlaceOrderMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.executiongateway.execution.v1.PlaceOrderRequest,
              io.executiongateway.execution.v1.PlaceOrderResponse>(
                service, METHODID_PLACE_ORDER)))
        .addMethod(
          getCancelOrderMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.executiongateway.execution.v1.CancelOrderRequest,
              io.executiongateway.execution.v1.CancelOrderResponse>(
                service, METHODID_CANCEL_ORDER)))
        .addMethod(
          getGetOrderStatusMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.executiongateway.execution.v1.GetOrderStatusRequest,
              io.executiongateway.execution.v1.GetOrderStatusResponse>(
                service, METHODID_GET_ORDER_STATUS)))
        .addMethod(
          getListOrdersMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.executiongateway.execution.v1.ListOrdersRequest,
              io.executiongateway.execution.v1.ListOrdersResponse>(
                service, METHODID_LIST_ORDERS)))
        .addMethod(
          getSubscribeUpdatesMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              io.executiongateway.execution.v1.SubscribeUpdatesRequest,
              io.executiongateway.execution.v1.SubscribeUpdatesResponse>(
                service, METHODID_SUBSCRIBE_UPDATES)))
        .build();
  }

  private static abstract class ExecutionServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    ExecutionServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.executiongateway.execution.v1.ExecutionProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("ExecutionService");
    }
  }

  private static final class ExecutionServiceFileDescriptorSupplier
      extends ExecutionServiceBaseDescriptorSupplier {
    ExecutionServiceFileDescriptorSupplier() {}
  }

  private static final class ExecutionServiceMethodDescriptorSupplier
      extends ExecutionServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    ExecutionServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (ExecutionServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new ExecutionServiceFileDescriptorSupplier())
              .addMethod(getPlaceOrderMethod())
              .addMethod(getCancelOrderMethod())
              .addMethod(getGetOrderStatusMethod())
              .addMethod(getListOrdersMethod())
              .addMethod(getSubscribeUpdatesMethod())
              .build();
        }
      }
    }
    return result;
  }
}
