// Command bench loads an ordergrid node with orders and reports throughput
// and latency. This is the seed of the bench harness (closed loop, HTTP/JSON,
// single-order or batch intake); scenarios, open-loop arrivals and reports
// come with the bench issue.
//
//	go run ./bench -url http://127.0.0.1:8080 -mode single -duration 10s -concurrency 64
//	go run ./bench -url http://127.0.0.1:8080 -mode batch -batch 100 -duration 10s -concurrency 16
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// samplesMax bounds the latencies kept for percentiles.
const samplesMax = 20_000_000

func main() {
	urlList := flag.String("url", "http://127.0.0.1:8080", "node base URLs, comma-separated (clients spread over them)")
	mode := flag.String("mode", "single", "single (POST /v1/orders) or batch (POST /v1/orders:batch)")
	duration := flag.Duration("duration", 10*time.Second, "how long to load")
	concurrency := flag.Int("concurrency", 64, "concurrent clients (closed loop)")
	batch := flag.Int("batch", 100, "orders per batch request")
	skus := flag.Int("skus", 1, "SKUs to spread orders over (1 = one hot SKU)")
	stock := flag.Int64("stock", 100_000_000, "on-hand stock set for each SKU before the run")
	run := flag.String("run", fmt.Sprintf("bench-%d", time.Now().UnixNano()), "prefix of idempotency keys")
	ledgerStats := flag.Bool("ledger", true, "after the load, wait for the audit ledger and report its throughput, lag and proof latency")
	flag.Parse()
	if *mode != "single" && *mode != "batch" {
		fail("-mode must be single or batch")
	}
	if *duration <= 0 || *duration > time.Hour || *concurrency < 1 || *concurrency > 4096 || *batch < 1 || *batch > 1000 || *skus < 1 {
		fail("flags out of range")
	}
	urls := strings.Split(*urlList, ",")
	url := &urls[0]
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency}}
	for i := 0; i < *skus; i++ {
		body := fmt.Sprintf(`{"on_hand": %d}`, *stock)
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/skus/BENCH-%d/stock/WH-1", *url, i), bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			fail(fmt.Sprintf("setting stock: %v %v", err, resp))
		}
		resp.Body.Close()
	}

	before, _ := scrape(client, *url)
	var idsMu sync.Mutex
	var ids []string
	var seq, orders, requests, errs atomic.Int64
	var codeMu sync.Mutex
	codes := map[int]int64{}
	lat := make([][]time.Duration, *concurrency)
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for ctx.Err() == nil {
				n := 1
				if *mode == "batch" {
					n = *batch
				}
				var buf bytes.Buffer
				path := "/v1/orders"
				if *mode == "batch" {
					path = "/v1/orders:batch"
					buf.WriteString(`{"orders":[`)
				}
				for i := 0; i < n; i++ {
					id := seq.Add(1)
					if i > 0 {
						buf.WriteByte(',')
					}
					fmt.Fprintf(&buf, `{"channel":"bench","channel_order_id":"%s-%d","idempotency_key":"%s-%d","currency":"CNY","customer":{"id":"c%d","name":"Bench Buyer","phone":"13800000000","address":"1 Bench Rd"},"lines":[{"sku":"BENCH-%d","qty":1,"unit_price":"9.90"}]}`,
						*run, id, *run, id, id%100000, id%int64(*skus))
				}
				if *mode == "batch" {
					buf.WriteString(`]}`)
				}
				t0 := time.Now()
				req, _ := http.NewRequest("POST", urls[w%len(urls)]+path, &buf)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				requests.Add(1)
				codeMu.Lock()
				if *mode == "batch" && resp.StatusCode == 200 {
					var out struct {
						Results []struct{ Status int } `json:"results"`
					}
					_ = json.Unmarshal(raw, &out)
					for _, r := range out.Results {
						codes[r.Status]++
						if r.Status == 201 {
							orders.Add(1)
						}
					}
				} else {
					codes[resp.StatusCode]++
					if resp.StatusCode == 201 {
						orders.Add(1)
						if *ledgerStats && len(ids) < 1000 && id(raw) != "" {
							idsMu.Lock()
							ids = append(ids, id(raw))
							idsMu.Unlock()
						}
					}
				}
				codeMu.Unlock()
				if len(lat[w]) < samplesMax / *concurrency {
					lat[w] = append(lat[w], d)
				}
			}
		}(w)
	}
	go progress(ctx, start, &orders)
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	fmt.Printf("mode=%s concurrency=%d skus=%d duration=%s\n", *mode, *concurrency, *skus, elapsed.Round(time.Millisecond))
	fmt.Printf("orders created: %d (%.0f orders/s)   requests: %d (%.0f/s)   transport errors: %d\n",
		orders.Load(), float64(orders.Load())/elapsed.Seconds(), requests.Load(), float64(requests.Load())/elapsed.Seconds(), errs.Load())
	fmt.Printf("request latency: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(0.999).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	fmt.Printf("statuses: %v\n", codes)
	if errs.Load() > 0 || len(codes) > 1 {
		fmt.Println("note: not every request created an order (see statuses)")
	}
	if *ledgerStats {
		ledgerReport(client, *url, before, elapsed, ids)
	}
}

// id is the order id of a 201 answer.
func id(raw []byte) string {
	var o struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.ID
}

func progress(ctx context.Context, start time.Time, orders *atomic.Int64) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := int64(0)
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr)
			return
		case <-t.C:
			n := orders.Load()
			fmt.Fprintf(os.Stderr, "\r%5.0fs  %d orders  %d/s   ", time.Since(start).Seconds(), n, n-last)
			last = n
		}
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "bench:", msg)
	os.Exit(2)
}
