package address_test

import (
	"fmt"

	"github.com/ordergrid/ordergrid/address"
)

func ExampleParse() {
	p := address.Parse("浙江 杭州 西湖区 文三路 90号")
	fmt.Println(p.Province, p.ProvinceCode, p.City, p.District, "|", p.Rest)
	// Output: 浙江省 33 杭州市 西湖区 | 文三路 90号
}

func ExampleCheck() {
	rules := address.Rules{
		RefusePOBox: true,
		Served:      func(provinceCode string) bool { return provinceCode != "54" },
	}
	for _, text := range []string{
		"浙江省 杭州市 西湖区 文三路 90号",
		"浙江省 杭州市 文三路 90号",
		"西藏自治区 拉萨市 城关区 北京中路 5号",
		"上海市 浦东新区 外高桥保税区 富特北路 211号",
	} {
		fmt.Println(address.Check(text, rules))
	}
	// Output:
	// []
	// [{address_incomplete customer.address.district no district after 杭州市}]
	// [{region_unserved customer.address.province no warehouse serves 西藏自治区}]
	// [{bonded_zone customer.address the address is in a bonded zone and the order holds goods that are not bonded}]
}
