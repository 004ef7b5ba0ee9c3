package address

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of one parse.
const (
	// AdminScanBytesMax bounds the leading part of the text Parse reads for
	// the province, city and district; the rest is Rest, unread.
	AdminScanBytesMax = 512
	// districtRunesMax bounds a district's name (the longest, e.g.
	// 双江拉祜族佤族布朗族傣族自治县, has 15 runes).
	districtRunesMax = 16
)

// Parsed is what an address's text names, as written: Parse reports, Check
// judges (a Parsed may name a city outside its province; Check says so).
type Parsed struct {
	// Province is the provincial-level division's full name (浙江省 for
	// "浙江"), or "" when none was recognised. When the text names a city
	// but no province, the city's province.
	Province string
	// ProvinceCode is the province's GB/T 2260 two-digit code ("33").
	ProvinceCode string
	// City is the prefecture-level division's full name (杭州市 for "杭州"),
	// a county-level unit the province administers directly (仙桃市), or,
	// for a municipality, the municipality itself.
	City string
	// District is the county-level part as written (西湖区, 昆山市, 正蓝旗),
	// recognised by its suffix after the city; "" when none.
	District string
	// Rest is everything after the recognised parts: street, building,
	// door. It is personal data.
	Rest string
	// Municipality is set for 北京, 上海, 天津 and 重庆.
	Municipality bool
}

// conflictKind is what makes an address ambiguous.
type conflictKind uint8

const (
	conflictNone          conflictKind = iota
	conflictTwoProvinces               // names: first province, second province
	conflictCityElsewhere              // names: city, its province, the named province
	conflictCityShared                 // names: the candidates' cities (a short form several provinces share)
)

// parse is a Parsed and what Check needs beyond it.
type parse struct {
	Parsed
	province *province
	city     *city
	conflict conflictKind
	// names are canonical gazetteer names for the conflict's Detail.
	names [3]string
}

// Parse splits an address's text into province, city, district and the
// rest. Separators (spaces, commas, punctuation) between the parts are
// optional; a leading 中国 is skipped. It never fails: what it does not
// recognise stays in Rest.
func Parse(text string) Parsed {
	return parseText(text).Parsed
}

func parseText(text string) parse {
	var r parse
	s := text
	if len(s) > AdminScanBytesMax {
		s = s[:AdminScanBytesMax]
	}
	i := skipSeps(s, 0)
	r.Rest = text[i:]
	if j := skipCountry(s, i); j > i {
		if _, _, ok := matchProvince(s, j); ok {
			i = j
		} else if _, _, ok := matchCity(s, j, nil); ok {
			i = j
		}
	}

	if e, n, ok := matchProvince(s, i); ok {
		r.setProvince(e.province)
		i += n
		if e.short {
			// 广西省, 新疆省: a short form with a wrong suffix.
			i = skipWord(s, i, "省")
		}
		i = skipSeps(s, i)
		// Unless a city of the province follows (吉林省 吉林 …), the city
		// position may repeat the province (北京 北京市 朝阳区) or name
		// another one (浙江省 江苏省 …).
		if _, _, city := matchCity(s, i, r.province); !city {
			if e2, n2, ok := matchProvince(s, i); ok {
				if e2.province != r.province {
					r.conflict = conflictTwoProvinces
					r.names = [3]string{r.province.full, e2.province.full}
				}
				i = skipSeps(s, i+n2)
			}
		}
	}

	switch {
	case r.province != nil && r.province.municipality:
		r.City = r.province.full
		i = skipWord(s, i, "市辖区")
		// A city of a province where the district belongs (上海市 南京市 …).
		if e, n, ok := matchCity(s, i, nil); ok {
			if r.conflict == conflictNone {
				r.conflict = conflictCityElsewhere
				r.names = [3]string{e.city.full, e.city.province.full, r.province.full}
			}
			r.city, r.City = e.city, e.city.full
			i = skipSeps(s, i+n)
		}
	default:
		i = r.readCity(s, i)
	}

	if r.province != nil && (r.city == nil || !r.city.noDistricts) {
		if n := matchDistrict(s, i); n > 0 {
			r.District = s[i : i+n]
			i = skipSeps(s, i+n)
		}
	}
	if r.province != nil {
		r.Rest = strings.TrimRightFunc(text[i:], unicode.IsSpace)
	} else {
		r.Rest = strings.TrimRightFunc(r.Rest, unicode.IsSpace)
	}
	return r
}

func (r *parse) setProvince(p *province) {
	r.province = p
	r.Province, r.ProvinceCode, r.Municipality = p.full, p.code, p.municipality
}

// readCity reads the city position at i and returns the index after it.
func (r *parse) readCity(s string, i int) int {
	e, n, ok := matchCity(s, i, r.province)
	if !ok && r.province != nil {
		// A city of another province where this one's belongs.
		if e2, n2, ok2 := matchCity(s, i, nil); ok2 {
			if r.conflict == conflictNone {
				r.conflict = conflictCityElsewhere
				r.names = [3]string{e2.city.full, e2.city.province.full, r.province.full}
			}
			e, n, ok = e2, n2, true
		}
	}
	if !ok {
		return i
	}
	r.city = e.city
	r.City = e.city.full
	if r.province == nil {
		r.setProvince(e.city.province)
		if other := sharedElsewhere(e); other != nil {
			r.conflict = conflictCityShared
			r.names = [3]string{e.city.full, other.full}
		}
	}
	i = skipSeps(s, i+n)
	// Platforms repeat a city without districts (东莞市 东莞市 长安镇).
	i = skipWord(s, i, e.city.full)
	return i
}

// sharedElsewhere returns another city spelled like e in a different
// province, or nil.
func sharedElsewhere(e nameEntry) *city {
	r, _ := utf8.DecodeRuneInString(e.name)
	for _, o := range gaz.cityNames[r] {
		if o.name == e.name && o.city.province != e.city.province {
			return o.city
		}
	}
	return nil
}

// matchProvince matches a province's name at s[i:].
func matchProvince(s string, i int) (nameEntry, int, bool) {
	if i >= len(s) {
		return nameEntry{}, 0, false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	for _, e := range gaz.provinceNames[r] {
		if !strings.HasPrefix(s[i:], e.name) {
			continue
		}
		if e.short && continuesProvinceShort(s, i+len(e.name)) {
			continue
		}
		// 海南藏族自治州 is in 青海, 香港岛 a part of 香港: the longer name wins.
		if c, n, ok := matchCity(s, i, nil); e.short && ok && n > len(e.name) && c.city != nil {
			continue
		}
		return e, len(e.name), true
	}
	return nameEntry{}, 0, false
}

// matchCity matches a city's name at s[i:], of province p (nil: any).
func matchCity(s string, i int, p *province) (nameEntry, int, bool) {
	if i >= len(s) {
		return nameEntry{}, 0, false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	for _, e := range gaz.cityNames[r] {
		if p != nil && e.city.province != p {
			continue
		}
		if !strings.HasPrefix(s[i:], e.name) {
			continue
		}
		if e.short && continuesCityShort(s, i+len(e.name)) {
			continue
		}
		return e, len(e.name), true
	}
	return nameEntry{}, 0, false
}

// continuesProvinceShort reports whether the rune at s[j:] makes a
// province's short form part of another name: 吉林市 is a city, 海南州 a
// prefecture of 青海, 上海路 a street.
func continuesProvinceShort(s string, j int) bool {
	r, _ := utf8.DecodeRuneInString(s[j:])
	switch r {
	case '市', '州', '区', '县', '盟', '旗', '路', '街', '道':
		return true
	}
	return false
}

// continuesCityShort reports whether the rune at s[j:] makes a city's
// short form part of another name: 朝阳区 is a district of 北京, not 朝阳市.
func continuesCityShort(s string, j int) bool {
	r, _ := utf8.DecodeRuneInString(s[j:])
	switch r {
	case '区', '县', '旗', '镇', '乡', '路', '街', '道':
		return true
	}
	return false
}

// matchDistrict returns the length of a county-level name at s[i:] (a run
// of Han characters ending in 区, 县, 市 or 旗, which covers 自治县, 林区
// and 特区), or 0.
func matchDistrict(s string, i int) int {
	j, runes := i, 0
	for j < len(s) && runes < districtRunesMax {
		r, w := utf8.DecodeRuneInString(s[j:])
		if !unicode.Is(unicode.Han, r) || streetRune(r) {
			return 0
		}
		// 路北区 and 道里区 begin so; a 路 or 道 further on is a street's.
		if runes > 0 && (r == '路' || r == '道') {
			return 0
		}
		runes++
		j += w
		if runes < 2 || !districtSuffix(r) {
			continue
		}
		// 红旗区, 沙市区, 新市区: the suffix continues.
		if next, w2 := utf8.DecodeRuneInString(s[j:]); next == '区' || next == '县' {
			j += w2
		}
		for _, word := range []string{"小区", "社区", "校区", "厂区", "景区", "片区", "街区"} {
			if strings.HasSuffix(s[i:j], word) {
				return 0
			}
		}
		return j - i
	}
	return 0
}

func districtSuffix(r rune) bool {
	return r == '区' || r == '县' || r == '市' || r == '旗'
}

// streetRune reports runes no county-level name holds but streets and
// buildings do.
func streetRune(r rune) bool {
	switch r {
	case '号', '弄', '巷', '街', '村', '栋', '幢', '室':
		return true
	}
	return false
}

// skipCountry skips a leading 中国 or 中华人民共和国 and the separators after.
func skipCountry(s string, i int) int {
	for _, c := range []string{"中华人民共和国", "中国"} {
		if strings.HasPrefix(s[i:], c) {
			return skipSeps(s, i+len(c))
		}
	}
	return i
}

// skipWord skips word at s[i:] and the separators after it, if it is there.
func skipWord(s string, i int, word string) int {
	if strings.HasPrefix(s[i:], word) {
		return skipSeps(s, i+len(word))
	}
	return i
}

// skipSeps returns the index of the first non-separator rune at or after i.
func skipSeps(s string, i int) int {
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if !isSep(r) {
			return i
		}
		i += w
	}
	return i
}

// isSep reports a separator between the parts of an address.
func isSep(r rune) bool {
	if r < utf8.RuneSelf {
		switch r {
		case ' ', '\t', '\n', '\r', ',', ';', ':', '.', '-', '/', '|', '(', ')', '_':
			return true
		}
		return false
	}
	return unicode.IsSpace(r) || unicode.IsPunct(r)
}
