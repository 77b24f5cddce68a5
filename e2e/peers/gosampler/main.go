// gosampler: the OpenTelemetry Go contrib Jaeger remote sampler against a sampling server.
// Usage: gosampler URL SERVICE REFRESH_MS ROUNDS OPERATION...
// Every round (REFRESH_MS apart, after the first poll) it prints one JSON line: for each
// operation, how many of 1000 new root spans the sampler sampled.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/contrib/samplers/jaegerremote"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func main() {
	if len(os.Args) < 6 {
		fmt.Fprintln(os.Stderr, "usage: gosampler URL SERVICE REFRESH_MS ROUNDS OPERATION...")
		os.Exit(2)
	}
	url, service := os.Args[1], os.Args[2]
	refresh, _ := strconv.Atoi(os.Args[3])
	rounds, _ := strconv.Atoi(os.Args[4])
	operations := os.Args[5:]
	sampler := jaegerremote.New(service,
		jaegerremote.WithSamplingServerURL(url),
		jaegerremote.WithSamplingRefreshInterval(time.Duration(refresh)*time.Millisecond),
		jaegerremote.WithInitialSampler(sdktrace.NeverSample()),
	)
	gen := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	tracer := gen.Tracer("ids")
	for round := 0; round < rounds; round++ {
		time.Sleep(time.Duration(refresh) * time.Millisecond * 3 / 2)
		counts := map[string]int{}
		for _, op := range operations {
			for i := 0; i < 1000; i++ {
				_, span := tracer.Start(context.Background(), "id")
				ids := span.SpanContext()
				span.End()
				result := sampler.ShouldSample(sdktrace.SamplingParameters{
					ParentContext: context.Background(),
					TraceID:       ids.TraceID(),
					Name:          op,
					Kind:          trace.SpanKindServer,
				})
				if result.Decision == sdktrace.RecordAndSample {
					counts[op]++
				}
			}
		}
		line, _ := json.Marshal(map[string]any{"round": round, "sampled": counts})
		fmt.Println(string(line))
	}
}
