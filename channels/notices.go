package channels

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
)

// Pushes that name orders. Douyin's message push, WeChat's order events
// and Xiaohongshu's message push announce an order by its id; the grid
// acknowledges the push the way the platform asks (or it pushes again),
// then fetches the order from the platform's order-detail API.

// NoticesPerPushMax bounds the orders one push may name.
const NoticesPerPushMax = 1000

// firstByte is the first byte of body that is not white space.
func firstByte(body []byte) byte {
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// messageNotices reads a push that is a JSON array of messages, each with
// its type under tagKey, its id under msgKey ("" none) and a data member
// that is a JSON string holding the order id under idKey (Douyin's and
// Xiaohongshu's pushes); a message without that id names nothing. ok is
// false for a body that is not an array (an order itself).
func messageNotices(body []byte, tagKey, msgKey, idKey string) ([]Notice, bool, error) {
	if firstByte(body) != '[' {
		return nil, false, nil
	}
	var msgs []map[string]json.RawMessage
	if err := decode(body, &msgs); err != nil {
		return nil, true, err
	}
	if len(msgs) > NoticesPerPushMax {
		return nil, true, fieldErr("body", "%d messages, at most %d", len(msgs), NoticesPerPushMax)
	}
	var out []Notice
	for i, m := range msgs {
		at := fmt.Sprintf("[%d].", i)
		var tag, msgID ID
		var data string
		for _, f := range []struct {
			key string
			v   any
		}{{tagKey, &tag}, {msgKey, &msgID}, {"data", &data}} {
			if raw, ok := m[f.key]; ok && f.key != "" {
				if err := decodeAt(raw, at+f.key, f.v); err != nil {
					return nil, true, err
				}
			}
		}
		if data == "" {
			continue
		}
		var d map[string]json.RawMessage
		if err := decodeAt([]byte(data), at+"data", &d); err != nil {
			return nil, true, err
		}
		raw, ok := d[idKey]
		if !ok {
			continue
		}
		var id ID
		if err := decodeAt(raw, at+"data."+idKey, &id); err != nil {
			return nil, true, err
		}
		if id != "" {
			out = append(out, Notice{OrderID: string(id), Tag: string(tag), MsgID: string(msgID)})
		}
	}
	return out, true, nil
}

// Douyin's message push (抖店消息推送) posts a JSON array of messages
// {tag, msg_id, data}, data a JSON string: order messages (tag 100 order
// created, 101 paid, 102 shipped, 103 received, 105 address changed, 106
// cancelled, …) carry p_id, the parent order id, and s_ids, its SKU
// orders. A message without p_id (tag 0, the push settings' test
// message, or a non-order message) is acknowledged and names nothing.
// The answer the platform wants is {"code":0,"msg":"success"}.
func (douyin) Notices(body []byte) ([]Notice, bool, error) {
	return messageNotices(body, "tag", "msg_id", "p_id")
}

func (douyin) Ack() (string, []byte) {
	return "application/json", []byte(`{"code":0,"msg":"success"}`)
}

// WeChat Channels shop's order events (channels_ec_order_new, _pay,
// _cancel, _wait_shipping, _deliver, _confirm, _settle,
// _ext_info_update) carry order_info.order_id; the message is JSON or
// XML, as the push settings choose. Another event is acknowledged and
// names nothing; an order detail (a connector's post) is not a notice.
// The answer is the text "success".
func (wechat) Notices(body []byte) ([]Notice, bool, error) {
	var ev struct {
		Event     string `json:"Event" xml:"Event"`
		MsgType   string `json:"MsgType" xml:"MsgType"`
		OrderInfo struct {
			OrderID ID `json:"order_id" xml:"order_id"`
		} `json:"order_info" xml:"order_info"`
	}
	switch firstByte(body) {
	case '<':
		if err := xml.Unmarshal(body, &ev); err != nil {
			return nil, true, fieldErr("body", "not an XML message: %v", err)
		}
	case '{':
		if !bytes.Contains(body, []byte(`"MsgType"`)) && !bytes.Contains(body, []byte(`"Event"`)) {
			return nil, false, nil // an order, not an event
		}
		if err := decode(body, &ev); err != nil {
			return nil, true, err
		}
	default:
		return nil, false, nil
	}
	if !strings.HasPrefix(ev.Event, "channels_ec_order_") {
		return nil, true, nil
	}
	id := strings.TrimSpace(string(ev.OrderInfo.OrderID))
	if id == "" {
		return nil, true, fieldErr("order_info.order_id", "required in a %s event", ev.Event)
	}
	return []Notice{{OrderID: id, Tag: ev.Event}}, true, nil
}

func (wechat) Ack() (string, []byte) { return "text/plain; charset=utf-8", []byte("success") }

// Xiaohongshu's message push posts a JSON array of messages {msgTag,
// sellerId, data}, data a JSON string; order messages (msg_fulfillment_*,
// msg_order_*) carry orderId. Others are acknowledged and name nothing.
// The answer is {"success":true,"error_code":0}. (The push's field names
// follow the ark open platform's message documentation as far as it is
// public; the order detail is fetched either way.)
func (xiaohongshu) Notices(body []byte) ([]Notice, bool, error) {
	return messageNotices(body, "msgTag", "", "orderId")
}

func (xiaohongshu) Ack() (string, []byte) {
	return "application/json", []byte(`{"success":true,"error_code":0}`)
}

var (
	_ Notifier = douyin{}
	_ Notifier = wechat{}
	_ Notifier = xiaohongshu{}
)
