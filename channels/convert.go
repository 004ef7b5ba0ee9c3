package channels

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Beijing time on any machine
)

// decode reads a channel payload: numbers keep their text (ids beyond 2^53
// stay exact), unknown fields are ignored (channels add fields), a type
// mismatch names the channel's field.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fieldErr("body", "empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "body" // the document itself is of the wrong type
			}
			return fieldErr(field, "want %s, got JSON %s", jsonKind(te.Type), te.Value)
		}
		return fieldErr("body", "not JSON: %v", err)
	}
	return nil
}

// jsonKind names what JSON a Go type takes, for a message (never the Go
// type's own name).
func jsonKind(t reflect.Type) string {
	if t == reflect.TypeFor[ID]() || t == reflect.TypeFor[json.Number]() {
		return "a number or a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	default:
		return "a JSON value"
	}
}

// ID is a channel id sent as a JSON number or string; its text stays exact.
type ID string

// UnmarshalJSON takes a number or a string.
func (id *ID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*id = ID(str)
		return nil
	}
	if s == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	if _, err := strconv.ParseUint(string(n), 10, 64); err != nil {
		// A type error, so the decoder names the field.
		return &json.UnmarshalTypeError{Value: "number " + s, Type: reflect.TypeFor[ID]()}
	}
	*id = ID(n)
	return nil
}

var decimalPattern = regexp.MustCompile(`^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,6})?$`)

// Fen writes an amount in integer minor units (fen, cents) as a decimal.
func Fen(n int64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%s%d.%02d", sign, n/100, n%100)
}

// fen reads an integer amount of fen (a JSON number's text) as a decimal.
func fen(field, s string) (string, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > 1e15 {
		return "", fieldErr(field, "%q is not a whole number of fen", s)
	}
	return Fen(v), nil
}

// fenInt reads an integer amount of fen (a JSON number's text); "" is 0.
func fenInt(field, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > 1e15 {
		return 0, fieldErr(field, "%q is not a whole number of fen", s)
	}
	return v, nil
}

// Yuan reads a decimal amount in yuan (or any major unit) sent as a string
// or a JSON number's text, exactly (never through a float), as a decimal
// string with at least two decimals.
func Yuan(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if !decimalPattern.MatchString(s) || strings.HasPrefix(s, "-") {
		return "", fieldErr(field, "%q is not an amount like \"19.90\"", s)
	}
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	return whole + "." + frac, nil
}

// beijing is China Standard Time, the zone of "yyyy-MM-dd HH:mm:ss" stamps.
var beijing = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(fmt.Sprintf("channels: Asia/Shanghai: %v", err))
	}
	return loc
}()

// BeijingTime reads "2006-01-02 15:04:05" in Beijing time.
func BeijingTime(field, s string) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", strings.TrimSpace(s), beijing)
	if err != nil {
		return time.Time{}, fieldErr(field, "%q is not yyyy-MM-dd HH:mm:ss", s)
	}
	return t, nil
}

// EpochSeconds reads a Unix time in seconds (a number or its text).
func EpochSeconds(field, s string) (time.Time, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 946684800 || v > 4102444800 { // 2000..2100
		return time.Time{}, fieldErr(field, "%q is not a Unix time in seconds", s)
	}
	return time.Unix(v, 0), nil
}

// EpochMillis reads a Unix time in milliseconds.
func EpochMillis(field, s string) (time.Time, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 946684800000 || v > 4102444800000 {
		return time.Time{}, fieldErr(field, "%q is not a Unix time in milliseconds", s)
	}
	return time.UnixMilli(v), nil
}

// ISOTime reads an ISO 8601 time with an offset (RFC 3339).
func ISOTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fieldErr(field, "%q is not an ISO 8601 time with an offset", s)
	}
	return t, nil
}

// Masked reports whether a receiver field arrived masked or encrypted:
// "138****5678", Douyin's "#…#" ciphertexts, Taobao's and PDD's "~…~".
func Masked(s string) bool {
	return strings.ContainsAny(s, "*#~$") || strings.HasPrefix(s, "OAID")
}

// provinceRegions map the first characters of a Chinese province-level
// division to its region (the routing regions of the synthetic world and
// the usual 华北/东北/华东/华中/华南/西南/西北 split).
var provinceRegions = map[string]string{
	"北京": "north", "天津": "north", "河北": "north", "山西": "north", "内蒙": "north",
	"辽宁": "northeast", "吉林": "northeast", "黑龙": "northeast",
	"上海": "east", "江苏": "east", "浙江": "east", "安徽": "east", "福建": "east", "江西": "east", "山东": "east", "台湾": "east",
	"河南": "central", "湖北": "central", "湖南": "central",
	"广东": "south", "广西": "south", "海南": "south", "香港": "south", "澳门": "south",
	"重庆": "southwest", "四川": "southwest", "贵州": "southwest", "云南": "southwest", "西藏": "southwest",
	"陕西": "northwest", "甘肃": "northwest", "青海": "northwest", "宁夏": "northwest", "新疆": "northwest",
}

// ProvinceRegion returns the region of a Chinese province ("上海市",
// "广西壮族自治区"), or "" when it is not one.
func ProvinceRegion(province string) string {
	r := []rune(strings.TrimSpace(province))
	if len(r) < 2 {
		return ""
	}
	return provinceRegions[string(r[:2])]
}

// JoinAddress writes the parts of an address that are there, in order,
// separated by a space (the customer address of every adapter, and of a
// receiver a platform decrypted).
func JoinAddress(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// ---- signatures ----

// SignatureHeader carries a connector's HMAC-SHA256 of the raw body:
// "sha256=<hex>".
const SignatureHeader = "X-Ordergrid-Signature"

// SignConnector returns the SignatureHeader value for body.
func SignConnector(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyConnector checks SignatureHeader: what a connector that pulled the
// order from the channel's API posts.
func VerifyConnector(req *Request, conn *Connection) error {
	got := req.Header.Get(SignatureHeader)
	if got == "" {
		return fmt.Errorf("%w: no %s header", ErrBadSignature, SignatureHeader)
	}
	if !equal(got, SignConnector(conn.Secret, req.Body)) {
		return fmt.Errorf("%w: %s does not match the body", ErrBadSignature, SignatureHeader)
	}
	return nil
}

// SignShopify returns the X-Shopify-Hmac-Sha256 of body.
func SignShopify(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SignDouyin returns Douyin's message-push event-sign: hex MD5 of app key,
// body and app secret, or with sign-method hmac-sha256 an HMAC-SHA256 keyed
// by the app secret over the same.
func SignDouyin(appKey, secret, method string, body []byte) string {
	msg := append(append([]byte(appKey), body...), secret...)
	if strings.EqualFold(method, "hmac-sha256") {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(msg)
		return hex.EncodeToString(m.Sum(nil))
	}
	sum := md5.Sum(msg)
	return hex.EncodeToString(sum[:])
}

// SignWeChat returns WeChat's message-push signature: hex SHA-1 of token,
// timestamp and nonce sorted and joined.
func SignWeChat(token, timestamp, nonce string) string {
	parts := []string{token, timestamp, nonce}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// count reads an item count sent as a number or a string: 1 or more.
func count(field string, v ID) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 1 || n > 1_000_000_000 {
		return 0, fieldErr(field, "%q is not a count of 1 or more", v)
	}
	return n, nil
}
