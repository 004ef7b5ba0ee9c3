package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// encodings returns s in every encoding the code writes data in: plain
// (protobuf strings, JSON, leaves), JSON-escaped, base64 at each of the three
// alignments a string can take inside a longer base64 text, and hex.
func encodings(s string) map[string][]byte {
	out := map[string][]byte{"plain": []byte(s), "hex": []byte(hex.EncodeToString([]byte(s)))}
	j, _ := json.Marshal(s)
	out["json"] = bytes.Trim(j, `"`)
	for pad := 0; pad < 3; pad++ {
		enc := base64.StdEncoding.EncodeToString(append(bytes.Repeat([]byte{0}, pad), s...))
		// Only the characters that depend on s alone, whatever precedes it.
		skip := (pad*8 + 5) / 6
		core := enc[skip:]
		core = strings.TrimRight(core, "=")
		if len(core) > 4 {
			core = core[:len(core)-2]
		}
		out[fmt.Sprintf("base64+%d", pad)] = []byte(core)
	}
	return out
}

// findPersonal searches every file under the roots for each secret in each
// encoding, and returns what it found where.
func findPersonal(t *testing.T, secrets []string, roots ...string) []string {
	t.Helper()
	var found []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				for name, enc := range encodings(s) {
					if bytes.Contains(b, enc) {
						found = append(found, fmt.Sprintf("%q (%s) in %s", s, name, path))
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found
}

// Personal fields are sealed before they are stored: no byte of the data
// directory (state, Raft log, snapshots, ledger) nor any proof bundle holds
// them, before or after an erasure. An erasure deletes the subject's key,
// leaves its orders readable with the personal fields shown as erased,
// records itself (and every read of personal data) in the audit log, and
// every proof issued before still verifies. It survives kill -9.
func TestPersonalDataSealedReadRecordedAndErased(t *testing.T) {
	file, tok := makeTokens(t,
		tokenSpec{name: "shop", role: "intake", channels: "douyin"},
		tokenSpec{name: "warehouse", role: "ops"},
		tokenSpec{name: "dpo", role: "compliance"},
	)
	n := newNode(t, "--auth-tokens-file", file, "--ledger-checkpoint-interval", "100ms")
	n.start()
	as := func(name string) []string { return bearerHeader(tok[name]) }
	n.must("PUT", "/v1/skus/PD-1/stock/WH1", map[string]any{"on_hand": 100}, 200, as("warehouse")...)

	suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)
	name, phone, address := "Zhao Xiaoming "+suffix, "1391"+suffix, "上海市黄浦区南京东路"+suffix+"号"
	idNumber, email := "3101011990"+suffix, "zxm"+suffix+"@example.com"
	secrets := []string{name, phone, address, idNumber, email}
	orderOf := func(key, subject, nm, ph, addr string) order {
		body := orderBody(key, "PD-1", 1)
		body["customer"] = map[string]any{"id": subject, "name": nm, "phone": ph, "address": addr, "id_number": idNumber, "email": email}
		var o order
		n.must("POST", "/v1/orders", body, 201, append(as("shop"), "Idempotency-Key", key)...).json(t, &o)
		return o
	}
	var mine []string
	for i := 0; i < 3; i++ {
		mine = append(mine, orderOf(fmt.Sprintf("pd-%d", i), subject0(suffix), name, phone, address).ID)
	}
	other := orderOf("pd-other", "other-"+suffix, "Qian Er", "13700000000", "9 Other Rd")
	n.must("POST", "/v1/orders/"+mine[0]+"/pay", nil, 200, as("warehouse")...)

	type customer struct {
		ID, Name, Phone, Address, Email string
		IDNumber                        string `json:"id_number"`
		Erased, Withheld                bool
	}
	type withCustomer struct{ Customer customer }
	read := func(id string, include bool, who string) customer {
		t.Helper()
		path := "/v1/orders/" + id
		if include {
			path += "?include_personal=true&purpose=delivery"
		}
		var o withCustomer
		n.must("GET", path, nil, 200, as(who)...).json(t, &o)
		return o.Customer
	}
	if c := read(mine[0], false, "warehouse"); !c.Withheld || c.Name != "" {
		t.Fatalf("personal fields without asking: %+v", c)
	}
	// Personal fields are for compliance (and admin): ops gets 403 naming
	// include_personal.
	var refused problem
	n.must("GET", "/v1/orders/"+mine[0]+"?include_personal=true&purpose=delivery", nil, 403, as("warehouse")...).json(t, &refused)
	if len(refused.Errors) != 1 || refused.Errors[0].Field != "include_personal" {
		t.Fatalf("ops reading personal fields: %+v", refused)
	}
	if c := read(mine[0], true, "dpo"); c.Name != name || c.Phone != phone || c.Address != address || c.IDNumber != idNumber || c.Email != email {
		t.Fatalf("personal fields: %+v", c)
	}
	n.must("GET", "/v1/orders/"+mine[0]+"?include_personal=yes", nil, 400, as("warehouse")...)

	// The read is in the audit log, with who read it.
	key := ledgerKey(t, n)
	v, err := checkpoint.NewVerifier(key)
	if err != nil {
		t.Fatal(err)
	}
	bundleOf := func(id string, want func(*ledger.Verified) bool) []byte {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := n.eventually("GET", "/v1/orders/"+id+"/proof", nil, 200, as("dpo")...)
			got, err := ledger.VerifyBundle(r.body, v)
			if err != nil {
				t.Fatalf("bundle of %s: %v", id, err)
			}
			if want(got) {
				return r.body
			}
			if time.Now().After(deadline) {
				t.Fatalf("bundle of %s never held what was expected: %s", id, r.body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	has := func(kind, typ, principal string) func(*ledger.Verified) bool {
		return func(got *ledger.Verified) bool {
			for _, e := range got.Entries {
				if e.Event.Kind == kind && e.Event.Type == typ && e.Event.Principal == principal {
					return true
				}
			}
			return false
		}
	}
	exports := t.TempDir()
	before := bundleOf(mine[0], has(ledger.KindAccess, "personal_read", "dpo"))
	_ = os.WriteFile(filepath.Join(exports, "before.json"), before, 0o600)
	var oldBundle ledger.Bundle
	_ = json.Unmarshal(before, &oldBundle)
	oldCP, err := v.Open([]byte(oldBundle.Checkpoint))
	if err != nil {
		t.Fatal(err)
	}

	// Nothing personal anywhere on disk, in a proof or an export, before erasure.
	r := n.eventually("GET", "/v1/audit/export?subject="+subject0(suffix), nil, 200, as("dpo")...)
	_ = os.WriteFile(filepath.Join(exports, "export-before.jsonl"), r.body, 0o600)
	if found := findPersonal(t, secrets, n.dataDir, exports); len(found) > 0 {
		t.Fatalf("personal data on disk before erasure:\n%s", strings.Join(found, "\n"))
	}

	// Only compliance erases.
	subject := subject0(suffix)
	n.must("POST", "/v1/subjects/"+subject+"/erase", nil, 403, as("warehouse")...)
	var erasure struct {
		Subject, Principal string
		ErasedAt           string   `json:"erased_at"`
		OrderIDs           []string `json:"order_ids"`
	}
	n.must("POST", "/v1/subjects/"+subject+"/erase", nil, 200, as("dpo")...).json(t, &erasure)
	if erasure.Principal != "dpo" || len(erasure.OrderIDs) != 3 || erasure.ErasedAt == "" {
		t.Fatalf("erasure %+v", erasure)
	}
	n.must("POST", "/v1/subjects/"+subject+"/erase", nil, 409, as("dpo")...)
	n.must("POST", "/v1/subjects/nobody-"+suffix+"/erase", nil, 404, as("dpo")...)

	// The orders stay, personal fields erased; another subject's are intact.
	for _, id := range mine {
		if c := read(id, true, "dpo"); !c.Erased || c.Name != "" || c.Phone != "" || c.ID != subject {
			t.Fatalf("order %s after erasure: %+v", id, c)
		}
	}
	if c := read(other.ID, true, "dpo"); c.Name != "Qian Er" {
		t.Fatalf("another subject's order: %+v", c)
	}

	// The erasure is in the log; every proof issued before still verifies,
	// and the new tree is consistent with the old one.
	after := bundleOf(mine[0], has(ledger.KindSubject, "erased", "dpo"))
	_ = os.WriteFile(filepath.Join(exports, "after.json"), after, 0o600)
	r = n.must("GET", "/v1/audit/export?format=csv&subject="+subject, nil, 200, as("dpo")...)
	_ = os.WriteFile(filepath.Join(exports, "export-after.csv"), r.body, 0o600)
	if _, err := ledger.VerifyBundle(before, v); err != nil {
		t.Fatalf("a bundle issued before the erasure: %v", err)
	}
	keyFile := filepath.Join(exports, "log.key")
	_ = os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	if code, out := verifyCLI(t, filepath.Join(exports, "before.json"), "--key", keyFile); code != 0 {
		t.Fatalf("verify of the old bundle: exit %d\n%s", code, out)
	}
	var newBundle ledger.Bundle
	_ = json.Unmarshal(after, &newBundle)
	newCP, err := v.Open([]byte(newBundle.Checkpoint))
	if err != nil {
		t.Fatal(err)
	}
	var cons struct{ Proof []string }
	n.must("GET", fmt.Sprintf("/v1/ledger/consistency?from=%d&to=%d", oldCP.Size, newCP.Size), nil, 200, as("dpo")...).json(t, &cons)
	proof, err := merkle.DecodeProof(cons.Proof)
	if err != nil {
		t.Fatal(err)
	}
	if err := merkle.VerifyConsistency(oldCP.Size, newCP.Size, proof, oldCP.Root, newCP.Root); err != nil {
		t.Fatalf("the log after the erasure is not an extension of the one before: %v", err)
	}

	// kill -9, restart: the key does not come back from the Raft log.
	time.Sleep(500 * time.Millisecond) // the purge runs after the erasure commits
	n.kill()
	n.start()
	if c := read(mine[1], true, "dpo"); !c.Erased {
		t.Fatalf("after kill -9 and restart: %+v", c)
	}
	n.must("POST", "/v1/subjects/"+subject+"/erase", nil, 409, as("dpo")...)
	if found := findPersonal(t, secrets, n.dataDir, exports); len(found) > 0 {
		t.Fatalf("personal data on disk after erasure:\n%s", strings.Join(found, "\n"))
	}
	// A control: the search does find what is there.
	if found := findPersonal(t, []string{"PD-1"}, n.dataDir); len(found) == 0 {
		t.Fatal("the search finds nothing at all: it is broken")
	}
}

// Master key rotation: add a key, restart, rewrap every subject key, drop
// the old key, restart: everything sealed before still opens.
func TestMasterKeyRotation(t *testing.T) {
	keygen := func(id string) string {
		out, err := exec.Command(binary(t), "privacy", "keygen", "--id", id).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	k1, k2 := keygen("k1"), keygen("k2")
	keys := filepath.Join(t.TempDir(), "master.keys")
	_ = os.WriteFile(keys, []byte(k1+"\n"), 0o600)
	n := newNode(t, "--privacy-master-keys-file", keys)
	n.start()
	n.must("PUT", "/v1/skus/ROT-1/stock/WH1", map[string]any{"on_hand": 10}, 200)
	var ids []string
	for i := 0; i < 2; i++ {
		body := orderBody(fmt.Sprintf("rot-%d", i), "ROT-1", 1)
		body["customer"] = map[string]any{"id": fmt.Sprintf("rot-cust-%d", i), "name": fmt.Sprintf("Rotated %d", i)}
		var o order
		n.must("POST", "/v1/orders", body, 201).json(t, &o)
		ids = append(ids, o.ID)
	}
	nameOf := func(id string) string {
		var o struct{ Customer struct{ Name string } }
		n.must("GET", "/v1/orders/"+id+"?include_personal=true", nil, 200).json(t, &o)
		return o.Customer.Name
	}
	var rep struct {
		Active    string `json:"active_master_key"`
		Examined  int
		Rewrapped int
	}
	n.stop()
	_ = os.WriteFile(keys, []byte(k1+"\n"+k2+"\n"), 0o600)
	n.start()
	if nameOf(ids[0]) != "Rotated 0" {
		t.Fatal("sealed data unreadable with both keys")
	}
	n.must("POST", "/v1/admin/rewrap-subject-keys", nil, 200).json(t, &rep)
	if rep.Active != "k2" || rep.Examined != 2 || rep.Rewrapped != 2 {
		t.Fatalf("rewrap: %+v", rep)
	}
	n.must("POST", "/v1/admin/rewrap-subject-keys", nil, 200).json(t, &rep)
	if rep.Rewrapped != 0 {
		t.Fatalf("second rewrap: %+v", rep)
	}
	n.stop()
	_ = os.WriteFile(keys, []byte(k2+"\n"), 0o600)
	n.start()
	for i, id := range ids {
		if got := nameOf(id); got != fmt.Sprintf("Rotated %d", i) {
			t.Fatalf("after dropping k1, order %s: %q", id, got)
		}
	}
}

// Erasure on three nodes: the key goes on every replica, and no node's
// data directory (state, Raft log, snapshots, ledger) nor an audit export
// holds the subject's personal fields, before or after.
func TestClusterErasure(t *testing.T) {
	c := newCluster(t, "--ledger-checkpoint-interval 200ms")
	c.up()
	n1, n2, n3 := c.node(1), c.node(2), c.node(3)
	n1.eventually("PUT", "/v1/skus/CE-1/stock/WH1", map[string]any{"on_hand": 50}, 200)
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)
	name, phone, address := "Sun Wukong "+suffix, "1358"+suffix, "花果山水帘洞"+suffix
	subject := "ce-cust-" + suffix
	var ids []string
	for i, n := range []*node{n1, n2, n3} {
		body := orderBody(fmt.Sprintf("ce-%d", i), "CE-1", 1)
		body["customer"] = map[string]any{"id": subject, "name": name, "phone": phone, "address": address}
		var o order
		n.eventually("POST", "/v1/orders", body, 201, "Idempotency-Key", fmt.Sprintf("ce-%d", i)).json(t, &o)
		ids = append(ids, o.ID)
	}
	var o struct{ Customer struct{ Name string } }
	n3.must("GET", "/v1/orders/"+ids[0]+"?include_personal=true", nil, 200).json(t, &o)
	if o.Customer.Name != name {
		t.Fatalf("personal fields through another node: %+v", o)
	}
	exports := t.TempDir()
	export := func(file string) {
		r := n2.eventually("GET", "/v1/audit/export?subject="+subject, nil, 200)
		_ = os.WriteFile(filepath.Join(exports, file), r.body, 0o600)
	}
	export("before.jsonl")
	dirs := []string{exports}
	for i := 1; i <= 3; i++ {
		dirs = append(dirs, filepath.Join(c.dir, fmt.Sprintf("node%d", i)))
	}
	secrets := []string{name, phone, address}
	if found := findPersonal(t, secrets, dirs...); len(found) > 0 {
		t.Fatalf("personal data on disk:\n%s", strings.Join(found, "\n"))
	}
	var erasure struct {
		OrderIDs []string `json:"order_ids"`
	}
	n2.must("POST", "/v1/subjects/"+subject+"/erase", nil, 200).json(t, &erasure)
	if len(erasure.OrderIDs) != 3 {
		t.Fatalf("erasure listed %v", erasure.OrderIDs)
	}
	for _, n := range []*node{n1, n2, n3} {
		var got struct{ Customer struct{ Erased bool } }
		n.must("GET", "/v1/orders/"+ids[1]+"?include_personal=true", nil, 200).json(t, &got)
		if !got.Customer.Erased {
			t.Fatalf("order through %s after erasure: %+v", n.http, got)
		}
	}
	// Every replica purges after it applies the erasure.
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range []*node{n1, n2, n3} {
		for purgesDone(t, n) < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no purge within 60s of the erasure", n.http)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	export("after.jsonl")
	if found := findPersonal(t, secrets, dirs...); len(found) > 0 {
		t.Fatalf("personal data on disk after erasure:\n%s", strings.Join(found, "\n"))
	}
	// The attacker's scan, on a copy of each replica's data directory, with
	// the cluster's master keys.
	keysFile := filepath.Join(t.TempDir(), "master.keys")
	_ = os.WriteFile(keysFile, []byte(clusterMasterKeys()+"\n"), 0o600)
	aeads := masterAEADs(t, keysFile)
	for i := 1; i <= 3; i++ {
		if found := recoverDataKeys(t, copyDir(t, dirs[i]), aeads, []string{subject}); len(found[subject]) > 0 {
			t.Fatalf("node%d: the erased subject's data key unwraps from %v", i, found[subject])
		}
	}
}

func subject0(suffix string) string { return "cust-" + suffix }
