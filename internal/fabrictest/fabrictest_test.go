package fabrictest_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/internal/fabrictest"
)

// counter is the chaincode under test: named counters in the world state.
type counter struct {
	contractapi.Contract
}

func (c *counter) Incr(ctx contractapi.TransactionContextInterface, key string) (int, error) {
	n, err := c.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	n++
	if err := ctx.GetStub().PutState(key, []byte(strconv.Itoa(n))); err != nil {
		return 0, err
	}
	if err := ctx.GetStub().SetEvent("incremented", []byte(key)); err != nil {
		return 0, err
	}
	return n, nil
}

func (c *counter) Get(ctx contractapi.TransactionContextInterface, key string) (int, error) {
	b, err := ctx.GetStub().GetState(key)
	if err != nil || b == nil {
		return 0, err
	}
	return strconv.Atoi(string(b))
}

// Total sums every counter with a range query.
func (c *counter) Total(ctx contractapi.TransactionContextInterface) (int, error) {
	it, err := ctx.GetStub().GetStateByRange("", "")
	if err != nil {
		return 0, err
	}
	defer it.Close()
	total := 0
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(string(kv.GetValue()))
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func (c *counter) Fail(ctx contractapi.TransactionContextInterface, msg string) error {
	return errors.New(msg)
}

func (c *counter) Boom(ctx contractapi.TransactionContextInterface) error {
	panic("boom")
}

func (c *counter) Whoami(ctx contractapi.TransactionContextInterface) (string, error) {
	return ctx.GetClientIdentity().GetMSPID()
}

// SecretLen returns the length of the transient "secret".
func (c *counter) SecretLen(ctx contractapi.TransactionContextInterface) (int, error) {
	t, err := ctx.GetStub().GetTransient()
	return len(t["secret"]), err
}

type harness struct {
	srv      *fabrictest.Server
	gw       *client.Gateway
	contract *client.Contract
}

// start serves a Server with the counter chaincode on a loopback TCP
// listener and connects the real client to it.
func start(t *testing.T) *harness {
	t.Helper()
	srv := fabrictest.New("mychannel")
	cc, err := contractapi.NewChaincode(&counter{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Deploy("counter", cc)

	addr, stop, err := srv.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	id, sign := newIdentity(t, "Org1MSP")
	gw, err := client.Connect(id, client.WithSign(sign), client.WithClientConnection(conn),
		client.WithEvaluateTimeout(10*time.Second), client.WithEndorseTimeout(10*time.Second),
		client.WithSubmitTimeout(10*time.Second), client.WithCommitStatusTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	return &harness{srv: srv, gw: gw, contract: gw.GetNetwork("mychannel").GetContract("counter")}
}

func newIdentity(t *testing.T, mspID string) (*identity.X509Identity, identity.Sign) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "User1", Organization: []string{mspID}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewX509Identity(mspID, cert)
	if err != nil {
		t.Fatal(err)
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		t.Fatal(err)
	}
	return id, sign
}

func TestSubmitEvaluateCommit(t *testing.T) {
	h := start(t)
	if got := h.srv.Height(); got != 1 {
		t.Fatalf("Height of a new ledger = %d, want 1 (genesis)", got)
	}
	for want := 1; want <= 2; want++ {
		res, err := h.contract.SubmitTransaction("Incr", "a")
		if err != nil {
			t.Fatal(err)
		}
		if string(res) != strconv.Itoa(want) {
			t.Fatalf("Incr = %q, want %d", res, want)
		}
	}
	res, err := h.contract.EvaluateTransaction("Get", "a")
	if err != nil {
		t.Fatal(err)
	}
	if string(res) != "2" {
		t.Fatalf("Get = %q, want 2", res)
	}
	if got := h.srv.Height(); got != 3 {
		t.Fatalf("Height = %d, want 3", got)
	}

	var lastBlock uint64
	for i, want := range []string{"3", "4"} {
		res, commit, err := h.contract.SubmitAsync("Incr", client.WithArguments("a"))
		if err != nil {
			t.Fatal(err)
		}
		if string(res) != want {
			t.Fatalf("SubmitAsync result %q, want %s", res, want)
		}
		st, err := commit.Status()
		if err != nil {
			t.Fatal(err)
		}
		if !st.Successful || st.Code != peer.TxValidationCode_VALID || st.TransactionID != commit.TransactionID() {
			t.Fatalf("status %+v", st)
		}
		if i > 0 && st.BlockNumber != lastBlock+1 {
			t.Fatalf("block %d after block %d", st.BlockNumber, lastBlock)
		}
		if st.BlockNumber != h.srv.Height()-1 {
			t.Fatalf("block %d, height %d", st.BlockNumber, h.srv.Height())
		}
		lastBlock = st.BlockNumber
	}
	if lastBlock != 4 {
		t.Fatalf("fourth transaction in block %d, want 4", lastBlock)
	}
	if got := string(h.srv.GetState("counter", "a")); got != "4" {
		t.Fatalf("committed a = %q", got)
	}

	// Evaluate reads, never writes, and commits nothing.
	if _, err := h.contract.EvaluateTransaction("Incr", "a"); err != nil {
		t.Fatal(err)
	}
	if got := string(h.srv.GetState("counter", "a")); got != "4" || h.srv.Height() != 5 {
		t.Fatalf("after evaluating Incr: a = %q, height %d", got, h.srv.Height())
	}

	// The chaincode sees the client's identity through GetCreator.
	who, err := h.contract.EvaluateTransaction("Whoami")
	if err != nil {
		t.Fatal(err)
	}
	if string(who) != "Org1MSP" {
		t.Fatalf("Whoami = %q", who)
	}
}

func TestChaincodeErrors(t *testing.T) {
	h := start(t)

	_, err := h.contract.SubmitTransaction("Fail", "out of stock")
	var endorseErr *client.EndorseError
	if !errors.As(err, &endorseErr) {
		t.Fatalf("Submit of a failing transaction: %v (%T), want an EndorseError", err, err)
	}
	if status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "chaincode response 500, out of stock") {
		t.Fatalf("endorse error: %v", err)
	}
	if d := endorseErr.Details(); len(d) != 1 || d[0].GetMessage() != "chaincode response 500, out of stock" {
		t.Fatalf("details %v", d)
	}
	if h.srv.Height() != 1 {
		t.Fatalf("a failed endorsement committed a block")
	}

	_, err = h.contract.EvaluateTransaction("Fail", "nope")
	if status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "evaluate call to endorser returned error: chaincode response 500, nope") {
		t.Fatalf("evaluate error: %v", err)
	}

	_, err = h.contract.SubmitTransaction("Boom")
	if status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "chaincode stream terminated") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panicking chaincode: %v", err)
	}

	_, err = h.gw.GetNetwork("mychannel").GetContract("nosuch").EvaluateTransaction("Get", "a")
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("unknown chaincode: %v", err)
	}
	_, err = h.gw.GetNetwork("otherchannel").GetContract("counter").EvaluateTransaction("Get", "a")
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown channel: %v", err)
	}
}

func TestReadConflicts(t *testing.T) {
	h := start(t)
	endorse := func(name string, args ...string) *client.Transaction {
		t.Helper()
		p, err := h.contract.NewProposal(name, client.WithArguments(args...))
		if err != nil {
			t.Fatal(err)
		}
		tx, err := p.Endorse()
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	submit := func(tx *client.Transaction) *client.Status {
		t.Helper()
		commit, err := tx.Submit()
		if err != nil {
			t.Fatal(err)
		}
		st, err := commit.Status()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	// Two increments endorsed against the same state: the second to commit
	// read a version that no longer exists.
	first, second := endorse("Incr", "k"), endorse("Incr", "k")
	if string(first.Result()) != "1" || string(second.Result()) != "1" {
		t.Fatalf("results %q %q", first.Result(), second.Result())
	}
	if st := submit(first); !st.Successful || st.BlockNumber != 1 {
		t.Fatalf("first: %+v", st)
	}
	st := submit(second)
	if st.Successful || st.Code != peer.TxValidationCode_MVCC_READ_CONFLICT || st.BlockNumber != 2 {
		t.Fatalf("second: %+v, want MVCC_READ_CONFLICT in block 2", st)
	}
	if got := string(h.srv.GetState("counter", "k")); got != "1" {
		t.Fatalf("k = %q after a conflicting increment", got)
	}

	// A range read is invalidated by a key appearing in its range.
	total := endorse("Total")
	if st := submit(endorse("Incr", "other")); !st.Successful {
		t.Fatalf("Incr other: %+v", st)
	}
	if st := submit(total); st.Code != peer.TxValidationCode_PHANTOM_READ_CONFLICT {
		t.Fatalf("Total: %+v, want PHANTOM_READ_CONFLICT", st)
	}

	// A transaction is committed once.
	tx := endorse("Incr", "k")
	submit(tx)
	if _, err := tx.Submit(); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second submit: %v", err)
	}
	if h.srv.Height() != 6 {
		t.Fatalf("height %d, want 6", h.srv.Height())
	}
}

func TestUnavailable(t *testing.T) {
	h := start(t)
	h.srv.SetUnavailable(true)
	if _, err := h.contract.EvaluateTransaction("Get", "a"); status.Code(err) != codes.Unavailable {
		t.Fatalf("evaluate while down: %v", err)
	}
	if _, err := h.contract.SubmitTransaction("Incr", "a"); status.Code(err) != codes.Unavailable {
		t.Fatalf("submit while down: %v", err)
	}
	h.srv.SetUnavailable(false)

	// A transaction endorsed before an outage is submitted after it.
	p, err := h.contract.NewProposal("Incr", client.WithArguments("a"))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := p.Endorse()
	if err != nil {
		t.Fatal(err)
	}
	h.srv.SetUnavailable(true)
	if _, err := tx.Submit(); status.Code(err) != codes.Unavailable {
		t.Fatalf("submit while down: %v", err)
	}
	h.srv.SetUnavailable(false)
	commit, err := tx.Submit()
	if err != nil {
		t.Fatal(err)
	}
	h.srv.SetUnavailable(true)
	if _, err := commit.Status(); status.Code(err) != codes.Unavailable {
		t.Fatalf("commit status while down: %v", err)
	}
	h.srv.SetUnavailable(false)
	st, err := commit.Status()
	if err != nil || !st.Successful || st.BlockNumber != 1 {
		t.Fatalf("status %+v, %v", st, err)
	}
	if res, err := h.contract.EvaluateTransaction("Get", "a"); err != nil || string(res) != "1" {
		t.Fatalf("Get = %q, %v", res, err)
	}
}

// TestPreparedTransaction takes apart the envelope Endorse returns, as an
// orderer and a committing peer would.
func TestPreparedTransaction(t *testing.T) {
	h := start(t)
	secret := []byte("s3cret-transient-value")
	p, err := h.contract.NewProposal("SecretLen", client.WithTransient(map[string][]byte{"secret": secret}))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := p.Endorse()
	if err != nil {
		t.Fatal(err)
	}
	if string(tx.Result()) != strconv.Itoa(len(secret)) {
		t.Fatalf("SecretLen = %q", tx.Result())
	}
	env := preparedEnvelope(t, tx)
	if bytes.Contains(env.GetPayload(), secret) {
		t.Fatal("transient data reached the transaction")
	}

	p, err = h.contract.NewProposal("Incr", client.WithArguments("x"))
	if err != nil {
		t.Fatal(err)
	}
	tx, err = p.Endorse()
	if err != nil {
		t.Fatal(err)
	}
	env = preparedEnvelope(t, tx)
	if len(env.GetSignature()) != 0 {
		t.Fatal("the gateway signed the envelope")
	}
	payload := &common.Payload{}
	mustUnmarshal(t, env.GetPayload(), payload)
	chdr := &common.ChannelHeader{}
	mustUnmarshal(t, payload.GetHeader().GetChannelHeader(), chdr)
	if chdr.GetTxId() != tx.TransactionID() || chdr.GetChannelId() != "mychannel" || common.HeaderType(chdr.GetType()) != common.HeaderType_ENDORSER_TRANSACTION {
		t.Fatalf("channel header %v", chdr)
	}
	transaction := &peer.Transaction{}
	mustUnmarshal(t, payload.GetData(), transaction)
	if len(transaction.GetActions()) != 1 {
		t.Fatalf("%d actions", len(transaction.GetActions()))
	}
	action := transaction.GetActions()[0]
	if !bytes.Equal(action.GetHeader(), payload.GetHeader().GetSignatureHeader()) {
		t.Fatal("action header is not the proposal's signature header")
	}
	actionPayload := &peer.ChaincodeActionPayload{}
	mustUnmarshal(t, action.GetPayload(), actionPayload)
	prp := &peer.ProposalResponsePayload{}
	mustUnmarshal(t, actionPayload.GetAction().GetProposalResponsePayload(), prp)
	h256 := sha256.New()
	h256.Write(payload.GetHeader().GetChannelHeader())
	h256.Write(payload.GetHeader().GetSignatureHeader())
	h256.Write(actionPayload.GetChaincodeProposalPayload())
	if !bytes.Equal(prp.GetProposalHash(), h256.Sum(nil)) {
		t.Fatal("proposal hash is not SHA-256(channel header || signature header || proposal payload)")
	}
	endorsements := actionPayload.GetAction().GetEndorsements()
	if len(endorsements) != 1 {
		t.Fatalf("%d endorsements", len(endorsements))
	}
	verifyEndorsement(t, endorsements[0], actionPayload.GetAction().GetProposalResponsePayload())

	ccAction := &peer.ChaincodeAction{}
	mustUnmarshal(t, prp.GetExtension(), ccAction)
	if ccAction.GetChaincodeId().GetName() != "counter" || string(ccAction.GetResponse().GetPayload()) != "1" || ccAction.GetResponse().GetStatus() != 200 {
		t.Fatalf("chaincode action %v", ccAction)
	}
	event := &peer.ChaincodeEvent{}
	mustUnmarshal(t, ccAction.GetEvents(), event)
	if event.GetEventName() != "incremented" || string(event.GetPayload()) != "x" || event.GetChaincodeId() != "counter" || event.GetTxId() != tx.TransactionID() {
		t.Fatalf("event %v", event)
	}
	txrw := &rwset.TxReadWriteSet{}
	mustUnmarshal(t, ccAction.GetResults(), txrw)
	if len(txrw.GetNsRwset()) != 1 || txrw.GetNsRwset()[0].GetNamespace() != "counter" {
		t.Fatalf("rwset %v", txrw)
	}
	kv := &kvrwset.KVRWSet{}
	mustUnmarshal(t, txrw.GetNsRwset()[0].GetRwset(), kv)
	if len(kv.GetReads()) != 1 || kv.GetReads()[0].GetKey() != "x" || kv.GetReads()[0].GetVersion() != nil {
		t.Fatalf("reads %v", kv.GetReads())
	}
	if len(kv.GetWrites()) != 1 || kv.GetWrites()[0].GetKey() != "x" || string(kv.GetWrites()[0].GetValue()) != "1" {
		t.Fatalf("writes %v", kv.GetWrites())
	}
}

func preparedEnvelope(t *testing.T, tx *client.Transaction) *common.Envelope {
	t.Helper()
	b, err := tx.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	prepared := &gateway.PreparedTransaction{}
	mustUnmarshal(t, b, prepared)
	return prepared.GetEnvelope()
}

func verifyEndorsement(t *testing.T, e *peer.Endorsement, responsePayload []byte) {
	t.Helper()
	id := &msp.SerializedIdentity{}
	mustUnmarshal(t, e.GetEndorser(), id)
	block, _ := pem.Decode(id.GetIdBytes())
	if block == nil {
		t.Fatal("endorser holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(append(append([]byte{}, responsePayload...), e.GetEndorser()...))
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], e.GetSignature()) {
		t.Fatal("endorsement signature does not verify")
	}
}

func mustUnmarshal(t *testing.T, b []byte, m proto.Message) {
	t.Helper()
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("unmarshal %T: %v", m, err)
	}
}

// TestForgedSignature: the gateway checks the client's signatures.
func TestForgedSignature(t *testing.T) {
	h := start(t)
	p, err := h.contract.NewProposal("Incr", client.WithArguments("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := h.gw.NewSignedProposal(b, []byte("not a signature"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forged.Endorse(); status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("forged proposal: %v", err)
	}
	tx, err := p.Endorse()
	if err != nil {
		t.Fatal(err)
	}
	b, err = tx.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	forgedTx, err := h.gw.NewSignedTransaction(b, []byte("not a signature"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forgedTx.Submit(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("forged envelope: %v", err)
	}
	if _, err := tx.Submit(); err != nil {
		t.Fatalf("genuine envelope after a forged one: %v", err)
	}
}

func TestStub(t *testing.T) {
	state := map[string][]byte{}
	stub := fabrictest.NewStub("tx1", [][]byte{[]byte("Put"), []byte("a"), []byte("b")}, state)
	var _ shim.ChaincodeStubInterface = stub

	fn, params := stub.GetFunctionAndParameters()
	if fn != "Put" || len(params) != 2 || params[1] != "b" || stub.GetTxID() != "tx1" {
		t.Fatalf("function %q params %q", fn, params)
	}
	ck, err := stub.CreateCompositeKey("order", []string{"SKU-1", "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if ck != "\x00order\x00SKU-1\x00o1\x00" {
		t.Fatalf("composite key %q", ck)
	}
	typ, attrs, err := stub.SplitCompositeKey(ck)
	if err != nil || typ != "order" || len(attrs) != 2 || attrs[0] != "SKU-1" || attrs[1] != "o1" {
		t.Fatalf("split: %q %q %v", typ, attrs, err)
	}
	ck2, _ := stub.CreateCompositeKey("order", []string{"SKU-1", "o2"})
	ck3, _ := stub.CreateCompositeKey("order", []string{"SKU-2", "o3"})
	for k, v := range map[string]string{ck: "1", ck2: "2", ck3: "3", "a": "A", "b": "B", "c": "C"} {
		if err := stub.PutState(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if string(state["a"]) != "A" {
		t.Fatal("PutState did not write through to the map")
	}

	keys := func(it shim.StateQueryIteratorInterface, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		var out []string
		for it.HasNext() {
			kv, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, kv.GetKey())
		}
		return out
	}
	if got := keys(stub.GetStateByPartialCompositeKey("order", []string{"SKU-1"})); len(got) != 2 || got[0] != ck || got[1] != ck2 {
		t.Fatalf("partial composite key query: %q", got)
	}
	if got := keys(stub.GetStateByRange("", "")); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("range over everything: %q (composite keys must be excluded)", got)
	}
	if got := keys(stub.GetStateByRange("b", "c")); strings.Join(got, ",") != "b" {
		t.Fatalf("range [b, c): %q", got)
	}
	if err := stub.DelState("a"); err != nil {
		t.Fatal(err)
	}
	if err := stub.PutState("b", nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := stub.GetState("a"); v != nil || state["b"] != nil {
		t.Fatal("DelState, or PutState of an empty value, did not delete")
	}
	if err := stub.SetEvent("done", []byte("p")); err != nil || stub.Event().GetEventName() != "done" {
		t.Fatalf("event %v, %v", stub.Event(), err)
	}

	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "GetQueryResult") {
			t.Fatalf("unsupported method: recovered %v", r)
		}
	}()
	_, _ = stub.GetQueryResult(`{"selector":{}}`)
}

// TestStubWithContractAPI runs chaincode logic directly on a NewStub.
func TestStubWithContractAPI(t *testing.T) {
	cc, err := contractapi.NewChaincode(&counter{})
	if err != nil {
		t.Fatal(err)
	}
	state := map[string][]byte{}
	for i := 1; i <= 3; i++ {
		resp := cc.Invoke(fabrictest.NewStub("tx"+strconv.Itoa(i), [][]byte{[]byte("Incr"), []byte("a")}, state))
		if resp.GetStatus() != shim.OK || string(resp.GetPayload()) != strconv.Itoa(i) {
			t.Fatalf("Incr %d: %v", i, resp)
		}
	}
	resp := cc.Invoke(fabrictest.NewStub("tx", [][]byte{[]byte("Fail"), []byte("no")}, state))
	if resp.GetStatus() != shim.ERROR || resp.GetMessage() != "no" {
		t.Fatalf("Fail: %v", resp)
	}
}

// TestCommitStatusWaits: CommitStatus for an endorsed transaction waits for
// its submission, bounded by the caller's context; an unknown one is
// NotFound.
func TestCommitStatusWaits(t *testing.T) {
	h := start(t)
	p, err := h.contract.NewProposal("Incr", client.WithArguments("w"))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := p.Endorse()
	if err != nil {
		t.Fatal(err)
	}
	commitFor := func(txID string) *client.Commit {
		t.Helper()
		creator, err := proto.Marshal(&msp.SerializedIdentity{Mspid: h.gw.Identity().MspID(), IdBytes: h.gw.Identity().Credentials()})
		if err != nil {
			t.Fatal(err)
		}
		req, err := proto.Marshal(&gateway.CommitStatusRequest{ChannelId: "mychannel", TransactionId: txID, Identity: creator})
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.Marshal(&gateway.SignedCommitStatusRequest{Request: req})
		if err != nil {
			t.Fatal(err)
		}
		commit, err := h.gw.NewCommit(b)
		if err != nil {
			t.Fatal(err)
		}
		return commit
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := commitFor(tx.TransactionID()).StatusWithContext(ctx); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("status of an unsubmitted transaction: %v", err)
	}
	if _, err := commitFor("nosuchtx").Status(); status.Code(err) != codes.NotFound {
		t.Fatalf("status of an unknown transaction: %v", err)
	}

	type result struct {
		st  *client.Status
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := commitFor(tx.TransactionID()).Status()
		done <- result{st, err}
	}()
	time.Sleep(20 * time.Millisecond)
	if _, err := tx.Submit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || !r.st.Successful || r.st.BlockNumber != 1 {
		t.Fatalf("status %+v, %v", r.st, r.err)
	}
}

// TestConcurrentSubmits: concurrent clients on distinct keys all commit,
// each in its own block.
func TestConcurrentSubmits(t *testing.T) {
	h := start(t)
	const n = 16
	blocks := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, commit, err := h.contract.SubmitAsync("Incr", client.WithArguments("key"+strconv.Itoa(i)))
			if err != nil {
				t.Error(err)
				return
			}
			st, err := commit.Status()
			if err != nil || !st.Successful {
				t.Errorf("status %+v, %v", st, err)
				return
			}
			blocks[i] = st.BlockNumber
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, b := range blocks {
		if b < 1 || b > n || seen[b] {
			t.Fatalf("blocks %v", blocks)
		}
		seen[b] = true
	}
	if h.srv.Height() != n+1 {
		t.Fatalf("height %d", h.srv.Height())
	}
	res, err := h.contract.EvaluateTransaction("Total")
	if err != nil || string(res) != strconv.Itoa(n) {
		t.Fatalf("Total = %q, %v", res, err)
	}
}
