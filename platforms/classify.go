package platforms

import (
	"bytes"
	"encoding/json"
	"strings"
)

// codes sort one platform's error codes into the sentinel errors.
type codes struct {
	throttled, notFound, auth, temporary map[string]bool
}

func set(list ...string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// kind is the sentinel of a platform error: by code, then sub code, then
// the words of the message (the platforms' tables are long and change;
// their messages say 频繁 or 不存在 throughout).
func (t codes) kind(code, sub, msg string) error {
	for _, c := range []string{code, sub} {
		switch {
		case c == "":
		case t.throttled[c]:
			return ErrThrottled
		case t.auth[c]:
			return ErrAuth
		case t.notFound[c]:
			return ErrNotFound
		case t.temporary[c]:
			return ErrTemporary
		}
	}
	text := strings.ToLower(sub + " " + msg)
	switch {
	case containsAny(text, "limit", "频繁", "限流", "流控", "超限", "too many", "frequen"):
		return ErrThrottled
	case containsAny(text, "not exist", "not-exist", "notexist", "not found", "不存在", "未找到", "查询不到"):
		return ErrNotFound
	case containsAny(text, "signature", "invalid-sign", "签名", "token", "session", "授权", "unauthorized"):
		return ErrAuth
	case containsAny(text, "busy", "繁忙", "timeout", "超时", "service-unavailable", "服务不可用", "系统异常", "系统错误"):
		return ErrTemporary
	}
	return ErrRejected
}

func containsAny(s string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// text is a JSON string or number (platforms send codes and ids as either;
// ids beyond 2^53 as numbers), kept as its text, never through a float.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*t = text(n)
	return nil
}

// encodeJSON writes v with sorted keys (encoding/json sorts map keys) and
// without HTML escaping, as the platforms sign it.
func encodeJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// isJSONObject reports whether body is one JSON object.
func isJSONObject(body []byte) bool {
	body = bytes.TrimSpace(body)
	return len(body) > 0 && body[0] == '{' && json.Valid(body)
}
