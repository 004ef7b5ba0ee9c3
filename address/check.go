package address

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Reason codes of a Finding. They are part of the grid's API: a held order
// shows them. They are listed by severity, the order Check reports them in.
const (
	// CodeMissing: the text is empty or holds no letter or digit.
	CodeMissing = "address_missing"
	// CodeIncomplete: a mainland address lacks its province, city or
	// district.
	CodeIncomplete = "address_incomplete"
	// CodeAmbiguous: the text names two provinces, a city outside the
	// province it names, or a city several provinces have.
	CodeAmbiguous = "address_ambiguous"
	// CodeRegionUnserved: no warehouse serves the address's province.
	CodeRegionUnserved = "region_unserved"
	// CodePOBox: the address is a PO box and the order's carrier refuses them.
	CodePOBox = "po_box"
	// CodeBondedZone: the address lies in a bonded zone and the order holds
	// goods that are not bonded.
	CodeBondedZone = "bonded_zone"
)

// Fields a Finding names.
const (
	FieldAddress  = "customer.address"
	FieldProvince = "customer.address.province"
	FieldCity     = "customer.address.city"
	FieldDistrict = "customer.address.district"
)

// ScanBytesMax bounds the text Check reads for PO boxes, bonded zones and
// its script; what lies beyond is not examined.
const ScanBytesMax = 2048

// Finding is one reason to hold an order for its address.
type Finding struct {
	// Code is one of the Code constants.
	Code string
	// Field is the order's field at fault (one of the Field constants).
	Field string
	// Detail is a short English explanation for a reviewer. It quotes at
	// most the gazetteer's names of provinces and cities, never the text
	// after them (the street is personal data).
	Detail string
}

// Rules are what Check needs to know of the order beyond its address.
type Rules struct {
	// RefusePOBox is set when the order's carrier does not deliver to PO
	// boxes.
	RefusePOBox bool
	// BondedSKU is set when the order holds only bonded (cross-border)
	// SKUs, which may go into a bonded zone; otherwise a bonded-zone
	// address is reported.
	BondedSKU bool
	// Served, when set, says whether some warehouse serves the province
	// with the given GB/T 2260 code ("33"); it is called only when a
	// province was recognised.
	Served func(provinceCode string) bool
}

// Check returns the reasons to hold an order delivered to text, most
// severe first, or nil. International addresses (no Chinese province
// recognised and more Latin letters than Han characters) are not checked
// for completeness.
func Check(text string, rules Rules) []Finding {
	scan := text
	if len(scan) > ScanBytesMax {
		scan = scan[:ScanBytesMax]
	}
	latin, han, blank := script(scan)
	if blank {
		return []Finding{{Code: CodeMissing, Field: FieldAddress, Detail: "the address is empty"}}
	}
	var out []Finding
	p := parseText(text)
	international := p.province == nil && latin > han
	if !international {
		if f, ok := incomplete(&p); ok {
			out = append(out, f)
		}
	}
	if f, ok := ambiguous(&p); ok {
		out = append(out, f)
	}
	if rules.Served != nil && p.province != nil && !rules.Served(p.province.code) {
		out = append(out, Finding{Code: CodeRegionUnserved, Field: FieldProvince,
			Detail: "no warehouse serves " + p.province.full})
	}
	if rules.RefusePOBox && (latin > 0 && latinPOBox(scan) || hanPOBox(scan)) {
		out = append(out, Finding{Code: CodePOBox, Field: FieldAddress,
			Detail: "the address is a PO box and the order's carrier refuses PO boxes"})
	}
	if !rules.BondedSKU && (latin > 0 && latinBonded(scan) || hanBonded(scan)) {
		out = append(out, Finding{Code: CodeBondedZone, Field: FieldAddress,
			Detail: "the address is in a bonded zone and the order holds goods that are not bonded"})
	}
	return out
}

// script counts s's Latin letters and Han characters; blank is set when s
// holds no letter or digit at all.
func script(s string) (latin, han int, blank bool) {
	blank = true
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			if 'a' <= r|0x20 && r|0x20 <= 'z' {
				latin++
				blank = false
			} else if '0' <= r && r <= '9' {
				blank = false
			}
		case unicode.Is(unicode.Han, r):
			han++
			blank = false
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			blank = false
		}
	}
	return latin, han, blank
}

func incomplete(p *parse) (Finding, bool) {
	f := Finding{Code: CodeIncomplete}
	switch {
	case p.province == nil:
		f.Field, f.Detail = FieldProvince, "no province or city recognised"
	case p.province.special:
		return f, false
	case p.province.municipality:
		if p.District != "" {
			return f, false
		}
		f.Field, f.Detail = FieldDistrict, "no district after "+p.province.full
	case p.city == nil:
		f.Field, f.Detail = FieldCity, "no city after "+p.province.full
	case p.District == "" && !p.city.noDistricts:
		f.Field, f.Detail = FieldDistrict, "no district after "+p.city.full
	default:
		return f, false
	}
	return f, true
}

func ambiguous(p *parse) (Finding, bool) {
	f := Finding{Code: CodeAmbiguous}
	n := p.names
	switch p.conflict {
	case conflictTwoProvinces:
		f.Field, f.Detail = FieldProvince, "the address names two provinces, "+n[0]+" and "+n[1]
	case conflictCityElsewhere:
		f.Field, f.Detail = FieldCity, "city "+n[0]+" is in "+n[1]+", not in "+n[2]
	case conflictCityShared:
		f.Field, f.Detail = FieldCity, "no province given, and the city may be "+n[0]+" or "+n[1]
	default:
		return f, false
	}
	return f, true
}

// latinWords calls match with each run of ASCII letters of s and the two
// runs before it; a digit or a non-ASCII rune breaks the sequence. It
// stops when match returns true, and reports whether one did.
func latinWords(s string, match func(prev2, prev1, w string) bool) bool {
	var prev2, prev1 string
	start := -1
	for i := 0; i <= len(s); i++ {
		var c byte = ' '
		if i < len(s) {
			c = s[i]
		}
		if 'a' <= c|0x20 && c|0x20 <= 'z' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			w := s[start:i]
			if match(prev2, prev1, w) {
				return true
			}
			prev2, prev1, start = prev1, w, -1
		}
		if c >= utf8.RuneSelf || '0' <= c && c <= '9' {
			prev2, prev1 = "", ""
		}
	}
	return false
}

// latinPOBox finds PO Box, P.O. Box, P O Box, GPO Box, POBox and Post
// Office Box.
func latinPOBox(s string) bool {
	return latinWords(s, func(prev2, prev1, w string) bool {
		if strings.EqualFold(w, "pobox") {
			return true
		}
		if !strings.EqualFold(w, "box") {
			return false
		}
		return strings.EqualFold(prev1, "po") || strings.EqualFold(prev1, "gpo") ||
			strings.EqualFold(prev2, "p") && strings.EqualFold(prev1, "o") ||
			strings.EqualFold(prev2, "post") && strings.EqualFold(prev1, "office")
	})
}

// latinBonded finds "bonded", "Free Trade Zone" and "Free Zone".
func latinBonded(s string) bool {
	return latinWords(s, func(prev2, prev1, w string) bool {
		if strings.EqualFold(w, "bonded") {
			return true
		}
		return strings.EqualFold(w, "zone") && (strings.EqualFold(prev1, "free") ||
			strings.EqualFold(prev2, "free") && strings.EqualFold(prev1, "trade"))
	})
}

// hanPOBox finds 邮政信箱, a numbered 信箱 (123信箱, 123号信箱, 信箱123)
// and 邮箱 followed by a number that is not an e-mail address.
func hanPOBox(s string) bool {
	if strings.Contains(s, "邮政信箱") {
		return true
	}
	for from := 0; from < len(s); {
		k := strings.Index(s[from:], "信箱")
		if k < 0 {
			break
		}
		k += from
		if digitsBefore(s[:k]) || digitsAfter(s[k+len("信箱"):]) > 0 {
			return true
		}
		from = k + len("信箱")
	}
	for from := 0; from < len(s); {
		k := strings.Index(s[from:], "邮箱")
		if k < 0 {
			break
		}
		k += from
		after := s[k+len("邮箱"):]
		if n := digitsAfter(after); n > 0 && !emailContinues(after[n:]) {
			return true
		}
		from = k + len("邮箱")
	}
	return false
}

// digitsBefore reports digits ending s, before optional spaces and 号.
func digitsBefore(s string) bool {
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	s = strings.TrimSuffix(s, "号")
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	r, _ := utf8.DecodeLastRuneInString(s)
	return isDigit(r)
}

// digitsAfter returns the length of s up to the end of the number that
// starts it, after optional spaces, colons and 第; 0 when none does.
func digitsAfter(s string) int {
	i := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r != ':' && r != '：' && r != '第' && !unicode.IsSpace(r) {
			break
		}
		i += w
	}
	digits := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if !isDigit(r) {
			break
		}
		digits++
		i += w
	}
	if digits == 0 {
		return 0
	}
	return i
}

// emailContinues reports whether s continues an e-mail address's local
// part or domain.
func emailContinues(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	return c == '@' || c == '.' || c == '_' || 'a' <= c|0x20 && c|0x20 <= 'z'
}

func isDigit(r rune) bool {
	return '0' <= r && r <= '9' || '０' <= r && r <= '９'
}

// hanBonded finds 综合保税区, 保税区, 保税港区, 保税港, 保税物流园区,
// 保税物流中心 and 综保区.
func hanBonded(s string) bool {
	if strings.Contains(s, "综保区") {
		return true
	}
	for from := 0; from < len(s); {
		k := strings.Index(s[from:], "保税")
		if k < 0 {
			return false
		}
		after := s[from+k+len("保税"):]
		for _, w := range []string{"区", "港", "物流园", "物流中心"} {
			if strings.HasPrefix(after, w) {
				return true
			}
		}
		from += k + len("保税")
	}
	return false
}
