// Command strategy is a small trading strategy against the execution gateway.
//
// It connects with a bearer token, subscribes to its account's updates, rests a
// buy limit far below the market and amends it (ReplaceOrder: a new quantity and
// price), sends a market order, follows the stream until the market order is
// FILLED and the amend is confirmed (an update of kind REPLACED), cancels the
// limit order while disconnected, and resumes the stream from the last sequence
// it processed to see the cancel arrive: no update is lost in between.
//
//	go run ./cmd/strategy -target 127.0.0.1:50051 -account acct-1 -token "$TOKEN"
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	executionv1 "github.com/execution-gateway/gateway/clients/go/gen/execution/v1"
)

// bearerToken sends "authorization: Bearer <token>" with every call.
type bearerToken struct {
	token  string
	secure bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity lets a token travel in plaintext only when TLS is off
// on purpose (a gateway on loopback).
func (b bearerToken) RequireTransportSecurity() bool { return b.secure }

func main() {
	target := flag.String("target", "127.0.0.1:50051", "gateway address host:port")
	account := flag.String("account", "acct-1", "trading account")
	symbol := flag.String("symbol", "AAPL", "instrument")
	token := flag.String("token", os.Getenv("GATEWAY_TOKEN"), "bearer token (default $GATEWAY_TOKEN)")
	useTLS := flag.Bool("tls", false, "connect with TLS (system roots)")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *target, *account, *symbol, *token, *useTLS); err != nil {
		log.Fatalf("strategy failed: %v", err)
	}
}

func dial(target, token string, useTLS bool) (*grpc.ClientConn, error) {
	transport := insecure.NewCredentials()
	if useTLS {
		transport = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	options := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	if token != "" {
		options = append(options, grpc.WithPerRPCCredentials(bearerToken{token: token, secure: useTLS}))
	}
	return grpc.NewClient(target, options...)
}

func run(ctx context.Context, target, account, symbol, token string, useTLS bool) error {
	conn, err := dial(target, token, useTLS)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	client := executionv1.NewExecutionServiceClient(conn)

	// Subscribe before trading, so that no update of our orders is missed.
	streamCtx, closeStream := context.WithCancel(ctx)
	defer closeStream()
	stream, err := client.SubscribeUpdates(streamCtx, &executionv1.SubscribeUpdatesRequest{
		Accounts: []string{account},
	})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	// The gateway's first message (a heartbeat) says the subscription is live.
	if _, err := stream.Recv(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}

	limit, err := place(ctx, client, &executionv1.PlaceOrderRequest{
		Account:     account,
		Symbol:      symbol,
		Side:        executionv1.Side_SIDE_BUY,
		OrderType:   executionv1.OrderType_ORDER_TYPE_LIMIT,
		Quantity:    "5",
		LimitPrice:  "0.01", // far below the market: it rests until cancelled
		TimeInForce: executionv1.TimeInForce_TIME_IN_FORCE_GTC,
	})
	if err != nil {
		return err
	}
	log.Printf("limit order %s is %s", limit.GetOrderId(), limit.GetStatus())

	// Amend it: a new total quantity and price (still far below the market).
	// The answer is PENDING_REPLACE; the outcome arrives on the stream.
	pending, err := replace(ctx, client, &executionv1.ReplaceOrderRequest{
		Account:    account,
		OrderRef:   &executionv1.ReplaceOrderRequest_OrderId{OrderId: limit.GetOrderId()},
		Quantity:   "6",
		LimitPrice: "0.02",
	})
	if err != nil {
		return err
	}
	log.Printf("replace %s: %s", pending.GetReplaceId(), pending.GetStatus())

	market, err := place(ctx, client, &executionv1.PlaceOrderRequest{
		Account:     account,
		Symbol:      symbol,
		Side:        executionv1.Side_SIDE_BUY,
		OrderType:   executionv1.OrderType_ORDER_TYPE_MARKET,
		Quantity:    "10",
		TimeInForce: executionv1.TimeInForce_TIME_IN_FORCE_DAY,
	})
	if err != nil {
		return err
	}
	log.Printf("market order %s is %s", market.GetOrderId(), market.GetStatus())

	// Follow the stream until the market order has filled completely and the
	// amend is settled, in either order.
	var lastSequence uint64
	var filled, amended *executionv1.Order
	for filled == nil || amended == nil {
		message, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("update stream: %w", err)
		}
		update := message.GetUpdate()
		if update == nil {
			continue // a heartbeat, or a position or trading-state change
		}
		lastSequence = update.GetSequence()
		order := update.GetOrder()
		if fill := update.GetFill(); fill != nil {
			log.Printf("#%d fill %s %s @ %s (%s)", lastSequence, order.GetOrderId(), fill.GetQuantity(), fill.GetPrice(), fill.GetExecId())
		} else {
			log.Printf("#%d %s %s (%s)", lastSequence, order.GetOrderId(), order.GetStatus(), update.GetKind())
		}
		if order.GetOrderId() == market.GetOrderId() && order.GetStatus() == executionv1.OrderStatus_ORDER_STATUS_FILLED {
			filled = order
		}
		if order.GetOrderId() == limit.GetOrderId() {
			switch update.GetKind() {
			case executionv1.UpdateKind_UPDATE_KIND_REPLACED:
				amended = order
			case executionv1.UpdateKind_UPDATE_KIND_REPLACE_REJECTED:
				return fmt.Errorf("the broker refused the amend: %s", order.GetRejectReason())
			}
		}
	}
	closeStream() // disconnect: what happens next must not be lost

	// A filled order cannot be cancelled: the error says why, in its details.
	_, err = client.CancelOrder(ctx, &executionv1.CancelOrderRequest{
		Account:  account,
		OrderRef: &executionv1.CancelOrderRequest_OrderId{OrderId: market.GetOrderId()},
	})
	log.Printf("cancel of the filled order: %s (reason %s)", status.Code(err), reason(err))

	cancelled, err := client.CancelOrder(ctx, &executionv1.CancelOrderRequest{
		Account:  account,
		OrderRef: &executionv1.CancelOrderRequest_ClientOrderId{ClientOrderId: limit.GetClientOrderId()},
	})
	if err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	log.Printf("cancel requested: %s is %s", cancelled.GetOrder().GetOrderId(), cancelled.GetOrder().GetStatus())

	// Resume after the last sequence processed: the cancel's updates arrive.
	resumed, err := client.SubscribeUpdates(ctx, &executionv1.SubscribeUpdatesRequest{
		Accounts:      []string{account},
		AfterSequence: &lastSequence,
	})
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	for {
		message, err := resumed.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("resumed stream ended before the cancel arrived")
		}
		if err != nil {
			return fmt.Errorf("resumed stream: %w", err)
		}
		update := message.GetUpdate()
		if update == nil {
			continue
		}
		if update.GetSequence() <= lastSequence {
			return fmt.Errorf("resume replayed sequence %d, not after %d", update.GetSequence(), lastSequence)
		}
		order := update.GetOrder()
		log.Printf("#%d (resumed) %s %s", update.GetSequence(), order.GetOrderId(), order.GetStatus())
		if order.GetOrderId() == limit.GetOrderId() && order.GetStatus() == executionv1.OrderStatus_ORDER_STATUS_CANCELED {
			break
		}
	}

	fmt.Printf("strategy done: market order %s FILLED %s @ %s; limit order %s REPLACED %s @ %s, then CANCELED; resumed after sequence %d\n",
		filled.GetOrderId(), filled.GetFilledQuantity(), filled.GetAverageFillPrice(), limit.GetOrderId(),
		amended.GetQuantity(), amended.GetLimitPrice(), lastSequence)
	return nil
}

// place sends an order with a fresh client_order_id and retries it, with the
// same id, while the outcome is unknown: the gateway places it once.
func place(ctx context.Context, client executionv1.ExecutionServiceClient, request *executionv1.PlaceOrderRequest) (*executionv1.Order, error) {
	request.ClientOrderId = newClientOrderID()
	order, err := retryUnknownOutcome(ctx, func(callCtx context.Context) (*executionv1.Order, error) {
		response, err := client.PlaceOrder(callCtx, request)
		return response.GetOrder(), err
	})
	if err != nil {
		return nil, fmt.Errorf("place %s: %w", request.GetClientOrderId(), err)
	}
	return order, nil
}

// replace amends an order under a fresh replace_id and retries it, with the
// same id, while the outcome is unknown: the broker sees one amend.
func replace(ctx context.Context, client executionv1.ExecutionServiceClient, request *executionv1.ReplaceOrderRequest) (*executionv1.Order, error) {
	request.ReplaceId = newClientOrderID()
	order, err := retryUnknownOutcome(ctx, func(callCtx context.Context) (*executionv1.Order, error) {
		response, err := client.ReplaceOrder(callCtx, request)
		return response.GetOrder(), err
	})
	if err != nil {
		return nil, fmt.Errorf("replace %s: %w", request.GetReplaceId(), err)
	}
	return order, nil
}

// retryUnknownOutcome runs an idempotent call (the same request, the same key)
// again after UNAVAILABLE or DEADLINE_EXCEEDED, up to five times.
func retryUnknownOutcome(ctx context.Context, call func(context.Context) (*executionv1.Order, error)) (*executionv1.Order, error) {
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		order, err := call(callCtx)
		cancel()
		if err == nil {
			return order, nil
		}
		if code := status.Code(err); (code != codes.Unavailable && code != codes.DeadlineExceeded) || attempt == 5 {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}

// reason is the google.rpc.ErrorInfo reason carried by a gateway error.
func reason(err error) string {
	for _, detail := range status.Convert(err).Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return "none"
}

func newClientOrderID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "go-" + hex.EncodeToString(b[:])
}
