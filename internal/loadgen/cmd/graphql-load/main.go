// Command graphql-load sends the benchmark query of issue 2 (one member's
// 50 claims with every scalar field and their lines) to a running gateway
// with N concurrent keep-alive clients and prints requests per second and
// latency percentiles:
//
//	go run ./internal/loadgen/cmd/graphql-load -url http://127.0.0.1:8080/graphql \
//	    -token "$(go run . token --client-id … --client-secret …)" -member MEMBER_ID -c 8 -d 15s
//
// The token must belong to a principal that may read the member (an
// operator's or Patient Access token reads the amounts too).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"example.com/gateway/internal/loadgen"
)

const query = `query MemberClaims($id: ID!) { member(id: $id) { id claims(first: 50) { edges { node {
  id memberId identifier type status outcome serviceStart serviceEnd created processed
  coverageId billingOrganizationId renderingPractitionerId facilityName placeOfService
  typeOfBill drg inNetwork sensitive lastUpdated
  totalSubmitted totalAllowed totalPaid paymentAmount paymentDate paymentAdjustment
  copay coinsurance deductible nonCovered memberLiability
  lines { sequence productCode productDisplay quantity submitted paid } } } } } }`

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/graphql", "GraphQL endpoint")
	token := flag.String("token", "", "bearer access token")
	members := flag.String("member", "", "member id(s) to read, comma-separated")
	clients := flag.Int("c", 8, "concurrent clients")
	duration := flag.Duration("d", 15*time.Second, "measured duration")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured warm-up")
	flag.Parse()
	if *members == "" {
		fmt.Fprintln(os.Stderr, "graphql-load: -member is required")
		os.Exit(2)
	}
	var bodies [][]byte
	for _, id := range strings.Split(*members, ",") {
		b, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]any{"id": strings.TrimSpace(id)}})
		bodies = append(bodies, b)
	}
	res := loadgen.Run(context.Background(), loadgen.Options{
		Clients: *clients, Duration: *duration, Warmup: *warmup,
		NewRequest: func(c, i int) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, *url, bytes.NewReader(bodies[(c+i)%len(bodies)]))
			req.Header.Set("Content-Type", "application/json")
			if *token != "" {
				req.Header.Set("Authorization", "Bearer "+*token)
			}
			return req
		},
		Check: func(status int, body []byte) error {
			if status != http.StatusOK || bytes.Contains(body, []byte(`"errors"`)) {
				return fmt.Errorf("status %d: %.300s", status, body)
			}
			return nil
		},
	})
	fmt.Printf("%d clients: %s\n", *clients, res)
	if res.Errors > 0 {
		fmt.Fprintln(os.Stderr, "first error:", res.FirstError)
		os.Exit(1)
	}
}
