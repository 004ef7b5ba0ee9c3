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

// alerts.stages: every stage limit is checked, each error naming the
// stage's field; the list is read from YAML, the environment or a flag.
func TestAlertStages(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		env        []string
		key        string // "" valid
	}{
		{name: "defaults"},
		{name: "yaml", yaml: "alerts:\n  stages:\n    - {status: paid, limit: 45m, name: slow-pick}\n    - {status: on_hold, limit: 1h}\n"},
		{name: "off", yaml: "alerts:\n  stages: []\n"},
		{name: "env", env: []string{"ORDERGRID_ALERTS_STAGES=paid=10m:p, shipped=24h"}},
		{name: "unknown status", yaml: "alerts:\n  stages:\n    - {status: lost, limit: 1h}\n", key: "alerts.stages[0].status"},
		{name: "closed status", yaml: "alerts:\n  stages:\n    - {status: paid, limit: 1h}\n    - {status: delivered, limit: 1h}\n", key: "alerts.stages[1].status"},
		{name: "pending payment", yaml: "alerts:\n  stages:\n    - {status: pending_payment, limit: 1h}\n", key: "alerts.stages[0].status"},
		{name: "twice", yaml: "alerts:\n  stages:\n    - {status: paid, limit: 1h}\n    - {status: paid, limit: 2h}\n", key: "alerts.stages[1].status"},
		{name: "short limit", yaml: "alerts:\n  stages:\n    - {status: paid, limit: 500ms}\n", key: "alerts.stages[0].limit"},
		{name: "no limit", yaml: "alerts:\n  stages:\n    - {status: paid}\n", key: "alerts.stages[0].limit"},
		{name: "bad name", yaml: "alerts:\n  stages:\n    - {status: paid, limit: 1h, name: 'a,b'}\n", key: "alerts.stages[0].name"},
		{name: "bad env", env: []string{"ORDERGRID_ALERTS_STAGES=paid:10m"}, key: "alerts.stages"},
		{name: "bad env limit", env: []string{"ORDERGRID_ALERTS_STAGES=paid=soon"}, key: "alerts.stages"},
	} {
		env := tc.env
		if tc.yaml != "" {
			f := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(f, []byte(tc.yaml), 0o644)
			env = append(env, "ORDERGRID_CONFIG="+f)
		}
		c, err := Load(nil, env)
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.key != "" && (err == nil || !strings.Contains(err.Error(), tc.key)):
			t.Errorf("%s: error %v does not name %s", tc.name, err, tc.key)
		}
		switch tc.name {
		case "defaults":
			if len(c.Alerts.Stages) != len(DefaultAlertStages()) || c.Alerts.Stages[0].Status != "paid" || c.Alerts.Stages[0].Limit != 30*time.Minute {
				t.Errorf("defaults: %+v", c.Alerts.Stages)
			}
		case "yaml":
			if len(c.Alerts.Stages) != 2 || c.Alerts.Stages[0].Limit != 45*time.Minute || c.Alerts.Stages[0].Name != "slow-pick" {
				t.Errorf("yaml: %+v", c.Alerts.Stages)
			}
		case "off":
			if len(c.Alerts.Stages) != 0 {
				t.Errorf("off: %+v", c.Alerts.Stages)
			}
		case "env":
			want := []AlertStage{{Status: "paid", Limit: 10 * time.Minute, Name: "p"}, {Status: "shipped", Limit: 24 * time.Hour}}
			if len(c.Alerts.Stages) != 2 || c.Alerts.Stages[0] != want[0] || c.Alerts.Stages[1] != want[1] {
				t.Errorf("env: %+v", c.Alerts.Stages)
			}
		}
	}
}
