package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testSelfAddr is the listen address the test node calls its own.
const testSelfAddr = "127.0.0.1:18080"

// problemField is the first field a problem answer names.
func problemField(t *testing.T, body []byte) string {
	t.Helper()
	var p struct {
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if len(p.Errors) == 0 {
		return ""
	}
	return p.Errors[0].Field
}

func TestWebhookCreateRefusesBadInputNamingTheField(t *testing.T) {
	tg := startGateway(t)
	list := func(role Role) []map[string]any {
		t.Helper()
		rec := tg.do("GET", "/v1/webhooks", "", role)
		if rec.Code != http.StatusOK {
			t.Fatalf("list: %d %s", rec.Code, rec.Body)
		}
		var out struct {
			Webhooks []map[string]any `json:"webhooks"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		return out.Webhooks
	}
	before := len(list(RoleAdmin))
	for _, c := range []struct {
		body  string
		role  Role
		code  int
		field string
	}{
		{`{"url":"ftp://example.com/hook"}`, RoleAdmin, 422, "url"},
		{`{"url":"file:///etc/passwd"}`, RoleAdmin, 422, "url"},
		{`{"url":"http://` + testSelfAddr + `/v1/orders"}`, RoleAdmin, 422, "url"},
		{`{"url":"http://localhost:18080/"}`, RoleAdmin, 422, "url"},
		{`{"url":"http://127.0.0.1:9/","filter":{"colour":["red"]}}`, RoleAdmin, 400, "filter.colour"},
		{`{"url":"http://127.0.0.1:9/","filter":{"kind":["bogus"]}}`, RoleAdmin, 400, "filter.kind"},
		{`{"url":"http://127.0.0.1:9/","description":"` + strings.Repeat("x", 300) + `"}`, RoleAdmin, 422, "description"},
		{`{"url":"http://127.0.0.1:9/","filter":{"channel":["tmall"]}}`, RolePartner, 403, "filter.channel"},
		{`{"url":"http://127.0.0.1:9/","size":1}`, RoleAdmin, 400, "size"},
	} {
		rec := tg.do("POST", "/v1/webhooks", c.body, c.role)
		if rec.Code != c.code || problemField(t, rec.Body.Bytes()) != c.field {
			t.Errorf("%s as %s: %d %s, want %d naming %s", c.body, c.role, rec.Code, rec.Body, c.code, c.field)
		}
	}
	if n := len(list(RoleAdmin)); n != before {
		t.Fatalf("%d webhooks after refusals, %d before", n, before)
	}
}

func TestWebhookPartnerSeesOnlyItsOwn(t *testing.T) {
	tg := startGateway(t)
	rec := tg.do("POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/partner","filter":{"channel":["douyin"],"kind":["order"]},"description":"mine"}`, RolePartner)
	if rec.Code != http.StatusCreated {
		t.Fatalf("partner create: %d %s", rec.Code, rec.Body)
	}
	var created struct {
		ID     string   `json:"id"`
		Secret string   `json:"secret"`
		Scope  []string `json:"scope"`
		Owner  string   `json:"owner"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Secret, "whsec_") || len(created.Scope) != 1 || created.Scope[0] != "douyin" || created.Owner != "test-partner" {
		t.Fatalf("created %s", rec.Body)
	}
	if rec := tg.must(t, "POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/admin","secret":"an-admin-given-secret"}`, http.StatusCreated); !strings.Contains(rec.Body.String(), `"secret":"an-admin-given-secret"`) {
		t.Fatalf("admin create: %s", rec.Body)
	}
	// The secret is shown once.
	got := tg.do("GET", "/v1/webhooks/"+created.ID, "", RolePartner)
	if got.Code != http.StatusOK || strings.Contains(got.Body.String(), created.Secret) || strings.Contains(got.Body.String(), `"secret"`) {
		t.Fatalf("get: %d %s", got.Code, got.Body)
	}
	rec = tg.do("GET", "/v1/webhooks", "", RolePartner)
	var list struct {
		Webhooks []struct {
			ID    string `json:"id"`
			Owner string `json:"owner"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	for _, w := range list.Webhooks {
		if w.Owner != "test-partner" {
			t.Fatalf("the partner sees %s's webhook %s", w.Owner, w.ID)
		}
	}
	// Another's webhook is not found for a partner; an admin sees it.
	all := tg.must(t, "GET", "/v1/webhooks", "", http.StatusOK)
	var every struct {
		Webhooks []struct {
			ID    string `json:"id"`
			Owner string `json:"owner"`
		} `json:"webhooks"`
	}
	_ = json.Unmarshal(all.Body.Bytes(), &every)
	for _, w := range every.Webhooks {
		if w.Owner == "test-admin" {
			if rec := tg.do("GET", "/v1/webhooks/"+w.ID, "", RolePartner); rec.Code != http.StatusNotFound {
				t.Fatalf("partner reads the admin's webhook: %d", rec.Code)
			}
			if rec := tg.do("DELETE", "/v1/webhooks/"+w.ID, "", RolePartner); rec.Code != http.StatusNotFound {
				t.Fatalf("partner deletes the admin's webhook: %d", rec.Code)
			}
		}
	}
	if rec := tg.do("GET", "/v1/webhooks/"+created.ID+"/dead-letters", "", RolePartner); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"dead_letters":[]`) {
		t.Fatalf("dead letters: %d %s", rec.Code, rec.Body)
	}
	if rec := tg.do("POST", "/v1/webhooks/"+created.ID+"/dead-letters/x/replay", "", RolePartner); rec.Code != http.StatusBadRequest || problemField(t, rec.Body.Bytes()) != "from" {
		t.Fatalf("replay of a bad index: %d %s", rec.Code, rec.Body)
	}
	if rec := tg.do("DELETE", "/v1/webhooks/"+created.ID, "", RolePartner); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tg.do("GET", "/v1/webhooks/"+created.ID, "", RolePartner).Code != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatal("deleted webhook still found")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
