package address

import (
	"go/build"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// strict is the rules most cases run under: every check on.
var strict = Rules{RefusePOBox: true}

type addressCase struct {
	text  string
	want  Parsed
	rules *Rules // nil: strict
	codes []string
}

// P builds a Parsed tersely: province, code, city, district, rest.
func P(prov, code, city, district, rest string) Parsed {
	return Parsed{Province: prov, ProvinceCode: code, City: city, District: district, Rest: rest,
		Municipality: code == "11" || code == "12" || code == "31" || code == "50"}
}

func servedNot(code string) *Rules {
	return &Rules{RefusePOBox: true, Served: func(c string) bool { return c != code }}
}

var cases = []addressCase{
	// Provinces, in the spaced form channel adapters send.
	{text: "浙江省 杭州市 西湖区 文三路 90号", want: P("浙江省", "33", "杭州市", "西湖区", "文三路 90号")},
	{text: "河北省 石家庄市 长安区 中山东路 1号", want: P("河北省", "13", "石家庄市", "长安区", "中山东路 1号")},
	{text: "广东省 深圳市 南山区 科技园 科苑路 15号", want: P("广东省", "44", "深圳市", "南山区", "科技园 科苑路 15号")},
	{text: "安徽省 六安市 金安区 梅山南路 1号", want: P("安徽省", "34", "六安市", "金安区", "梅山南路 1号")},
	{text: "辽宁省 朝阳市 双塔区 朝阳大街 1号", want: P("辽宁省", "21", "朝阳市", "双塔区", "朝阳大街 1号")},
	{text: "黑龙江 大兴安岭地区 漠河市 西林吉镇 1号", want: P("黑龙江省", "23", "大兴安岭地区", "漠河市", "西林吉镇 1号")},
	// Municipalities: the district follows; repeats of the city are skipped.
	{text: "上海市 浦东新区 碧波路 690号", want: P("上海市", "31", "上海市", "浦东新区", "碧波路 690号")},
	{text: "北京市朝阳区建国路88号SOHO现代城", want: P("北京市", "11", "北京市", "朝阳区", "建国路88号SOHO现代城")},
	{text: "北京 朝阳区 三里屯路 19号", want: P("北京市", "11", "北京市", "朝阳区", "三里屯路 19号")},
	{text: "北京 北京市 海淀区 中关村大街 27号", want: P("北京市", "11", "北京市", "海淀区", "中关村大街 27号")},
	{text: "重庆市 渝中区 民权路 28号", want: P("重庆市", "50", "重庆市", "渝中区", "民权路 28号")},
	{text: "重庆 重庆市 万州区 白岩路 1号", want: P("重庆市", "50", "重庆市", "万州区", "白岩路 1号")},
	{text: "重庆市 城口县 葛城街道 1号", want: P("重庆市", "50", "重庆市", "城口县", "葛城街道 1号")},
	// No separators, short forms, a leading 中国.
	{text: "广东省深圳市福田区深南大道6008号", want: P("广东省", "44", "深圳市", "福田区", "深南大道6008号")},
	{text: "江苏 南京 鼓楼区 中山路 1号", want: P("江苏省", "32", "南京市", "鼓楼区", "中山路 1号")},
	{text: "浙江杭州余杭区文一西路969号", want: P("浙江省", "33", "杭州市", "余杭区", "文一西路969号")},
	{text: "中国 浙江省 杭州市 余杭区 文一西路 969号", want: P("浙江省", "33", "杭州市", "余杭区", "文一西路 969号")},
	{text: "浙江省，杭州市，滨江区，网商路 699号", want: P("浙江省", "33", "杭州市", "滨江区", "网商路 699号")},
	{text: "吉林省吉林市船营区北京路 1号", want: P("吉林省", "22", "吉林市", "船营区", "北京路 1号")},
	{text: "吉林省 吉林 船营区 北京路 1号", want: P("吉林省", "22", "吉林市", "船营区", "北京路 1号")},
	{text: "广西省 南宁市 青秀区 民族大道 100号", want: P("广西壮族自治区", "45", "南宁市", "青秀区", "民族大道 100号")},
	{text: "北京市 北京市市辖区 东城区 王府井大街 1号", want: P("北京市", "11", "北京市", "东城区", "王府井大街 1号")},
	{text: "浙江省 杭州市 西湖区 浙江省杭州市西湖区文三路90号",
		want: P("浙江省", "33", "杭州市", "西湖区", "浙江省杭州市西湖区文三路90号")},
	{text: "河北省唐山市路北区建设路1号", want: P("河北省", "13", "唐山市", "路北区", "建设路1号")},
	{text: "黑龙江省哈尔滨市道里区中央大街1号", want: P("黑龙江省", "23", "哈尔滨市", "道里区", "中央大街1号")},
	{text: "浙江省杭州市文三路华星科技园区", want: P("浙江省", "33", "杭州市", "", "文三路华星科技园区"), codes: []string{CodeIncomplete}},
	{text: "山东省济南市市中区经七路 1号", want: P("山东省", "37", "济南市", "市中区", "经七路 1号")},
	// A city without a province: the province follows from it.
	{text: "杭州市西湖区文三路90号", want: P("浙江省", "33", "杭州市", "西湖区", "文三路90号")},
	{text: "吉林市 丰满区 吉林大街 5号", want: P("吉林省", "22", "吉林市", "丰满区", "吉林大街 5号")},
	// Autonomous regions, prefectures and leagues; suffixes 旗 and 县.
	{text: "广西壮族自治区 南宁市 青秀区 民族大道 100号", want: P("广西壮族自治区", "45", "南宁市", "青秀区", "民族大道 100号")},
	{text: "广西 桂林 秀峰区 中山中路 2号", want: P("广西壮族自治区", "45", "桂林市", "秀峰区", "中山中路 2号")},
	{text: "内蒙古 呼和浩特市 赛罕区 大学西街 235号", want: P("内蒙古自治区", "15", "呼和浩特市", "赛罕区", "大学西街 235号")},
	{text: "内蒙古自治区锡林郭勒盟正蓝旗上都镇", want: P("内蒙古自治区", "15", "锡林郭勒盟", "正蓝旗", "上都镇")},
	{text: "新疆维吾尔自治区 乌鲁木齐市 天山区 解放北路 1号", want: P("新疆维吾尔自治区", "65", "乌鲁木齐市", "天山区", "解放北路 1号")},
	{text: "新疆 伊犁州 伊宁市 斯大林街 10号", want: P("新疆维吾尔自治区", "65", "伊犁哈萨克自治州", "伊宁市", "斯大林街 10号")},
	{text: "新疆 巴州 库尔勒市 人民东路 1号", want: P("新疆维吾尔自治区", "65", "巴音郭楞蒙古自治州", "库尔勒市", "人民东路 1号")},
	{text: "西藏自治区 拉萨市 城关区 北京中路 5号", want: P("西藏自治区", "54", "拉萨市", "城关区", "北京中路 5号")},
	{text: "宁夏 银川市 兴庆区 解放西街 2号", want: P("宁夏回族自治区", "64", "银川市", "兴庆区", "解放西街 2号")},
	{text: "云南省 西双版纳傣族自治州 景洪市 宣慰大道 1号", want: P("云南省", "53", "西双版纳傣族自治州", "景洪市", "宣慰大道 1号")},
	{text: "云南 大理州 大理市 人民路 3号", want: P("云南省", "53", "大理白族自治州", "大理市", "人民路 3号")},
	{text: "四川省 阿坝州 九寨沟县 漳扎镇 1号", want: P("四川省", "51", "阿坝藏族羌族自治州", "九寨沟县", "漳扎镇 1号")},
	{text: "贵州省 黔东南苗族侗族自治州 凯里市 北京东路 6号", want: P("贵州省", "52", "黔东南苗族侗族自治州", "凯里市", "北京东路 6号")},
	{text: "湖北省 恩施土家族苗族自治州 恩施市 舞阳大街 8号", want: P("湖北省", "42", "恩施土家族苗族自治州", "恩施市", "舞阳大街 8号")},
	{text: "青海省 海南州 共和县 恰卜恰镇 1号", want: P("青海省", "63", "海南藏族自治州", "共和县", "恰卜恰镇 1号")},
	{text: "河南省新乡市红旗区平原路 1号", want: P("河南省", "41", "新乡市", "红旗区", "平原路 1号")},
	{text: "湖北省 荆州市 沙市区 北京中路 100号", want: P("湖北省", "42", "荆州市", "沙市区", "北京中路 100号")},
	// County-level cities under a prefecture.
	{text: "江苏省 苏州市 昆山市 玉山镇 前进西路 1号", want: P("江苏省", "32", "苏州市", "昆山市", "玉山镇 前进西路 1号")},
	{text: "浙江省金华市义乌市稠城街道工人北路1号", want: P("浙江省", "33", "金华市", "义乌市", "稠城街道工人北路1号")},
	// Cities without districts and units the province administers directly.
	{text: "广东省 东莞市 长安镇 振安路 368号", want: P("广东省", "44", "东莞市", "", "长安镇 振安路 368号")},
	{text: "广东 东莞市 东莞市 南城街道 1号", want: P("广东省", "44", "东莞市", "", "南城街道 1号")},
	{text: "海南省 儋州市 那大镇 中兴大街 1号", want: P("海南省", "46", "儋州市", "", "那大镇 中兴大街 1号")},
	{text: "海南省 琼海市 嘉积镇 银海路 1号", want: P("海南省", "46", "琼海市", "", "嘉积镇 银海路 1号")},
	{text: "海南省 三亚市 吉阳区 迎宾路 1号", want: P("海南省", "46", "三亚市", "吉阳区", "迎宾路 1号")},
	{text: "湖北省 神农架林区 松柏镇 神农大道 1号", want: P("湖北省", "42", "神农架林区", "", "松柏镇 神农大道 1号")},
	{text: "河南省 济源市 沁园街道 济水大街 1号", want: P("河南省", "41", "济源市", "", "沁园街道 济水大街 1号")},
	{text: "新疆 石河子市 北四路 1号", want: P("新疆维吾尔自治区", "65", "石河子市", "", "北四路 1号")},
	// Hong Kong, Macau, Taiwan: their own forms, checked for the province only.
	{text: "香港特别行政区 九龙 油尖旺区 弥敦道 100号", want: P("香港特别行政区", "81", "九龙", "油尖旺区", "弥敦道 100号")},
	{text: "香港 中西区 皇后大道中 99号", want: P("香港特别行政区", "81", "", "中西区", "皇后大道中 99号")},
	{text: "澳门特别行政区 澳门半岛 花地玛堂区 黑沙环新街 52号", want: P("澳门特别行政区", "82", "澳门半岛", "花地玛堂区", "黑沙环新街 52号")},
	{text: "台湾省 台北市 中正区 重庆南路一段 122号", want: P("台湾省", "71", "台北市", "中正区", "重庆南路一段 122号")},
	// International: not checked for completeness.
	{text: "350 Fifth Avenue, New York, NY 10118, USA", want: Parsed{Rest: "350 Fifth Avenue, New York, NY 10118, USA"}},
	{text: "12 Expo Boxing Rd, Sydney NSW 2000", want: Parsed{Rest: "12 Expo Boxing Rd, Sydney NSW 2000"}},
	// Missing.
	{text: "", codes: []string{CodeMissing}},
	{text: "   \t", codes: []string{CodeMissing}},
	{text: "，，——", codes: []string{CodeMissing}},
	// Incomplete.
	{text: "浙江省 杭州市 文三路 90号", want: P("浙江省", "33", "杭州市", "", "文三路 90号"), codes: []string{CodeIncomplete}},
	{text: "浙江省 文三路 90号", want: P("浙江省", "33", "", "", "文三路 90号"), codes: []string{CodeIncomplete}},
	{text: "上海市 碧波路 690号", want: P("上海市", "31", "上海市", "", "碧波路 690号"), codes: []string{CodeIncomplete}},
	{text: "文三路 90号", want: Parsed{Rest: "文三路 90号"}, codes: []string{CodeIncomplete}},
	{text: "杭州市 北山街道 1号", want: P("浙江省", "33", "杭州市", "", "北山街道 1号"), codes: []string{CodeIncomplete}},
	// Ambiguous.
	{text: "浙江省 南京市 鼓楼区 中山路 1号", want: P("浙江省", "33", "南京市", "鼓楼区", "中山路 1号"), codes: []string{CodeAmbiguous}},
	{text: "浙江省 江苏省 南京市 鼓楼区 中山路 1号", want: P("浙江省", "33", "南京市", "鼓楼区", "中山路 1号"),
		codes: []string{CodeAmbiguous}},
	{text: "上海市 南京市 玄武区 中山东路 1号", want: P("上海市", "31", "南京市", "玄武区", "中山东路 1号"),
		codes: []string{CodeAmbiguous}},
	{text: "海南藏族自治州 共和县 恰卜恰镇 1号", want: P("青海省", "63", "海南藏族自治州", "共和县", "恰卜恰镇 1号")},
	{text: "海南 海口市 龙华区 滨海大道 1号", want: P("海南省", "46", "海口市", "龙华区", "滨海大道 1号")},
	{text: "天津市 河北区 中山路 1号", want: P("天津市", "12", "天津市", "河北区", "中山路 1号")},
	// Region served.
	{text: "黑龙江省 哈尔滨市 南岗区 西大直街 92号", want: P("黑龙江省", "23", "哈尔滨市", "南岗区", "西大直街 92号"),
		rules: servedNot("23"), codes: []string{CodeRegionUnserved}},
	{text: "黑龙江省 哈尔滨市 南岗区 西大直街 92号", want: P("黑龙江省", "23", "哈尔滨市", "南岗区", "西大直街 92号"),
		rules: servedNot("33")},
	// PO boxes.
	{text: "1 Main St, PO Box 12, Springfield", want: Parsed{Rest: "1 Main St, PO Box 12, Springfield"}, codes: []string{CodePOBox}},
	{text: "P.O. Box 4567, Central, Hong Kong", want: Parsed{Rest: "P.O. Box 4567, Central, Hong Kong"}, codes: []string{CodePOBox}},
	{text: "Post Office Box 77, Auckland 1140, New Zealand", want: Parsed{Rest: "Post Office Box 77, Auckland 1140, New Zealand"},
		codes: []string{CodePOBox}},
	{text: "GPO Box 1234, Sydney NSW 2001", want: Parsed{Rest: "GPO Box 1234, Sydney NSW 2001"}, codes: []string{CodePOBox}},
	{text: "1 Main St, PO Box 12, Springfield", want: Parsed{Rest: "1 Main St, PO Box 12, Springfield"}, rules: &Rules{}},
	{text: "北京市 海淀区 8888信箱", want: P("北京市", "11", "北京市", "海淀区", "8888信箱"), codes: []string{CodePOBox}},
	{text: "广东省 广州市 越秀区 邮政信箱 123号", want: P("广东省", "44", "广州市", "越秀区", "邮政信箱 123号"), codes: []string{CodePOBox}},
	{text: "江苏省 南京市 玄武区 中山东路 邮箱 25号", want: P("江苏省", "32", "南京市", "玄武区", "中山东路 邮箱 25号"),
		codes: []string{CodePOBox}},
	{text: "陕西省 西安市 雁塔区 第 １２３ 号信箱", want: P("陕西省", "61", "西安市", "雁塔区", "第 １２３ 号信箱"), codes: []string{CodePOBox}},
	{text: "浙江省 杭州市 西湖区 文三路 90号 邮箱 123456@qq.com", want: P("浙江省", "33", "杭州市", "西湖区", "文三路 90号 邮箱 123456@qq.com")},
	{text: "浙江省 杭州市 西湖区 信箱小区 3幢", want: P("浙江省", "33", "杭州市", "西湖区", "信箱小区 3幢")},
	// Bonded zones.
	{text: "上海市 浦东新区 外高桥保税区 富特北路 211号", want: P("上海市", "31", "上海市", "浦东新区", "外高桥保税区 富特北路 211号"),
		codes: []string{CodeBondedZone}},
	{text: "浙江省 宁波市 北仑区 宁波保税区 港东大道 8号", want: P("浙江省", "33", "宁波市", "北仑区", "宁波保税区 港东大道 8号"),
		codes: []string{CodeBondedZone}},
	{text: "广东省 广州市 黄埔区 广州保税区 东江大道 1号", want: P("广东省", "44", "广州市", "黄埔区", "广州保税区 东江大道 1号"),
		codes: []string{CodeBondedZone}},
	{text: "福建省厦门市湖里区象屿保税区象兴一路1号", want: P("福建省", "35", "厦门市", "湖里区", "象屿保税区象兴一路1号"),
		codes: []string{CodeBondedZone}},
	{text: "河南省 郑州市 新郑市 郑州新郑综合保税区 1号", want: P("河南省", "41", "郑州市", "新郑市", "郑州新郑综合保税区 1号"),
		codes: []string{CodeBondedZone}},
	{text: "上海市 浦东新区 洋山保税港区 1号", want: P("上海市", "31", "上海市", "浦东新区", "洋山保税港区 1号"),
		codes: []string{CodeBondedZone}},
	{text: "Unit 5, Jebel Ali Free Zone, Dubai", want: Parsed{Rest: "Unit 5, Jebel Ali Free Zone, Dubai"}, codes: []string{CodeBondedZone}},
	{text: "上海市 浦东新区 外高桥保税区 富特北路 211号", want: P("上海市", "31", "上海市", "浦东新区", "外高桥保税区 富特北路 211号"),
		rules: &Rules{BondedSKU: true}},
	// Everything at once, in order of severity.
	{text: "浙江省 南京市 邮政信箱 12号 综合保税区", want: P("浙江省", "33", "南京市", "", "邮政信箱 12号 综合保税区"),
		rules: servedNot("33"), codes: []string{CodeIncomplete, CodeAmbiguous, CodeRegionUnserved, CodePOBox, CodeBondedZone}},
}

func TestParseAndCheck(t *testing.T) {
	if len(cases) < 40 {
		t.Fatalf("%d cases, want at least 40", len(cases))
	}
	for _, c := range cases {
		rules := strict
		if c.rules != nil {
			rules = *c.rules
		}
		if got := Parse(c.text); got != c.want {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", c.text, got, c.want)
		}
		findings := Check(c.text, rules)
		var codes []string
		for _, f := range findings {
			codes = append(codes, f.Code)
			if f.Field == "" || f.Detail == "" {
				t.Errorf("Check(%q): finding %+v lacks a field or detail", c.text, f)
			}
		}
		if !slices.Equal(codes, c.codes) {
			t.Errorf("Check(%q) = %v, want codes %v", c.text, findings, c.codes)
		}
	}
}

// TestDetailNeverQuotesTheStreet: a Detail names at most gazetteer names,
// never the street part.
func TestDetailNeverQuotesTheStreet(t *testing.T) {
	all := Rules{RefusePOBox: true, Served: func(string) bool { return false }}
	for _, c := range cases {
		rest := Parse(c.text).Rest
		for _, f := range Check(c.text, all) {
			if rest != "" && strings.Contains(f.Detail, rest) {
				t.Errorf("Check(%q): detail %q quotes the street part %q", c.text, f.Detail, rest)
			}
			if name, ok := unknownName(f.Detail); ok {
				t.Errorf("Check(%q): detail %q quotes %q, not a gazetteer name", c.text, f.Detail, name)
			}
		}
	}
}

// unknownName returns a run of non-ASCII text in detail that is not a
// province's or city's full name.
func unknownName(detail string) (string, bool) {
	for i := 0; i < len(detail); {
		if detail[i] < utf8.RuneSelf {
			i++
			continue
		}
		j := i
		for j < len(detail) && detail[j] >= utf8.RuneSelf {
			j++
		}
		if !gaz.canonical[detail[i:j]] {
			return detail[i:j], true
		}
		i = j
	}
	return "", false
}

func TestCheckDetails(t *testing.T) {
	for _, c := range []struct {
		text  string
		rules Rules
		want  []Finding
	}{
		{"浙江省 杭州市 文三路 90号", strict, []Finding{{CodeIncomplete, FieldDistrict, "no district after 杭州市"}}},
		{"上海市 碧波路 690号", strict, []Finding{{CodeIncomplete, FieldDistrict, "no district after 上海市"}}},
		{"浙江省 文三路 90号", strict, []Finding{{CodeIncomplete, FieldCity, "no city after 浙江省"}}},
		{"文三路 90号", strict, []Finding{{CodeIncomplete, FieldProvince, "no province or city recognised"}}},
		{"浙江省 南京市 鼓楼区 中山路 1号", strict, []Finding{{CodeAmbiguous, FieldCity, "city 南京市 is in 江苏省, not in 浙江省"}}},
		{"浙江省 江苏省 南京市 鼓楼区 中山路 1号", strict,
			[]Finding{{CodeAmbiguous, FieldProvince, "the address names two provinces, 浙江省 and 江苏省"}}},
		{"广西 桂林 秀峰区 中山中路 2号", Rules{Served: func(c string) bool { return c == "44" }},
			[]Finding{{CodeRegionUnserved, FieldProvince, "no warehouse serves 广西壮族自治区"}}},
		{"", strict, []Finding{{CodeMissing, FieldAddress, "the address is empty"}}},
	} {
		if got := Check(c.text, c.rules); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Check(%q)\n got %+v\nwant %+v", c.text, got, c.want)
		}
	}
}

func TestServedGetsTheProvinceCode(t *testing.T) {
	var asked []string
	rules := Rules{Served: func(c string) bool { asked = append(asked, c); return true }}
	Check("杭州市西湖区文三路90号", rules)
	Check("1 Main St, Springfield", rules)
	Check("北京 朝阳区 三里屯路 19号", rules)
	if want := []string{"33", "11"}; !slices.Equal(asked, want) {
		t.Errorf("Served asked for %v, want %v", asked, want)
	}
}

// TestGazetteer checks the table against itself: every city parses as
// itself under its province, and alone (its province then follows from
// it), by full name and by short form.
func TestGazetteer(t *testing.T) {
	if len(gaz.provinces) != 34 {
		t.Fatalf("%d provinces, want 34", len(gaz.provinces))
	}
	prefectures := 0
	for _, p := range gaz.provinces {
		if len(p.code) != 2 || p.code[0] < '1' || p.code[0] > '8' {
			t.Errorf("province %s: code %q", p.full, p.code)
		}
		if got := Parse(p.full + " 某路 1号"); got.ProvinceCode != p.code {
			t.Errorf("Parse(%s …) province %q, want %s", p.full, got.ProvinceCode, p.code)
		}
		for _, c := range p.cities {
			if !c.county && !p.special {
				prefectures++
			}
			for _, text := range []string{p.full + " " + c.full + " 某某路", p.full + c.full + "某某路", c.full + " 某某路"} {
				got := Parse(text)
				if got.City != c.full || got.ProvinceCode != p.code || got.Rest != "某某路" {
					t.Errorf("Parse(%q) = %+v, want %s in %s", text, got, c.full, p.full)
				}
			}
		}
	}
	if prefectures != 333 {
		t.Errorf("%d prefecture-level divisions, want 333", prefectures)
	}
	for r, es := range gaz.cityNames {
		for _, e := range es {
			if _, _, province := matchProvince(e.name, 0); !e.short || province {
				continue // 吉林 and 海南 alone are provinces
			}
			got := Parse(e.name + " 某某路")
			if got.City != e.city.full {
				t.Errorf("short form %s (first rune %c) parses as city %q, want %s", e.name, r, got.City, e.city.full)
			}
		}
	}
}

// TestNoSharedCityNames: no short form names cities in two provinces (were
// there one, a province-less address naming it is ambiguous).
func TestNoSharedCityNames(t *testing.T) {
	for _, es := range gaz.cityNames {
		for _, e := range es {
			if other := sharedElsewhere(e); other != nil {
				t.Errorf("%s names %s and %s", e.name, e.city.full, other.full)
			}
		}
	}
}

func TestLatinWords(t *testing.T) {
	for _, c := range []struct {
		text          string
		poBox, bonded bool
	}{
		{"PO Box 12", true, false},
		{"p.o.box 12", true, false},
		{"P O Box 9", true, false},
		{"POBox 9", true, false},
		{"post office box 3", true, false},
		{"Expo Box Hill", false, false},
		{"Box Hill, Melbourne", false, false},
		{"Bonded Warehouse 3, Port Rd", false, true},
		{"Shanghai Pilot Free Trade Zone", false, true},
		{"Free parking, Zone 5", false, false},
		{"Freedom Zone", false, false},
	} {
		if got := latinPOBox(c.text); got != c.poBox {
			t.Errorf("latinPOBox(%q) = %v, want %v", c.text, got, c.poBox)
		}
		if got := latinBonded(c.text); got != c.bonded {
			t.Errorf("latinBonded(%q) = %v, want %v", c.text, got, c.bonded)
		}
	}
}

func TestLongTextIsBounded(t *testing.T) {
	long := "浙江省 杭州市 西湖区 " + strings.Repeat("文", 4000) + " 保税区"
	got := Parse(long)
	if got.District != "西湖区" || !strings.HasSuffix(got.Rest, "保税区") {
		t.Errorf("Parse(long) = %q %q, rest of %d bytes", got.City, got.District, len(got.Rest))
	}
	if f := Check(long, strict); len(f) != 0 {
		t.Errorf("Check(long) = %v, want none (the bonded zone lies beyond ScanBytesMax)", f)
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range cases {
		f.Add(c.text)
	}
	f.Add("\xff\xfe浙江")
	f.Add("吉林市市")
	f.Add("海南州州州")
	f.Fuzz(func(t *testing.T, text string) {
		p := Parse(text)
		if p != Parse(text) {
			t.Fatalf("Parse(%q) is not deterministic", text)
		}
		if !strings.Contains(text, p.Rest) || !strings.Contains(text, p.District) {
			t.Fatalf("Parse(%q) = %+v: district or rest not from the text", text, p)
		}
		if p.Province != "" && !gaz.canonical[p.Province] || p.City != "" && !gaz.canonical[p.City] {
			t.Fatalf("Parse(%q) = %+v: province or city not from the gazetteer", text, p)
		}
		if (p.Province == "") != (p.ProvinceCode == "") || p.City != "" && p.Province == "" {
			t.Fatalf("Parse(%q) = %+v: parts inconsistent", text, p)
		}
	})
}

func FuzzCheck(f *testing.F) {
	for _, c := range cases {
		f.Add(c.text, true, false)
	}
	f.Add("PO BOX", true, false)
	f.Add("1信箱", true, true)
	f.Fuzz(func(t *testing.T, text string, refusePOBox, bonded bool) {
		rules := Rules{RefusePOBox: refusePOBox, BondedSKU: bonded, Served: func(c string) bool { return c < "40" }}
		got := Check(text, rules)
		if again := Check(text, rules); !reflect.DeepEqual(got, again) {
			t.Fatalf("Check(%q) not deterministic: %v then %v", text, got, again)
		}
		rest := Parse(text).Rest
		for _, f := range got {
			if name, ok := unknownName(f.Detail); ok {
				t.Fatalf("Check(%q): detail %q quotes %q", text, f.Detail, name)
			}
			// Templates hold no digits and quote only gazetteer names: with
			// those names taken out, no rest holding a digit or a non-ASCII
			// byte (a street, a house number) can appear in a Detail.
			bare := stripNames(f.Detail)
			if strings.ContainsAny(bare, "0123456789") {
				t.Fatalf("Check(%q): detail %q holds a digit", text, f.Detail)
			}
			if rest != "" && strings.Contains(bare, rest) && strings.ContainsFunc(rest, func(r rune) bool {
				return r >= utf8.RuneSelf || '0' <= r && r <= '9'
			}) {
				t.Fatalf("Check(%q): detail %q quotes the rest %q", text, f.Detail, rest)
			}
		}
	})
}

// stripNames replaces each run of non-ASCII text in detail with "#".
func stripNames(detail string) string {
	var b strings.Builder
	for i := 0; i < len(detail); {
		if detail[i] < utf8.RuneSelf {
			b.WriteByte(detail[i])
			i++
			continue
		}
		for i < len(detail) && detail[i] >= utf8.RuneSelf {
			i++
		}
		b.WriteByte('#')
	}
	return b.String()
}

var benchTexts = []string{
	"浙江省 杭州市 西湖区 文三路 90号",
	"上海市 浦东新区 碧波路 690号",
	"北京市朝阳区建国路88号SOHO现代城",
	"新疆维吾尔自治区 伊犁哈萨克自治州 伊宁市 斯大林街 10号",
	"广东省深圳市南山区科技园科苑路15号",
	"1 Main St, PO Box 12, Springfield",
	"浙江省 宁波市 北仑区 宁波保税区 港东大道 8号",
	"杭州市西湖区文三路90号",
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Parse(benchTexts[i%len(benchTexts)])
	}
}

func BenchmarkCheck(b *testing.B) {
	rules := Rules{RefusePOBox: true, Served: func(c string) bool { return c != "65" }}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Check(benchTexts[i%len(benchTexts)], rules)
	}
}

// TestLeaf: the package imports the standard library only (channels and the
// grid import it, never the reverse).
func TestLeaf(t *testing.T) {
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("address imports %s: it must stay a leaf on the standard library", imp)
		}
	}
	if len(pkg.Imports) == 0 {
		t.Error("found no imports: not run from the package directory?")
	}
}

// TestSharedCityName: were a short form to name cities in two provinces, a
// province-less address naming it is ambiguous. The gazetteer holds none
// (TestNoSharedCityNames), so the test lends 杭州 to 南京市 for a while.
func TestSharedCityName(t *testing.T) {
	var nanjing *city
	for _, c := range gaz.byCode["32"].cities {
		if c.full == "南京市" {
			nanjing = c
		}
	}
	saved := gaz.cityNames['杭']
	gaz.cityNames['杭'] = append(slices.Clone(saved), nameEntry{name: "杭州", short: true, city: nanjing})
	defer func() { gaz.cityNames['杭'] = saved }()

	want := []Finding{{CodeAmbiguous, FieldCity, "no province given, and the city may be 杭州市 or 南京市"}}
	if got := Check("杭州 西湖区 文三路 90号", strict); !reflect.DeepEqual(got, want) {
		t.Errorf("Check = %+v, want %+v", got, want)
	}
	if got := Check("浙江省 杭州 西湖区 文三路 90号", strict); len(got) != 0 {
		t.Errorf("with the province given, Check = %+v, want none", got)
	}
}
