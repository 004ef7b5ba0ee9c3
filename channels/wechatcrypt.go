package channels

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// WeChat's encrypted ("safe") mode, as its message-push documentation
// describes it:
//
//	msg_signature = hex SHA-1 of token, timestamp, nonce and Encrypt, sorted and joined
//	key           = base64 of EncodingAESKey + "=" (32 bytes); IV = key[:16]
//	Encrypt       = base64 of AES-256-CBC(random 16 bytes ‖ uint32 BE len(msg) ‖ msg ‖ appid),
//	                PKCS#7-padded to a multiple of 32 bytes
//
// The body of a JSON push is {"ToUserName": …, "Encrypt": …}; the query
// carries timestamp, nonce, msg_signature and encrypt_type=aes. The
// signature is checked before anything is decrypted, so no unsigned
// ciphertext reaches the CBC padding check.

// weChatPadBlock is the PKCS#7 block size WeChat pads to (not AES's 16).
const weChatPadBlock = 32

// weChatRandomBytes is the random prefix of every encrypted message.
const weChatRandomBytes = 16

// ErrBadWeChatKey is an EncodingAESKey that is not 43 characters of base64
// of 32 bytes.
var ErrBadWeChatKey = errors.New("encoding_aes_key: want the 43-character base64 key of 32 bytes")

// WeChatAESKey returns the AES-256 key of an EncodingAESKey.
func WeChatAESKey(encodingAESKey string) ([]byte, error) {
	if len(encodingAESKey) != 43 {
		return nil, ErrBadWeChatKey
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, ErrBadWeChatKey
	}
	return key, nil
}

// SignWeChatMsg returns the msg_signature of an encrypted push: hex SHA-1
// of token, timestamp, nonce and the Encrypt field, sorted and joined.
func SignWeChatMsg(token, timestamp, nonce, encrypt string) string {
	parts := []string{token, timestamp, nonce, encrypt}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// SealWeChat encrypts msg for appID as WeChat does (what a test or a relay
// needs to build an encrypted push): the base64 Encrypt field.
func SealWeChat(encodingAESKey, appID string, msg []byte) (string, error) {
	key, err := WeChatAESKey(encodingAESKey)
	if err != nil {
		return "", err
	}
	plain := make([]byte, weChatRandomBytes+4, weChatRandomBytes+4+len(msg)+len(appID)+weChatPadBlock)
	if _, err := rand.Read(plain[:weChatRandomBytes]); err != nil {
		return "", fmt.Errorf("random prefix: %w", err)
	}
	binary.BigEndian.PutUint32(plain[weChatRandomBytes:], uint32(len(msg)))
	plain = append(append(plain, msg...), appID...)
	pad := weChatPadBlock - len(plain)%weChatPadBlock
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("aes: %w", err)
	}
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, key[:aes.BlockSize]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out), nil
}

// openWeChat decrypts an Encrypt field with key and returns the message,
// checking that it is addressed to appID. Errors wrap ErrBadSignature: a
// ciphertext that does not open under the key is not the platform's.
func openWeChat(key []byte, appID, encrypt string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, fmt.Errorf("%w: Encrypt is not base64", ErrBadSignature)
	}
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: Encrypt is %d bytes, not whole AES blocks", ErrBadSignature, len(raw))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	plain := make([]byte, len(raw))
	cipher.NewCBCDecrypter(block, key[:aes.BlockSize]).CryptBlocks(plain, raw)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > weChatPadBlock || pad > len(plain) || !bytes.Equal(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, fmt.Errorf("%w: Encrypt does not decrypt under encoding_aes_key (bad padding)", ErrBadSignature)
	}
	plain = plain[:len(plain)-pad]
	if len(plain) < weChatRandomBytes+4 {
		return nil, fmt.Errorf("%w: Encrypt holds no message", ErrBadSignature)
	}
	rest := plain[weChatRandomBytes:]
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(n) > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: Encrypt's message length %d exceeds what it holds", ErrBadSignature, n)
	}
	if got := string(rest[n:]); got != appID {
		return nil, fmt.Errorf("%w: Encrypt is addressed to appid %q, not the connection's app_id", ErrBadSignature, got)
	}
	return rest[:n], nil
}

// weChatEnvelope is the body of an encrypted JSON push.
type weChatEnvelope struct {
	ToUserName string `json:"ToUserName"`
	Encrypt    string `json:"Encrypt"`
}

// openWeChatPush verifies an encrypted push's msg_signature over the
// envelope's Encrypt field, then decrypts it.
func openWeChatPush(req *Request, conn *Connection, ts, nonce string) ([]byte, error) {
	if t := req.Query.Get("encrypt_type"); t != "aes" {
		return nil, fmt.Errorf("%w: encrypt_type %q: want aes with msg_signature", ErrBadSignature, t)
	}
	sig := req.Query.Get("msg_signature")
	if sig == "" {
		return nil, fmt.Errorf("%w: msg_signature is a required query parameter with encrypt_type=aes", ErrBadSignature)
	}
	if conn.EncodingAESKey == "" || conn.AppID == "" {
		return nil, fmt.Errorf("%w: the connection has no encoding_aes_key and app_id to open encrypted pushes", ErrBadSignature)
	}
	key, err := WeChatAESKey(conn.EncodingAESKey)
	if err != nil {
		return nil, fmt.Errorf("%w: the connection's %w", ErrBadSignature, err)
	}
	var env weChatEnvelope
	if err := json.Unmarshal(req.Body, &env); err != nil {
		return nil, fieldErr("body", "an encrypted push is a JSON object {\"ToUserName\", \"Encrypt\"}: %v", err)
	}
	if env.Encrypt == "" {
		return nil, fieldErr("Encrypt", "required in an encrypted push")
	}
	if !equal(sig, SignWeChatMsg(conn.Token, ts, nonce, env.Encrypt)) {
		return nil, fmt.Errorf("%w: msg_signature does not match token, timestamp, nonce and Encrypt", ErrBadSignature)
	}
	return openWeChat(key, conn.AppID, env.Encrypt)
}
