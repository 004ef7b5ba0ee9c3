package fabrictest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Stub is the shim.ChaincodeStubInterface a chaincode sees when this
// package runs it. The Server builds one per Evaluate or Endorse; NewStub
// builds a free-standing one for unit tests of chaincode logic.
//
// Supported: the arguments and proposal accessors (GetArgs, GetStringArgs,
// GetFunctionAndParameters, GetArgsSlice, GetTxID, GetChannelID,
// GetTxTimestamp, GetCreator, GetSignedProposal, GetTransient, GetBinding,
// GetDecorations), the public world state (GetState, GetMultipleStates,
// PutState, DelState, GetStateByRange, GetStateByPartialCompositeKey),
// composite keys, SetEvent, and StartWriteBatch/FinishWriteBatch (no-ops:
// batching is only a transport optimisation of the real shim).
//
// Not supported, and panicking with a message naming the method: private
// data, rich (CouchDB) queries, paginated queries, key history, key-level
// endorsement policies and chaincode-to-chaincode calls. The embedded
// interface is nil; it only keeps Stub a shim.ChaincodeStubInterface should
// the shim grow methods this package does not know (calling one of those
// panics with a nil dereference).
type Stub struct {
	shim.ChaincodeStubInterface

	txID           string
	channelID      string
	args           [][]byte
	decorations    map[string][]byte
	signedProposal *peer.SignedProposal
	creator        []byte
	transient      map[string][]byte
	binding        []byte
	timestamp      *timestamppb.Timestamp
	event          *peer.ChaincodeEvent
	state          stateAccess
}

// stateAccess is the world state behind a Stub: a plain map for NewStub, a
// read-write-set recording simulation over the committed state for the Server.
type stateAccess interface {
	get(key string) ([]byte, error)
	// put records a write; an empty value is a delete, as in Fabric's
	// write set (KVWrite.IsDelete is len(value) == 0).
	put(key string, value []byte)
	// scan returns the entries with startKey <= key < endKey in key order;
	// an empty endKey is unbounded.
	scan(startKey, endKey string) []*queryresult.KV
}

// NewStub returns a stub for unit tests of chaincode logic, without a
// Server: GetTxID answers txID, GetArgs args (function name first, as the
// client sends it), GetTxTimestamp the time of this call, GetChannelID "".
// Reads and writes go straight to state (created if nil), so unlike a Fabric
// transaction a read after PutState sees the new value. PutState with an
// empty value deletes the key, as Fabric does. There is no creator, transient
// data or signed proposal unless SetCreator/SetTransient provide them.
func NewStub(txID string, args [][]byte, state map[string][]byte) *Stub {
	if state == nil {
		state = make(map[string][]byte)
	}
	return &Stub{
		txID:      txID,
		args:      args,
		timestamp: timestamppb.New(time.Now()),
		state:     mapState(state),
	}
}

// SetCreator sets what GetCreator returns: an msp.SerializedIdentity of
// mspID and the PEM certificate, the form Fabric gives chaincode (and that
// contractapi's client identity parses).
func (s *Stub) SetCreator(mspID string, certPEM []byte) {
	b, err := proto.Marshal(&msp.SerializedIdentity{Mspid: mspID, IdBytes: certPEM})
	if err != nil {
		panic(fmt.Sprintf("fabrictest: marshal creator: %v", err))
	}
	s.creator = b
}

// SetTransient sets what GetTransient returns.
func (s *Stub) SetTransient(transient map[string][]byte) { s.transient = transient }

// Event returns the event the chaincode set with SetEvent, or nil.
func (s *Stub) Event() *peer.ChaincodeEvent { return s.event }

// GetArgs returns the invocation arguments, the function name first.
func (s *Stub) GetArgs() [][]byte { return s.args }

// GetStringArgs returns the invocation arguments as strings.
func (s *Stub) GetStringArgs() []string {
	out := make([]string, len(s.args))
	for i, a := range s.args {
		out[i] = string(a)
	}
	return out
}

// GetFunctionAndParameters returns the first argument as the function name
// and the rest as its parameters.
func (s *Stub) GetFunctionAndParameters() (string, []string) {
	args := s.GetStringArgs()
	if len(args) == 0 {
		return "", []string{}
	}
	return args[0], args[1:]
}

// GetArgsSlice returns the arguments concatenated.
func (s *Stub) GetArgsSlice() ([]byte, error) { return bytes.Join(s.args, nil), nil }

// GetTxID returns the transaction id of the proposal.
func (s *Stub) GetTxID() string { return s.txID }

// GetChannelID returns the channel of the proposal.
func (s *Stub) GetChannelID() string { return s.channelID }

// GetTxTimestamp returns the timestamp the client put in the channel header.
func (s *Stub) GetTxTimestamp() (*timestamppb.Timestamp, error) { return s.timestamp, nil }

// GetCreator returns the serialized identity (msp.SerializedIdentity) of
// the client that signed the proposal.
func (s *Stub) GetCreator() ([]byte, error) { return s.creator, nil }

// GetSignedProposal returns the proposal as the client signed it (nil for
// NewStub).
func (s *Stub) GetSignedProposal() (*peer.SignedProposal, error) { return s.signedProposal, nil }

// GetTransient returns the proposal's transient data, which never reaches
// the ledger.
func (s *Stub) GetTransient() (map[string][]byte, error) { return s.transient, nil }

// GetBinding returns Fabric's proposal binding, SHA-256(nonce || creator ||
// epoch as 8 little-endian bytes); nil for NewStub.
func (s *Stub) GetBinding() ([]byte, error) { return s.binding, nil }

// GetDecorations returns the chaincode input's decorations (none from the
// gateway client).
func (s *Stub) GetDecorations() map[string][]byte { return s.decorations }

// GetState returns the value of key, nil if absent. Under a Server it reads
// the committed state (not this transaction's own writes), as Fabric does.
func (s *Stub) GetState(key string) ([]byte, error) {
	return s.state.get(key)
}

// GetMultipleStates returns the values of keys in order, nil for absent ones.
func (s *Stub) GetMultipleStates(keys ...string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := s.GetState(k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// PutState writes value under key; an empty value deletes the key, as in
// Fabric. Under a Server the write takes effect when the transaction commits.
func (s *Stub) PutState(key string, value []byte) error {
	if key == "" {
		return errors.New("key must not be an empty string")
	}
	s.state.put(key, bytes.Clone(value))
	return nil
}

// DelState deletes key.
func (s *Stub) DelState(key string) error {
	s.state.put(key, nil)
	return nil
}

// GetStateByRange iterates the simple keys startKey <= key < endKey in
// lexical (byte) order; empty bounds are unbounded. Composite keys are
// excluded, as in Fabric. Under a Server the range is re-checked at commit
// (a changed result set invalidates the transaction with
// PHANTOM_READ_CONFLICT).
func (s *Stub) GetStateByRange(startKey, endKey string) (shim.StateQueryIteratorInterface, error) {
	if startKey == "" {
		startKey = "\x01" // above every composite key, as Fabric substitutes
	}
	for _, k := range []string{startKey, endKey} {
		if strings.HasPrefix(k, compositeKeyNamespace) {
			return nil, fmt.Errorf("first character of the key [%s] contains a null character which is not allowed", k)
		}
	}
	return &stateIterator{kvs: s.state.scan(startKey, endKey)}, nil
}

// GetStateByPartialCompositeKey iterates the composite keys of objectType
// whose first attributes are attributes.
func (s *Stub) GetStateByPartialCompositeKey(objectType string, attributes []string) (shim.StateQueryIteratorInterface, error) {
	prefix, err := shim.CreateCompositeKey(objectType, attributes)
	if err != nil {
		return nil, err
	}
	return &stateIterator{kvs: s.state.scan(prefix, prefix+string(maxUnicodeRune))}, nil
}

const (
	compositeKeyNamespace = "\x00"
	maxUnicodeRune        = '\U0010FFFF'
)

// CreateCompositeKey returns Fabric's composite key: 0x00, objectType, then
// each attribute, each component followed by 0x00.
func (s *Stub) CreateCompositeKey(objectType string, attributes []string) (string, error) {
	return shim.CreateCompositeKey(objectType, attributes)
}

// SplitCompositeKey splits a key made by CreateCompositeKey into its object
// type and attributes.
func (s *Stub) SplitCompositeKey(compositeKey string) (string, []string, error) {
	if !strings.HasPrefix(compositeKey, compositeKeyNamespace) || !strings.HasSuffix(compositeKey, "\x00") || len(compositeKey) < 2 {
		return "", nil, fmt.Errorf("%q is not a composite key", compositeKey)
	}
	parts := strings.Split(compositeKey[1:len(compositeKey)-1], "\x00")
	return parts[0], parts[1:], nil
}

// SetEvent sets the transaction's single chaincode event (a later call
// replaces an earlier one). It goes into the endorsed transaction.
func (s *Stub) SetEvent(name string, payload []byte) error {
	if name == "" {
		return errors.New("event name can not be empty string")
	}
	s.event = &peer.ChaincodeEvent{TxId: s.txID, EventName: name, Payload: bytes.Clone(payload)}
	return nil
}

// StartWriteBatch does nothing: writes are already local.
func (s *Stub) StartWriteBatch() {}

// FinishWriteBatch does nothing: writes are already local.
func (s *Stub) FinishWriteBatch() error { return nil }

func unsupported(method string) {
	panic("fabrictest: ChaincodeStubInterface." + method + " is not supported by the simulated stub")
}

// InvokeChaincode is not supported: it panics.
func (s *Stub) InvokeChaincode(string, [][]byte, string) *peer.Response {
	unsupported("InvokeChaincode")
	return nil
}

// SetStateValidationParameter is not supported: it panics.
func (s *Stub) SetStateValidationParameter(string, []byte) error {
	unsupported("SetStateValidationParameter")
	return nil
}

// GetStateValidationParameter is not supported: it panics.
func (s *Stub) GetStateValidationParameter(string) ([]byte, error) {
	unsupported("GetStateValidationParameter")
	return nil, nil
}

// GetStateByRangeWithPagination is not supported: it panics.
func (s *Stub) GetStateByRangeWithPagination(string, string, int32, string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
	unsupported("GetStateByRangeWithPagination")
	return nil, nil, nil
}

// GetStateByPartialCompositeKeyWithPagination is not supported: it panics.
func (s *Stub) GetStateByPartialCompositeKeyWithPagination(string, []string, int32, string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
	unsupported("GetStateByPartialCompositeKeyWithPagination")
	return nil, nil, nil
}

// GetAllStatesCompositeKeyWithPagination is not supported: it panics.
func (s *Stub) GetAllStatesCompositeKeyWithPagination(int32, string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
	unsupported("GetAllStatesCompositeKeyWithPagination")
	return nil, nil, nil
}

// GetQueryResult is not supported: it panics.
func (s *Stub) GetQueryResult(string) (shim.StateQueryIteratorInterface, error) {
	unsupported("GetQueryResult")
	return nil, nil
}

// GetQueryResultWithPagination is not supported: it panics.
func (s *Stub) GetQueryResultWithPagination(string, int32, string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
	unsupported("GetQueryResultWithPagination")
	return nil, nil, nil
}

// GetHistoryForKey is not supported: it panics.
func (s *Stub) GetHistoryForKey(string) (shim.HistoryQueryIteratorInterface, error) {
	unsupported("GetHistoryForKey")
	return nil, nil
}

// GetPrivateData is not supported: it panics.
func (s *Stub) GetPrivateData(string, string) ([]byte, error) {
	unsupported("GetPrivateData")
	return nil, nil
}

// GetMultiplePrivateData is not supported: it panics.
func (s *Stub) GetMultiplePrivateData(string, ...string) ([][]byte, error) {
	unsupported("GetMultiplePrivateData")
	return nil, nil
}

// GetPrivateDataHash is not supported: it panics.
func (s *Stub) GetPrivateDataHash(string, string) ([]byte, error) {
	unsupported("GetPrivateDataHash")
	return nil, nil
}

// PutPrivateData is not supported: it panics.
func (s *Stub) PutPrivateData(string, string, []byte) error {
	unsupported("PutPrivateData")
	return nil
}

// DelPrivateData is not supported: it panics.
func (s *Stub) DelPrivateData(string, string) error {
	unsupported("DelPrivateData")
	return nil
}

// PurgePrivateData is not supported: it panics.
func (s *Stub) PurgePrivateData(string, string) error {
	unsupported("PurgePrivateData")
	return nil
}

// SetPrivateDataValidationParameter is not supported: it panics.
func (s *Stub) SetPrivateDataValidationParameter(string, string, []byte) error {
	unsupported("SetPrivateDataValidationParameter")
	return nil
}

// GetPrivateDataValidationParameter is not supported: it panics.
func (s *Stub) GetPrivateDataValidationParameter(string, string) ([]byte, error) {
	unsupported("GetPrivateDataValidationParameter")
	return nil, nil
}

// GetPrivateDataByRange is not supported: it panics.
func (s *Stub) GetPrivateDataByRange(string, string, string) (shim.StateQueryIteratorInterface, error) {
	unsupported("GetPrivateDataByRange")
	return nil, nil
}

// GetPrivateDataByPartialCompositeKey is not supported: it panics.
func (s *Stub) GetPrivateDataByPartialCompositeKey(string, string, []string) (shim.StateQueryIteratorInterface, error) {
	unsupported("GetPrivateDataByPartialCompositeKey")
	return nil, nil
}

// GetPrivateDataQueryResult is not supported: it panics.
func (s *Stub) GetPrivateDataQueryResult(string, string) (shim.StateQueryIteratorInterface, error) {
	unsupported("GetPrivateDataQueryResult")
	return nil, nil
}

// stateIterator iterates a result set fixed when the query ran.
type stateIterator struct {
	kvs    []*queryresult.KV
	next   int
	closed bool
}

func (it *stateIterator) HasNext() bool { return !it.closed && it.next < len(it.kvs) }

func (it *stateIterator) Next() (*queryresult.KV, error) {
	if !it.HasNext() {
		return nil, errors.New("no such key")
	}
	kv := it.kvs[it.next]
	it.next++
	return kv, nil
}

func (it *stateIterator) Close() error {
	it.closed = true
	return nil
}

// mapState is NewStub's state: a map read and written directly.
type mapState map[string][]byte

func (m mapState) get(key string) ([]byte, error) { return bytes.Clone(m[key]), nil }

func (m mapState) put(key string, value []byte) {
	if len(value) == 0 {
		delete(m, key)
		return
	}
	m[key] = value
}

func (m mapState) scan(startKey, endKey string) []*queryresult.KV {
	var out []*queryresult.KV
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if inRange(k, startKey, endKey) {
			out = append(out, &queryresult.KV{Key: k, Value: bytes.Clone(m[k])})
		}
	}
	return out
}

func inRange(key, startKey, endKey string) bool {
	return key >= startKey && (endKey == "" || key < endKey)
}

// proposalBinding is Fabric's binding of a proposal: SHA-256 over the
// nonce, the creator and the epoch as 8 little-endian bytes.
func proposalBinding(nonce, creator []byte, epoch uint64) []byte {
	h := sha256.New()
	h.Write(nonce)
	h.Write(creator)
	_ = binary.Write(h, binary.LittleEndian, epoch)
	return h.Sum(nil)
}
