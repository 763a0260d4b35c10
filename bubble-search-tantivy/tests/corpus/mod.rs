//! A small chat corpus (Chinese and English) with queries and the messages a
//! person would expect each to find: the tokenizer measurement set.
//!
//! Some queries are traps for n-grams (the query's characters appear across
//! a word boundary: "和服" inside "我和服务员"), some for dictionaries (a
//! single character, a name or word the dictionary does not know, letters
//! glued to digits). `expected` is what a reader of the message would say
//! the search should find.

/// `(id, text)`.
pub const MESSAGES: &[(&str, &str)] = &[
    ("m01", "大家好"),
    ("m02", "今天天气很好，我们去公园吧"),
    ("m03", "明天见"),
    ("m04", "明天下午三点开会，别迟到"),
    ("m05", "会议改到周五了"),
    ("m06", "这次开会长达三个小时，累死了"),
    ("m07", "会长明天来视察工作"),
    ("m08", "我买了很多东西，拿不动了"),
    ("m09", "他在山东西部的一个小城工作"),
    ("m10", "她穿着和服在京都拍照"),
    ("m11", "我和服务员说了一下，马上上菜"),
    ("m12", "这幅画在拍卖会上卖了一百万"),
    ("m13", "乒乓球拍卖完了，明天再来"),
    ("m14", "小猫很可爱，想养一只"),
    ("m15", "我家的猫又把杯子打翻了"),
    ("m16", "周杰伦的新歌你听了吗"),
    ("m17", "我的笔记本电脑坏了，开不了机"),
    ("m18", "今晚吃火锅吗？"),
    ("m19", "这家店的菜真好吃"),
    ("m20", "项目进度怎么样了？"),
    ("m21", "下周一之前把报告发给我"),
    ("m22", "Meeting at 3pm in room 402"),
    ("m23", "Can you send me the report by Friday?"),
    ("m24", "The meetings this week are cancelled"),
    ("m25", "我的iPhone15到了，拍照超清楚"),
    ("m26", "用 iPhone 拍的照片发你了"),
    ("m27", "ＯＫ，没问题"),
    ("m28", "ok 我知道了"),
    ("m29", "微信群里发了通知"),
    ("m30", "小红书上有很多攻略"),
    ("m31", "北京大学的录取通知书到了"),
    ("m32", "我在上海浦东机场等你"),
    ("m33", "生日快乐！祝你天天开心"),
    ("m34", "哈哈哈哈笑死我了"),
    ("m35", "晚安，明天还要上班"),
    ("m36", "地铁二号线今天停运"),
    ("m37", "请把WiFi密码发给我"),
    ("m38", "wifi密码是12345678"),
    ("m39", "下雨了记得带伞"),
    ("m40", "快递到了放在门口"),
    ("m41", "周末一起去爬山吧"),
    ("m42", "医生说要多喝水多休息"),
    ("m43", "新年快乐，万事如意"),
    ("m44", "你吃饭了吗"),
    ("m45", "结婚的和尚未结婚的都来了"),
];

/// `(query, ids it should find)`.
pub const QUERIES: &[(&str, &[&str])] = &[
    ("大家", &["m01"]),
    ("公园", &["m02"]),
    ("天气", &["m02"]),
    ("明天", &["m03", "m04", "m07", "m13", "m35"]),
    ("开会", &["m04", "m06"]),
    ("会长", &["m07"]),
    ("会议", &["m05"]),
    ("东西", &["m08"]),
    ("和服", &["m10"]),
    ("服务员", &["m11"]),
    ("拍卖", &["m12"]),
    ("猫", &["m14", "m15"]),
    ("杰伦", &["m16"]),
    ("周杰伦", &["m16"]),
    ("电脑", &["m17"]),
    ("火锅", &["m18"]),
    ("好吃", &["m19"]),
    ("进度", &["m20"]),
    ("报告", &["m21"]),
    ("report", &["m23"]),
    ("meeting", &["m22", "m24"]),
    ("iphone", &["m25", "m26"]),
    ("ok", &["m27", "m28"]),
    ("微信", &["m29"]),
    ("小红书", &["m30"]),
    ("攻略", &["m30"]),
    ("北京", &["m31"]),
    ("大学", &["m31"]),
    ("通知", &["m29", "m31"]),
    ("上海", &["m32"]),
    ("机场", &["m32"]),
    ("生日", &["m33"]),
    ("开心", &["m33"]),
    ("天天", &["m33"]),
    ("哈哈", &["m34"]),
    ("上班", &["m35"]),
    ("地铁", &["m36"]),
    ("wifi 密码", &["m37", "m38"]),
    ("12345678", &["m38"]),
    ("下雨", &["m39"]),
    ("快递", &["m40"]),
    ("爬山", &["m41"]),
    ("喝水", &["m42"]),
    ("快乐", &["m33", "m43"]),
    ("吃饭", &["m44"]),
    ("和尚", &[]),
    ("明天 开会", &["m04"]),
    ("照片", &["m26"]),
    ("拍照", &["m10", "m25"]),
];

/// How one tokenizer did over every query.
#[derive(Debug, Default)]
pub struct Score {
    /// Expected messages found.
    pub true_hits: usize,
    /// Expected messages not found: `(query, id)`.
    pub missed: Vec<(String, String)>,
    /// Found messages not expected: `(query, id)`.
    pub false_hits: Vec<(String, String)>,
}

impl Score {
    /// Expected hits in all.
    pub fn expected() -> usize {
        QUERIES.iter().map(|(_, want)| want.len()).sum()
    }
}
