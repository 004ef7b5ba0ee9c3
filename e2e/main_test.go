package e2e

import (
	"context"
	"os"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// testToken is the admin token of every node the tests start (through
// ORDERGRID_BOOTSTRAP_TOKEN, inherited by the nodes and the CLIs they run).
const testToken = "og_e2e-admin-token-for-tests-only"

func TestMain(m *testing.M) {
	os.Setenv("ORDERGRID_BOOTSTRAP_TOKEN", testToken)
	// The shipped risk model's score moves with the hour of the day: a
	// test that gives one customer several orders would be held at some
	// hours. Every node scores, and holds none by risk (holds.risk_hold 1:
	// a score is below 1), unless a test asks for it with a flag.
	os.Setenv("ORDERGRID_HOLDS_RISK_HOLD", "1")
	os.Exit(m.Run())
}

// bearer is gRPC per-call credentials: "authorization: Bearer <token>".
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// dialGRPC connects to a node's gRPC API with the test token.
func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(testToken)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
