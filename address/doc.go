// Package address parses and checks an order's delivery address at intake,
// so the grid can hold an order it cannot deliver as it stands instead of
// finding out at the warehouse.
//
// Parse reads the free text channel adapters hand over ("浙江省 杭州市 西湖区
// 文三路 90号", "北京市朝阳区建国路88号", "1 Main St, Springfield") into
// province, city, district and the rest. Provinces (all 34 provincial-level
// divisions) and cities (the 333 prefecture-level divisions, plus the
// county-level units a province administers directly) come from a
// gazetteer compiled into the package, by full name or short form; the
// district is recognised by its suffix (区, 县, 市, 旗) after the city. For
// 北京, 上海, 天津 and 重庆 the municipality is the city and a district
// follows.
//
// Check turns a parse into Findings, each a machine-readable reason code, the
// field at fault and an English explanation for the reviewer of the held
// order. The codes are part of the grid's API; most severe first:
//
//   - address_missing: nothing to deliver to.
//   - address_incomplete: a mainland address without its province, city or
//     district (a municipality needs its district): couriers and the
//     routing by region need all three. International addresses, and Hong
//     Kong, Macau and Taiwan beyond the province, are not checked for it.
//   - address_ambiguous: two provinces, or a city outside the province
//     named, or a city name several provinces share with no province given:
//     the order could go to either place.
//   - region_unserved: no warehouse serves the province (Rules.Served).
//   - po_box: a PO box (PO Box, P.O. Box, Post Office Box, 邮政信箱, a
//     numbered 信箱 or 邮箱) when the order's carrier refuses them
//     (Rules.RefusePOBox).
//   - bonded_zone: an address in a bonded zone (综合保税区, 保税区, 保税港区,
//     保税物流园区, "bonded", "Free Trade Zone") for an order with goods that
//     are not bonded (Rules.BondedSKU unset): ordinary goods delivered into a
//     bonded zone cross a customs border.
//
// A Finding's Detail quotes province and city names from the gazetteer only,
// never the text after them: the street is personal data and a held order's
// reasons are shown to reviewers who need not see it.
//
// The package is a leaf of pure logic: it imports the standard library
// only, holds no state beyond the compiled gazetteer, and reads a bounded
// prefix of any text (AdminScanBytesMax, ScanBytesMax).
package address
