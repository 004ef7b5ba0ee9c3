package channels

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkMapped is every adapter's fuzz property: an error names a field
// (the payload's, or the envelope's that reports the platform's failure),
// and an order that maps is one the intake could take (lines with SKUs,
// positive quantities, prices; discounts and charges on lines it has, with
// amounts).
func checkMapped(t *testing.T, channel string, data []byte) {
	t.Helper()
	m, err := Adapters[channel].Map(data)
	if err != nil {
		var fe *FieldError
		var pe *PlatformError
		if !(errors.As(err, &fe) && fe.Field != "") && !(errors.As(err, &pe) && pe.Field != "" && pe.Channel == channel) {
			t.Fatalf("error without a field: %v", err)
		}
		return
	}
	r := m.Request
	if r.Channel != channel || r.ChannelOrderId == "" || len(r.Lines) == 0 {
		t.Fatalf("mapped order without channel, id or lines: %+v", r)
	}
	for _, l := range r.Lines {
		if l.Sku == "" || l.Qty < 1 || !decimalPattern.MatchString(l.UnitPrice) {
			t.Fatalf("bad line %+v", l)
		}
	}
	for _, d := range m.Discounts {
		if d.Line < -1 || d.Line >= len(r.Lines) || !decimalPattern.MatchString(d.Amount) || (d.FundedBy != "shop" && d.FundedBy != "platform") || d.Kind == "" {
			t.Fatalf("bad discount %+v", d)
		}
	}
	for _, c := range m.Charges {
		if c.Line < -1 || c.Line >= len(r.Lines) || !decimalPattern.MatchString(c.Amount) || (c.Kind != "tax" && c.Kind != "shipping") {
			t.Fatalf("bad charge %+v", c)
		}
	}
}

// Every channel has an adapter and fixtures; every fixture maps to an
// order the intake takes, and no raw field kept on the order holds the
// receiver's name, phone or address.
func TestEveryChannelMapsItsFixtures(t *testing.T) {
	want := []string{"douyin", "jd", "pinduoduo", "pos", "shopify", "tmall", "wechat", "xiaohongshu"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("channels %v, want %v", got, want)
	}
	for _, ch := range want {
		files, _ := filepath.Glob(filepath.Join("testdata", ch, "*.json"))
		if len(files) == 0 {
			t.Fatalf("%s has no fixture", ch)
		}
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkMapped(t, ch, body)
			m, err := Adapters[ch].Map(body)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			c := m.Request.Customer
			for k, v := range m.Extra {
				for _, personal := range []string{c.GetName(), c.GetPhone(), c.GetAddress()} {
					if personal != "" && strings.Contains(v, personal) {
						t.Fatalf("%s: channel field %s holds personal data", f, k)
					}
				}
			}
		}
	}
}

// BenchmarkMap maps each channel's fixture.
func BenchmarkMap(b *testing.B) {
	for _, ch := range Names() {
		files, _ := filepath.Glob(filepath.Join("testdata", ch, "*.json"))
		body, err := os.ReadFile(files[0])
		if err != nil {
			b.Fatal(err)
		}
		b.Run(ch, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Adapters[ch].Map(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
