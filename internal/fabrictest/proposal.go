package fabrictest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
)

// invocation is a signed proposal taken apart.
type invocation struct {
	signed        *peer.SignedProposal
	header        *common.Header
	channelHeader *common.ChannelHeader
	sigHeader     *common.SignatureHeader
	payload       *peer.ChaincodeProposalPayload
	input         *peer.ChaincodeInput
	chaincode     string
	mspID         string
}

// errAccessDenied marks a proposal whose signature does not verify.
var errAccessDenied = errors.New("access denied")

// parseProposal unpacks a SignedProposal as a peer does: Proposal, Header,
// ChannelHeader (an endorser transaction), SignatureHeader (creator and
// nonce; the tx id must be hex(SHA-256(nonce || creator))),
// ChaincodeProposalPayload and ChaincodeInvocationSpec, and checks the
// client's signature over the proposal bytes.
func parseProposal(sp *peer.SignedProposal) (*invocation, error) {
	if len(sp.GetProposalBytes()) == 0 {
		return nil, errors.New("missing proposal")
	}
	prop := &peer.Proposal{}
	if err := proto.Unmarshal(sp.GetProposalBytes(), prop); err != nil {
		return nil, fmt.Errorf("proposal: %w", err)
	}
	inv := &invocation{
		signed:        sp,
		header:        &common.Header{},
		channelHeader: &common.ChannelHeader{},
		sigHeader:     &common.SignatureHeader{},
		payload:       &peer.ChaincodeProposalPayload{},
	}
	if err := proto.Unmarshal(prop.GetHeader(), inv.header); err != nil {
		return nil, fmt.Errorf("proposal header: %w", err)
	}
	if err := proto.Unmarshal(inv.header.GetChannelHeader(), inv.channelHeader); err != nil {
		return nil, fmt.Errorf("channel header: %w", err)
	}
	if t := common.HeaderType(inv.channelHeader.GetType()); t != common.HeaderType_ENDORSER_TRANSACTION {
		return nil, fmt.Errorf("channel header type %s, want %s", t, common.HeaderType_ENDORSER_TRANSACTION)
	}
	if err := proto.Unmarshal(inv.header.GetSignatureHeader(), inv.sigHeader); err != nil {
		return nil, fmt.Errorf("signature header: %w", err)
	}
	creator, nonce := inv.sigHeader.GetCreator(), inv.sigHeader.GetNonce()
	if len(creator) == 0 || len(nonce) == 0 {
		return nil, errors.New("signature header lacks creator or nonce")
	}
	want := sha256.Sum256(append(append([]byte{}, nonce...), creator...))
	if inv.channelHeader.GetTxId() != hex.EncodeToString(want[:]) {
		return nil, fmt.Errorf("transaction id %q is not hex(SHA-256(nonce || creator))", inv.channelHeader.GetTxId())
	}
	if err := proto.Unmarshal(prop.GetPayload(), inv.payload); err != nil {
		return nil, fmt.Errorf("chaincode proposal payload: %w", err)
	}
	spec := &peer.ChaincodeInvocationSpec{}
	if err := proto.Unmarshal(inv.payload.GetInput(), spec); err != nil {
		return nil, fmt.Errorf("chaincode invocation spec: %w", err)
	}
	inv.input = spec.GetChaincodeSpec().GetInput()
	inv.chaincode = spec.GetChaincodeSpec().GetChaincodeId().GetName()
	if inv.chaincode == "" {
		return nil, errors.New("no chaincode name in the proposal")
	}
	mspID, err := verifySignature(creator, sp.GetProposalBytes(), sp.GetSignature())
	inv.mspID = mspID
	if err != nil {
		return inv, fmt.Errorf("%w: channel [%s] creator org [%s]: %v", errAccessDenied, inv.channelHeader.GetChannelId(), mspID, err)
	}
	return inv, nil
}

// stub returns the Stub the chaincode runs with for this invocation.
func (inv *invocation) stub(state stateAccess) *Stub {
	return &Stub{
		txID:           inv.channelHeader.GetTxId(),
		channelID:      inv.channelHeader.GetChannelId(),
		args:           inv.input.GetArgs(),
		decorations:    inv.input.GetDecorations(),
		signedProposal: inv.signed,
		creator:        inv.sigHeader.GetCreator(),
		transient:      inv.payload.GetTransientMap(),
		binding:        proposalBinding(inv.sigHeader.GetNonce(), inv.sigHeader.GetCreator(), inv.channelHeader.GetEpoch()),
		timestamp:      inv.channelHeader.GetTimestamp(),
		state:          state,
	}
}

// verifySignature checks sig over msg against the certificate in creator
// (an msp.SerializedIdentity), the way the client signs: ECDSA over the
// SHA-256 digest (SHA-384 also accepted) or Ed25519 over the message. The
// certificate itself is not validated against any CA: there is no MSP.
// It returns the creator's MSP id.
func verifySignature(creator, msg, sig []byte) (string, error) {
	id := &msp.SerializedIdentity{}
	if err := proto.Unmarshal(creator, id); err != nil {
		return "", fmt.Errorf("creator: %w", err)
	}
	if len(sig) == 0 {
		return id.GetMspid(), errors.New("not signed")
	}
	block, _ := pem.Decode(id.GetIdBytes())
	if block == nil {
		return id.GetMspid(), errors.New("creator holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return id.GetMspid(), fmt.Errorf("creator certificate: %w", err)
	}
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		d256, d384 := sha256.Sum256(msg), sha512.Sum384(msg)
		if ecdsa.VerifyASN1(pub, d256[:], sig) || ecdsa.VerifyASN1(pub, d384[:], sig) {
			return id.GetMspid(), nil
		}
	case ed25519.PublicKey:
		if ed25519.Verify(pub, msg, sig) {
			return id.GetMspid(), nil
		}
	default:
		return id.GetMspid(), fmt.Errorf("unsupported public key type %T", pub)
	}
	return id.GetMspid(), errors.New("signature does not verify against the creator's certificate")
}

// endorser is the simulated peer's signing identity.
type endorser struct {
	key        *ecdsa.PrivateKey
	serialized []byte // msp.SerializedIdentity
}

const (
	peerMSPID   = "GatewaySimMSP"
	peerAddress = "fabrictest"
)

func newEndorser() *endorser {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("fabrictest: peer key: %v", err))
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "peer0." + peerAddress, Organization: []string{peerMSPID}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(fmt.Sprintf("fabrictest: peer certificate: %v", err))
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &endorser{key: key, serialized: mustMarshal(&msp.SerializedIdentity{Mspid: peerMSPID, IdBytes: certPEM})}
}

// sign is an ECDSA signature over SHA-256(msg) with a low S, as Fabric
// requires.
func (e *endorser) sign(msg []byte) []byte {
	digest := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, e.key, digest[:])
	if err != nil {
		panic(fmt.Sprintf("fabrictest: sign: %v", err))
	}
	n := e.key.Curve.Params().N
	if s.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		s.Sub(n, s)
	}
	sig, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		panic(fmt.Sprintf("fabrictest: sign: %v", err))
	}
	return sig
}

// prepareTransaction builds the unsigned transaction envelope a Fabric
// gateway returns from Endorse:
//
//	Envelope{Payload: Payload{
//	  Header: the proposal's header,
//	  Data: Transaction{Actions: [TransactionAction{
//	    Header: the proposal's signature header,
//	    Payload: ChaincodeActionPayload{
//	      ChaincodeProposalPayload: the proposal's, transient map stripped,
//	      Action: ChaincodeEndorsedAction{
//	        ProposalResponsePayload: ProposalResponsePayload{
//	          ProposalHash: SHA-256(channel header || signature header || stripped payload),
//	          Extension: ChaincodeAction{Results: TxReadWriteSet, Events, Response, ChaincodeId}},
//	        Endorsements: [this peer's]}}}]}}}
func (e *endorser) prepareTransaction(inv *invocation, resp *peer.Response, set *kvrwset.KVRWSet, event *peer.ChaincodeEvent) (*common.Envelope, error) {
	kv, err := marshal(set)
	if err != nil {
		return nil, fmt.Errorf("read-write set: %w", err)
	}
	results, err := marshal(&rwset.TxReadWriteSet{
		DataModel: rwset.TxReadWriteSet_KV,
		NsRwset:   []*rwset.NsReadWriteSet{{Namespace: inv.chaincode, Rwset: kv}},
	})
	if err != nil {
		return nil, fmt.Errorf("read-write set: %w", err)
	}
	var events []byte
	if event != nil {
		event = proto.CloneOf(event)
		event.ChaincodeId = inv.chaincode
		if events, err = marshal(event); err != nil {
			return nil, fmt.Errorf("chaincode event: %w", err)
		}
	}
	action, err := marshal(&peer.ChaincodeAction{
		Results:     results,
		Events:      events,
		Response:    resp,
		ChaincodeId: &peer.ChaincodeID{Name: inv.chaincode},
	})
	if err != nil {
		return nil, fmt.Errorf("chaincode action: %w", err)
	}
	strippedPayload := mustMarshal(&peer.ChaincodeProposalPayload{Input: inv.payload.GetInput()})
	hash := sha256.New()
	hash.Write(inv.header.GetChannelHeader())
	hash.Write(inv.header.GetSignatureHeader())
	hash.Write(strippedPayload)
	responsePayload := mustMarshal(&peer.ProposalResponsePayload{ProposalHash: hash.Sum(nil), Extension: action})
	endorsement := &peer.Endorsement{
		Endorser:  e.serialized,
		Signature: e.sign(append(append([]byte{}, responsePayload...), e.serialized...)),
	}
	actionPayload := mustMarshal(&peer.ChaincodeActionPayload{
		ChaincodeProposalPayload: strippedPayload,
		Action: &peer.ChaincodeEndorsedAction{
			ProposalResponsePayload: responsePayload,
			Endorsements:            []*peer.Endorsement{endorsement},
		},
	})
	tx := mustMarshal(&peer.Transaction{Actions: []*peer.TransactionAction{{
		Header:  inv.header.GetSignatureHeader(),
		Payload: actionPayload,
	}}})
	payload := mustMarshal(&common.Payload{Header: inv.header, Data: tx})
	return &common.Envelope{Payload: payload}, nil
}

func marshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// mustMarshal marshals messages made only of bytes and well-formed fields,
// which cannot fail.
func mustMarshal(m proto.Message) []byte {
	b, err := marshal(m)
	if err != nil {
		panic(fmt.Sprintf("fabrictest: marshal %T: %v", m, err))
	}
	return b
}
