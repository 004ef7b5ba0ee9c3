package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "og.yaml")
	os.WriteFile(file, []byte("data_dir: /from/yaml\nhttp:\n  addr: 127.0.0.1:1111\nraft:\n  partitions: 4\norders:\n  pending_timeout: 2m\n"), 0o644)
	env := []string{"ORDERGRID_CONFIG=" + file, "ORDERGRID_HTTP_ADDR=127.0.0.1:2222", "ORDERGRID_ORDERS_PENDING_TIMEOUT=3m", "PATH=/bin"}
	c, err := Load([]string{"--orders-pending-timeout", "4m", "--actor-provider-hosts", "a:1, b:2", "--http-pprof"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/yaml" || c.Raft.Partitions != 4 {
		t.Fatalf("yaml not applied: %+v", c)
	}
	if c.HTTP.Addr != "127.0.0.1:2222" {
		t.Fatalf("env must override yaml: %s", c.HTTP.Addr)
	}
	if c.Orders.PendingTimeout != 4*time.Minute {
		t.Fatalf("flag must override env: %s", c.Orders.PendingTimeout)
	}
	if len(c.Actor.ProviderHosts) != 2 || c.Actor.ProviderHosts[1] != "b:2" {
		t.Fatalf("list flag: %v", c.Actor.ProviderHosts)
	}
	if !c.HTTP.Pprof {
		t.Fatal("bare boolean flag not applied")
	}
	if c.GRPC.Addr != Default().GRPC.Addr {
		t.Fatalf("default lost: %s", c.GRPC.Addr)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		yaml string
		key  string
	}{
		{args: []string{"--raft-partitions", "0"}, key: "raft.partitions"},
		{args: []string{"--http-addr", "nonsense"}, key: "http.addr"},
		{env: []string{"ORDERGRID_ORDERS_PENDING_TIMEOUT=soon"}, key: "orders.pending_timeout"},
		{args: []string{"--log-level", "loud"}, key: "log.level"},
		{yaml: "orders:\n  qty_max: -1\n", key: "orders.qty_max"},
		{yaml: "http:\n  adress: x\n", key: "adress"},
		{args: []string{"--no-such-flag"}, key: "no-such-flag"},
		// A zero limit is refused at load, never taken as "refuse every request".
		{args: []string{"--orders-batch-max", "0"}, key: "orders.batch_max"},
		{args: []string{"--orders-lines-max", "0"}, key: "orders.lines_max"},
		{env: []string{"ORDERGRID_HTTP_BODY_BYTES_MAX=0"}, key: "http.body_bytes_max"},
		{yaml: "http:\n  in_flight_max: 0\n", key: "http.in_flight_max"},
	} {
		env := tc.env
		if tc.yaml != "" {
			f := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(f, []byte(tc.yaml), 0o644)
			env = append(env, "ORDERGRID_CONFIG="+f)
		}
		_, err := Load(tc.args, env)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v %v %q: error %v does not name %s", tc.args, tc.env, tc.yaml, err, tc.key)
		}
	}
}

func TestDefaultsValidate(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, k := range c.Keys() {
		if strings.ContainsAny(k, " A-Z") {
			t.Fatalf("key %q", k)
		}
	}
}
