package address

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// gazetteerRows is China's provincial-level divisions and, under each, its
// prefecture-level divisions (地级市, 自治州, 地区, 盟), as of 2024.
//
// One row per province: "code|full name|short forms|cities", where code is
// the GB/T 2260 two-digit code and the short forms are comma-separated. The
// cities are space-separated; each is written as
//
//	杭州市                     short form derived: 杭州 (市, 地区 or 盟 dropped)
//	延边朝鲜族自治州/延边       explicit short forms after "/" (an 自治州
//	                           also gets short+"州": 延边州)
//	新竹县/                    no short form
//	!东莞市                    prefecture-level city without districts
//	                           (towns come next); short form derived
//	*仙桃市                    county-level unit the province administers
//	                           directly: it sits where a city does, has no
//	                           districts and is matched by its full name only
//
// The four municipalities list no cities: the municipality is the city and
// the next part is a district. Hong Kong, Macau and Taiwan list the parts
// that platforms' address libraries put at the city position.
var gazetteerRows = []string{
	"11|北京市|北京|",
	"12|天津市|天津|",
	"13|河北省|河北|石家庄市 唐山市 秦皇岛市 邯郸市 邢台市 保定市 张家口市 承德市 沧州市 廊坊市 衡水市",
	"14|山西省|山西|太原市 大同市 阳泉市 长治市 晋城市 朔州市 晋中市 运城市 忻州市 临汾市 吕梁市",
	"15|内蒙古自治区|内蒙古,内蒙|呼和浩特市 包头市 乌海市 赤峰市 通辽市 鄂尔多斯市 呼伦贝尔市 巴彦淖尔市 乌兰察布市 " +
		"兴安盟 锡林郭勒盟 阿拉善盟",
	"21|辽宁省|辽宁|沈阳市 大连市 鞍山市 抚顺市 本溪市 丹东市 锦州市 营口市 阜新市 辽阳市 盘锦市 铁岭市 朝阳市 葫芦岛市",
	"22|吉林省|吉林|长春市 吉林市 四平市 辽源市 通化市 白山市 松原市 白城市 延边朝鲜族自治州/延边",
	"23|黑龙江省|黑龙江|哈尔滨市 齐齐哈尔市 鸡西市 鹤岗市 双鸭山市 大庆市 伊春市 佳木斯市 七台河市 牡丹江市 黑河市 绥化市 " +
		"大兴安岭地区",
	"31|上海市|上海|",
	"32|江苏省|江苏|南京市 无锡市 徐州市 常州市 苏州市 南通市 连云港市 淮安市 盐城市 扬州市 镇江市 泰州市 宿迁市",
	"33|浙江省|浙江|杭州市 宁波市 温州市 嘉兴市 湖州市 绍兴市 金华市 衢州市 舟山市 台州市 丽水市",
	"34|安徽省|安徽|合肥市 芜湖市 蚌埠市 淮南市 马鞍山市 淮北市 铜陵市 安庆市 黄山市 滁州市 阜阳市 宿州市 六安市 亳州市 " +
		"池州市 宣城市",
	"35|福建省|福建|福州市 厦门市 莆田市 三明市 泉州市 漳州市 南平市 龙岩市 宁德市",
	"36|江西省|江西|南昌市 景德镇市 萍乡市 九江市 新余市 鹰潭市 赣州市 吉安市 宜春市 抚州市 上饶市",
	"37|山东省|山东|济南市 青岛市 淄博市 枣庄市 东营市 烟台市 潍坊市 济宁市 泰安市 威海市 日照市 临沂市 德州市 聊城市 " +
		"滨州市 菏泽市",
	"41|河南省|河南|郑州市 开封市 洛阳市 平顶山市 安阳市 鹤壁市 新乡市 焦作市 濮阳市 许昌市 漯河市 三门峡市 南阳市 商丘市 " +
		"信阳市 周口市 驻马店市 *济源市",
	"42|湖北省|湖北|武汉市 黄石市 十堰市 宜昌市 襄阳市 鄂州市 荆门市 孝感市 荆州市 黄冈市 咸宁市 随州市 " +
		"恩施土家族苗族自治州/恩施 *仙桃市 *潜江市 *天门市 *神农架林区",
	"43|湖南省|湖南|长沙市 株洲市 湘潭市 衡阳市 邵阳市 岳阳市 常德市 张家界市 益阳市 郴州市 永州市 怀化市 娄底市 " +
		"湘西土家族苗族自治州/湘西",
	"44|广东省|广东|广州市 韶关市 深圳市 珠海市 汕头市 佛山市 江门市 湛江市 茂名市 肇庆市 惠州市 梅州市 汕尾市 河源市 " +
		"阳江市 清远市 !东莞市 !中山市 潮州市 揭阳市 云浮市",
	"45|广西壮族自治区|广西|南宁市 柳州市 桂林市 梧州市 北海市 防城港市 钦州市 贵港市 玉林市 百色市 贺州市 河池市 来宾市 " +
		"崇左市",
	"46|海南省|海南|海口市 三亚市 三沙市 !儋州市 *五指山市 *琼海市 *文昌市 *万宁市 *东方市 *定安县 *屯昌县 *澄迈县 " +
		"*临高县 *白沙黎族自治县 *昌江黎族自治县 *乐东黎族自治县 *陵水黎族自治县 *保亭黎族苗族自治县 *琼中黎族苗族自治县",
	"50|重庆市|重庆|",
	"51|四川省|四川|成都市 自贡市 攀枝花市 泸州市 德阳市 绵阳市 广元市 遂宁市 内江市 乐山市 南充市 眉山市 宜宾市 广安市 " +
		"达州市 雅安市 巴中市 资阳市 阿坝藏族羌族自治州/阿坝 甘孜藏族自治州/甘孜 凉山彝族自治州/凉山",
	"52|贵州省|贵州|贵阳市 六盘水市 遵义市 安顺市 毕节市 铜仁市 黔西南布依族苗族自治州/黔西南 " +
		"黔东南苗族侗族自治州/黔东南 黔南布依族苗族自治州/黔南",
	"53|云南省|云南|昆明市 曲靖市 玉溪市 保山市 昭通市 丽江市 普洱市 临沧市 楚雄彝族自治州/楚雄 红河哈尼族彝族自治州/红河 " +
		"文山壮族苗族自治州/文山 西双版纳傣族自治州/西双版纳 大理白族自治州/大理 德宏傣族景颇族自治州/德宏 " +
		"怒江傈僳族自治州/怒江 迪庆藏族自治州/迪庆",
	"54|西藏自治区|西藏|拉萨市 日喀则市 昌都市 林芝市 山南市 那曲市 阿里地区",
	"61|陕西省|陕西|西安市 铜川市 宝鸡市 咸阳市 渭南市 延安市 汉中市 榆林市 安康市 商洛市",
	"62|甘肃省|甘肃|兰州市 !嘉峪关市 金昌市 白银市 天水市 武威市 张掖市 平凉市 酒泉市 庆阳市 定西市 陇南市 " +
		"临夏回族自治州/临夏 甘南藏族自治州/甘南",
	"63|青海省|青海|西宁市 海东市 海北藏族自治州/海北 黄南藏族自治州/黄南 海南藏族自治州/海南 果洛藏族自治州/果洛 " +
		"玉树藏族自治州/玉树 海西蒙古族藏族自治州/海西",
	"64|宁夏回族自治区|宁夏|银川市 石嘴山市 吴忠市 固原市 中卫市",
	"65|新疆维吾尔自治区|新疆|乌鲁木齐市 克拉玛依市 吐鲁番市 哈密市 阿克苏地区 喀什地区 和田地区 塔城地区 阿勒泰地区 " +
		"昌吉回族自治州/昌吉 博尔塔拉蒙古自治州/博尔塔拉,博州 巴音郭楞蒙古自治州/巴音郭楞,巴州 " +
		"克孜勒苏柯尔克孜自治州/克孜勒苏,克州 伊犁哈萨克自治州/伊犁 " +
		"*石河子市 *阿拉尔市 *图木舒克市 *五家渠市 *北屯市 *铁门关市 *双河市 *可克达拉市 *昆玉市 *胡杨河市 *新星市 *白杨市",
	"71|台湾省|台湾|台北市 新北市 桃园市 台中市 台南市 高雄市 基隆市 新竹市 嘉义市 新竹县/ 苗栗县/ 彰化县/ 南投县/ " +
		"云林县/ 嘉义县/ 屏东县/ 宜兰县/ 花莲县/ 台东县/ 澎湖县/ 金门县/ 连江县/",
	"81|香港特别行政区|香港,香港特区|香港岛/ 九龙/ 新界/",
	"82|澳门特别行政区|澳门,澳门特区|澳门半岛/ 氹仔岛/氹仔 路环岛/路环",
}

// Counts the gazetteer must hold (checked at init): a wrong edit of the
// table fails every test rather than misparsing quietly.
const (
	provincesCount  = 34
	prefecturesWant = 333 // prefecture-level divisions of the mainland
)

// province is one provincial-level division.
type province struct {
	code         string
	full         string
	municipality bool // 北京, 上海, 天津, 重庆: the city is the province
	special      bool // 香港, 澳门, 台湾: own address forms, completeness beyond the province unchecked
	cities       []*city
}

// city is one entry at the city position: a prefecture-level division or
// a county-level unit a province administers directly.
type city struct {
	full        string
	province    *province
	noDistricts bool // towns, not districts, come next
	county      bool // a directly administered county-level unit
}

// nameEntry is one spelling of a province or city, indexed by first rune.
type nameEntry struct {
	name     string
	short    bool // a short form: rejected when the next rune continues another word
	province *province
	city     *city
}

// gazetteer is the table compiled for lookups; immutable after init.
type gazetteer struct {
	provinces []*province
	byCode    map[string]*province
	// provinceNames and cityNames map a first rune to the spellings that
	// start with it, longest first.
	provinceNames map[rune][]nameEntry
	cityNames     map[rune][]nameEntry
	// canonical is every full name (provinces and cities): the only
	// non-ASCII text a Finding's Detail may quote.
	canonical map[string]bool
}

var gaz = compileGazetteer(gazetteerRows)

// compileGazetteer parses the table; it panics on a malformed one (the
// table is code, not input).
func compileGazetteer(rows []string) *gazetteer {
	g := &gazetteer{
		byCode:        map[string]*province{},
		provinceNames: map[rune][]nameEntry{},
		cityNames:     map[rune][]nameEntry{},
		canonical:     map[string]bool{},
	}
	prefectures := 0
	for _, row := range rows {
		parts := strings.Split(row, "|")
		if len(parts) != 4 {
			panic(fmt.Sprintf("address: gazetteer row %q: want 4 fields", row))
		}
		p := &province{code: parts[0], full: parts[1]}
		switch p.code {
		case "11", "12", "31", "50":
			p.municipality = true
		case "71", "81", "82":
			p.special = true
		}
		if g.byCode[p.code] != nil {
			panic(fmt.Sprintf("address: gazetteer code %s twice", p.code))
		}
		g.byCode[p.code] = p
		g.provinces = append(g.provinces, p)
		g.canonical[p.full] = true
		g.addName(g.provinceNames, nameEntry{name: p.full, province: p})
		for _, s := range strings.Split(parts[2], ",") {
			g.addName(g.provinceNames, nameEntry{name: s, short: true, province: p})
		}
		if p.municipality != (parts[3] == "") {
			panic(fmt.Sprintf("address: gazetteer row %s: municipalities and only they list no cities", p.code))
		}
		for _, tok := range strings.Fields(parts[3]) {
			c := g.addCity(p, tok)
			if !c.county && !p.special {
				prefectures++
			}
		}
	}
	if len(g.provinces) != provincesCount || prefectures != prefecturesWant {
		panic(fmt.Sprintf("address: gazetteer holds %d provinces and %d prefectures, want %d and %d",
			len(g.provinces), prefectures, provincesCount, prefecturesWant))
	}
	for _, idx := range []map[rune][]nameEntry{g.provinceNames, g.cityNames} {
		for r, es := range idx {
			sort.SliceStable(es, func(i, j int) bool { return len(es[i].name) > len(es[j].name) })
			idx[r] = es
		}
	}
	return g
}

// addCity compiles one city token of a row (see gazetteerRows).
func (g *gazetteer) addCity(p *province, tok string) *city {
	c := &city{province: p}
	switch {
	case strings.HasPrefix(tok, "*"):
		c.county, c.noDistricts = true, true
		tok = tok[1:]
	case strings.HasPrefix(tok, "!"):
		c.noDistricts = true
		tok = tok[1:]
	}
	full, shorts, explicit := strings.Cut(tok, "/")
	c.full = full
	if g.canonical[full] {
		panic(fmt.Sprintf("address: gazetteer name %s twice", full))
	}
	g.canonical[full] = true
	p.cities = append(p.cities, c)
	g.addName(g.cityNames, nameEntry{name: full, city: c})
	if c.county {
		return c
	}
	var names []string
	switch {
	case explicit && shorts != "":
		names = strings.Split(shorts, ",")
		if strings.HasSuffix(full, "自治州") {
			names = append(names, names[0]+"州")
		}
	case !explicit:
		for _, suffix := range []string{"地区", "市", "盟"} {
			if s, ok := strings.CutSuffix(full, suffix); ok && utf8.RuneCountInString(s) >= 2 {
				names = append(names, s)
				break
			}
		}
	}
	for _, s := range names {
		g.addName(g.cityNames, nameEntry{name: s, short: true, city: c})
	}
	return c
}

func (g *gazetteer) addName(idx map[rune][]nameEntry, e nameEntry) {
	r, _ := utf8.DecodeRuneInString(e.name)
	if e.name == "" || r == utf8.RuneError {
		panic("address: empty or invalid gazetteer name")
	}
	idx[r] = append(idx[r], e)
}
