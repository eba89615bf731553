// Command streamclient is the benchmark's load generator for SubscribeUpdates.
//
// It opens -subscribers streams (each on its own connection, as separate
// strategies would), prints "ready" once every stream has its first message,
// and records for every update the lag from the update's own time (the fill's
// time for a fill) to its arrival. It stops after -duration, on SIGTERM/SIGINT,
// or when standard input closes, and writes one JSON summary to -out.
//
// It is written in Go so that decoding 50,000 messages a second costs the
// 2-core machine little: the gateway, not the client, should be measured.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	executionv1 "github.com/execution-gateway/gateway/clients/go/gen/execution/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The most lag samples kept for the report's plot (a uniform reservoir).
const keepSamples = 20000

type subscriberResult struct {
	updates  int64
	gaps     int64
	err      string
	lagsNano []int64
}

type summary struct {
	Subscribers      int       `json:"subscribers"`
	Ready            int       `json:"ready"`
	Seconds          float64   `json:"seconds"`
	Delivered        int64     `json:"delivered"`
	DeliveredPerSec  float64   `json:"delivered_per_second"`
	MinPerSubscriber int64     `json:"min_per_subscriber"`
	MaxPerSubscriber int64     `json:"max_per_subscriber"`
	Gaps             int64     `json:"gaps"`
	Errors           []string  `json:"errors"`
	LagMs            lagStats  `json:"lag_ms"`
	LagSampleMs      []float64 `json:"lag_sample_ms"`
}

type lagStats struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func main() {
	target := flag.String("target", "127.0.0.1:50051", "gateway HOST:PORT")
	subscribers := flag.Int("subscribers", 100, "streams to open")
	account := flag.String("account", "", "subscribe to this account only (empty: all)")
	duration := flag.Duration("duration", 60*time.Second, "longest run (a hard bound)")
	out := flag.String("out", "-", "where to write the JSON summary")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-signals:
		case <-ctx.Done():
		}
		cancel()
	}()
	go func() { // the runner closes our stdin to say "stop"
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	results := make([]subscriberResult, *subscribers)
	var ready sync.WaitGroup
	var done sync.WaitGroup
	ready.Add(*subscribers)
	readyCount := make(chan struct{}, *subscribers)
	for i := range results {
		done.Add(1)
		go func() {
			defer done.Done()
			subscribe(ctx, *target, *account, &results[i], func() {
				readyCount <- struct{}{}
				ready.Done()
			})
		}()
	}
	allReady := make(chan struct{})
	go func() { ready.Wait(); close(allReady) }()
	select {
	case <-allReady:
		fmt.Println("ready")
	case <-ctx.Done():
	}
	started := time.Now()
	done.Wait()
	elapsed := time.Since(started).Seconds()
	writeSummary(*out, results, len(readyCount), elapsed)
}

func subscribe(ctx context.Context, target, account string, result *subscriberResult, onReady func()) {
	readied := false
	defer func() {
		if !readied {
			onReady()
		}
	}()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		result.err = err.Error()
		return
	}
	defer conn.Close()
	request := &executionv1.SubscribeUpdatesRequest{}
	if account != "" {
		request.Accounts = []string{account}
	}
	stream, err := executionv1.NewExecutionServiceClient(conn).SubscribeUpdates(ctx, request)
	if err != nil {
		result.err = err.Error()
		return
	}
	rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
	var last uint64
	var seen int64
	for {
		message, err := stream.Recv()
		if err != nil {
			if ctx.Err() == nil {
				result.err = err.Error()
			}
			return
		}
		if !readied {
			readied = true
			onReady()
		}
		update := message.GetUpdate()
		if update == nil {
			continue // a heartbeat
		}
		lag := time.Since(update.GetTime().AsTime()).Nanoseconds()
		if last != 0 && update.GetSequence() != last+1 {
			result.gaps++
		}
		last = update.GetSequence()
		result.updates++
		seen++
		// Reservoir sampling keeps a uniform sample of this stream's lags.
		if len(result.lagsNano) < keepSamples {
			result.lagsNano = append(result.lagsNano, lag)
		} else if j := rng.Int64N(seen); j < keepSamples {
			result.lagsNano[j] = lag
		}
	}
}

func writeSummary(path string, results []subscriberResult, ready int, elapsed float64) {
	s := summary{Subscribers: len(results), Ready: ready, Seconds: elapsed, Errors: []string{}}
	var lags []int64
	s.MinPerSubscriber = -1
	for _, r := range results {
		s.Delivered += r.updates
		s.Gaps += r.gaps
		if s.MinPerSubscriber < 0 || r.updates < s.MinPerSubscriber {
			s.MinPerSubscriber = r.updates
		}
		s.MaxPerSubscriber = max(s.MaxPerSubscriber, r.updates)
		if r.err != "" && len(s.Errors) < 10 {
			s.Errors = append(s.Errors, r.err)
		}
		lags = append(lags, r.lagsNano...)
	}
	if elapsed > 0 {
		s.DeliveredPerSec = float64(s.Delivered) / elapsed
	}
	slices.Sort(lags)
	ms := func(q float64) float64 {
		if len(lags) == 0 {
			return 0
		}
		return float64(lags[min(len(lags)-1, int(q*float64(len(lags))))]) / 1e6
	}
	s.LagMs = lagStats{P50: ms(0.50), P90: ms(0.90), P99: ms(0.99), P999: ms(0.999), Max: ms(1)}
	step := max(1, len(lags)/keepSamples)
	for i := 0; i < len(lags); i += step {
		s.LagSampleMs = append(s.LagSampleMs, float64(lags[i])/1e6)
	}
	data, err := json.Marshal(s)
	if err != nil {
		log.Fatal(err)
	}
	if path == "-" {
		_, _ = os.Stdout.Write(append(data, '\n'))
		return
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		log.Fatal(err)
	}
}
