/**
 * Reference tables for realistic Chinese CRM seed data. Values are common
 * and public (surnames, provinces, GB/T 2260 division codes, mobile prefixes);
 * none of them identifies a person on its own.
 */

/** [surname, pinyin, relative frequency]; compound surnames are rare but present. */
export const SURNAMES: ReadonlyArray<readonly [string, string, number]> = [
  ['王', 'wang', 72], ['李', 'li', 71], ['张', 'zhang', 68], ['刘', 'liu', 53], ['陈', 'chen', 46],
  ['杨', 'yang', 33], ['黄', 'huang', 25], ['赵', 'zhao', 21], ['吴', 'wu', 21], ['周', 'zhou', 20],
  ['徐', 'xu', 15], ['孙', 'sun', 15], ['马', 'ma', 14], ['朱', 'zhu', 13], ['胡', 'hu', 12],
  ['郭', 'guo', 12], ['何', 'he', 11], ['高', 'gao', 10], ['林', 'lin', 10], ['罗', 'luo', 10],
  ['郑', 'zheng', 9], ['梁', 'liang', 9], ['谢', 'xie', 7], ['宋', 'song', 7], ['唐', 'tang', 7],
  ['许', 'xu', 6], ['韩', 'han', 6], ['冯', 'feng', 6], ['邓', 'deng', 6], ['曹', 'cao', 6],
  ['彭', 'peng', 5], ['曾', 'zeng', 5], ['肖', 'xiao', 5], ['田', 'tian', 5], ['董', 'dong', 5],
  ['袁', 'yuan', 5], ['潘', 'pan', 4], ['于', 'yu', 4], ['蒋', 'jiang', 4], ['蔡', 'cai', 4],
  ['余', 'yu', 4], ['杜', 'du', 4], ['叶', 'ye', 4], ['程', 'cheng', 4], ['苏', 'su', 4],
  ['魏', 'wei', 4], ['吕', 'lv', 4], ['丁', 'ding', 4], ['任', 'ren', 3], ['沈', 'shen', 3],
  ['欧阳', 'ouyang', 1], ['司马', 'sima', 1], ['上官', 'shangguan', 1], ['诸葛', 'zhuge', 1], ['慕容', 'murong', 1],
];

/** Given-name characters with their pinyin, split by the gender they are most often given to. */
export const GIVEN_M: ReadonlyArray<readonly [string, string]> = [
  ['伟', 'wei'], ['强', 'qiang'], ['磊', 'lei'], ['军', 'jun'], ['勇', 'yong'], ['杰', 'jie'], ['涛', 'tao'],
  ['明', 'ming'], ['超', 'chao'], ['刚', 'gang'], ['平', 'ping'], ['辉', 'hui'], ['鹏', 'peng'], ['华', 'hua'],
  ['飞', 'fei'], ['鑫', 'xin'], ['波', 'bo'], ['斌', 'bin'], ['宇', 'yu'], ['浩', 'hao'], ['凯', 'kai'],
  ['健', 'jian'], ['俊', 'jun'], ['帆', 'fan'], ['建', 'jian'], ['国', 'guo'], ['志', 'zhi'], ['文', 'wen'],
  ['博', 'bo'], ['晨', 'chen'], ['子', 'zi'], ['轩', 'xuan'], ['天', 'tian'], ['泽', 'ze'], ['海', 'hai'],
  ['东', 'dong'],
];

export const GIVEN_F: ReadonlyArray<readonly [string, string]> = [
  ['芳', 'fang'], ['娜', 'na'], ['敏', 'min'], ['静', 'jing'], ['丽', 'li'], ['艳', 'yan'], ['娟', 'juan'],
  ['霞', 'xia'], ['秀', 'xiu'], ['英', 'ying'], ['婷', 'ting'], ['玲', 'ling'], ['雪', 'xue'], ['慧', 'hui'],
  ['琳', 'lin'], ['颖', 'ying'], ['倩', 'qian'], ['洁', 'jie'], ['燕', 'yan'], ['梅', 'mei'], ['欣', 'xin'],
  ['怡', 'yi'], ['佳', 'jia'], ['萱', 'xuan'], ['雨', 'yu'], ['涵', 'han'], ['思', 'si'], ['梦', 'meng'],
  ['晓', 'xiao'], ['月', 'yue'],
];

export type Department = 'east' | 'west' | 'north' | 'south';
export const DEPARTMENTS: readonly Department[] = ['east', 'west', 'north', 'south'];

export interface Province {
  name: string;
  /** The two leading digits of every division code in the province. */
  code: string;
  /** The sales department that covers the province (most customers live in their department's area). */
  department: Department;
  /** [city, 4-digit GB/T 2260 prefecture code]. Municipalities are their own single city. */
  cities: ReadonlyArray<readonly [string, string]>;
}

export const PROVINCES: readonly Province[] = [
  { name: '北京市', code: '11', department: 'north', cities: [['北京市', '1101']] },
  { name: '天津市', code: '12', department: 'north', cities: [['天津市', '1201']] },
  { name: '河北省', code: '13', department: 'north', cities: [['石家庄市', '1301'], ['唐山市', '1302'], ['秦皇岛市', '1303'], ['邯郸市', '1304'], ['保定市', '1306'], ['廊坊市', '1310']] },
  { name: '山西省', code: '14', department: 'north', cities: [['太原市', '1401'], ['大同市', '1402'], ['长治市', '1404'], ['运城市', '1408']] },
  { name: '内蒙古自治区', code: '15', department: 'north', cities: [['呼和浩特市', '1501'], ['包头市', '1502'], ['鄂尔多斯市', '1506']] },
  { name: '辽宁省', code: '21', department: 'north', cities: [['沈阳市', '2101'], ['大连市', '2102'], ['鞍山市', '2103'], ['锦州市', '2107']] },
  { name: '吉林省', code: '22', department: 'north', cities: [['长春市', '2201'], ['吉林市', '2202'], ['四平市', '2203']] },
  { name: '黑龙江省', code: '23', department: 'north', cities: [['哈尔滨市', '2301'], ['齐齐哈尔市', '2302'], ['大庆市', '2306'], ['牡丹江市', '2310']] },
  { name: '上海市', code: '31', department: 'east', cities: [['上海市', '3101']] },
  { name: '江苏省', code: '32', department: 'east', cities: [['南京市', '3201'], ['无锡市', '3202'], ['徐州市', '3203'], ['常州市', '3204'], ['苏州市', '3205'], ['南通市', '3206'], ['扬州市', '3210']] },
  { name: '浙江省', code: '33', department: 'east', cities: [['杭州市', '3301'], ['宁波市', '3302'], ['温州市', '3303'], ['嘉兴市', '3304'], ['绍兴市', '3306'], ['金华市', '3307'], ['台州市', '3310']] },
  { name: '安徽省', code: '34', department: 'east', cities: [['合肥市', '3401'], ['芜湖市', '3402'], ['蚌埠市', '3403'], ['安庆市', '3408']] },
  { name: '福建省', code: '35', department: 'east', cities: [['福州市', '3501'], ['厦门市', '3502'], ['莆田市', '3503'], ['泉州市', '3505'], ['漳州市', '3506']] },
  { name: '江西省', code: '36', department: 'east', cities: [['南昌市', '3601'], ['九江市', '3604'], ['赣州市', '3607'], ['上饶市', '3611']] },
  { name: '山东省', code: '37', department: 'east', cities: [['济南市', '3701'], ['青岛市', '3702'], ['淄博市', '3703'], ['烟台市', '3706'], ['潍坊市', '3707'], ['济宁市', '3708'], ['临沂市', '3713']] },
  { name: '河南省', code: '41', department: 'south', cities: [['郑州市', '4101'], ['开封市', '4102'], ['洛阳市', '4103'], ['新乡市', '4107'], ['南阳市', '4113']] },
  { name: '湖北省', code: '42', department: 'south', cities: [['武汉市', '4201'], ['黄石市', '4202'], ['十堰市', '4203'], ['宜昌市', '4205'], ['襄阳市', '4206']] },
  { name: '湖南省', code: '43', department: 'south', cities: [['长沙市', '4301'], ['株洲市', '4302'], ['湘潭市', '4303'], ['衡阳市', '4304'], ['岳阳市', '4306'], ['常德市', '4307']] },
  { name: '广东省', code: '44', department: 'south', cities: [['广州市', '4401'], ['深圳市', '4403'], ['珠海市', '4404'], ['汕头市', '4405'], ['佛山市', '4406'], ['惠州市', '4413'], ['东莞市', '4419'], ['中山市', '4420']] },
  { name: '广西壮族自治区', code: '45', department: 'south', cities: [['南宁市', '4501'], ['柳州市', '4502'], ['桂林市', '4503'], ['北海市', '4505']] },
  { name: '海南省', code: '46', department: 'south', cities: [['海口市', '4601'], ['三亚市', '4602']] },
  { name: '重庆市', code: '50', department: 'west', cities: [['重庆市', '5001']] },
  { name: '四川省', code: '51', department: 'west', cities: [['成都市', '5101'], ['自贡市', '5103'], ['绵阳市', '5107'], ['南充市', '5113'], ['宜宾市', '5115']] },
  { name: '贵州省', code: '52', department: 'west', cities: [['贵阳市', '5201'], ['遵义市', '5203'], ['安顺市', '5204']] },
  { name: '云南省', code: '53', department: 'west', cities: [['昆明市', '5301'], ['曲靖市', '5303'], ['玉溪市', '5304']] },
  { name: '陕西省', code: '61', department: 'west', cities: [['西安市', '6101'], ['宝鸡市', '6103'], ['咸阳市', '6104'], ['延安市', '6106']] },
  { name: '甘肃省', code: '62', department: 'west', cities: [['兰州市', '6201'], ['天水市', '6205']] },
];

/** County-level suffixes for the 6-digit region code; cities without districts (东莞, 中山) use 00. */
export function districtSuffixes(cityCode: string): readonly string[] {
  return cityCode === '4419' || cityCode === '4420' ? ['00'] : ['02', '03', '04', '05', '06'];
}

/** Road and estate names found in nearly every Chinese city, so any pairing with a city is plausible. */
export const STREETS = [
  '人民路', '解放路', '中山路', '建设路', '和平路', '新华路', '文化路', '胜利路', '朝阳路', '长江路',
  '黄河路', '青年路', '光明路', '幸福路', '滨江路', '东风路', '工业路', '学府路', '科技路', '迎宾大道',
] as const;

export const ESTATES = [
  '阳光花园', '锦绣家园', '翠苑小区', '金色家园', '碧水湾', '世纪花园', '幸福里', '紫荆苑', '丽景湾', '和谐家园',
] as const;

/** Mobile prefixes of China Mobile, Unicom, Telecom and Broadnet. */
export const MOBILE_PREFIXES = [
  '130', '131', '132', '133', '134', '135', '136', '137', '138', '139', '147', '150', '151', '152',
  '153', '155', '156', '157', '158', '159', '166', '175', '176', '177', '178', '180', '181', '182',
  '183', '184', '185', '186', '187', '188', '189', '191', '193', '195', '196', '197', '198', '199',
] as const;

/** Free-mail domains weighted by popularity; company domains are fictitious. */
export const EMAIL_DOMAINS: ReadonlyArray<readonly [string, number]> = [
  ['163.com', 30], ['126.com', 12], ['sina.com', 5], ['gmail.com', 8], ['outlook.com', 6], ['foxmail.com', 4],
  ['jinxiu-tech.cn', 2], ['ruiyuan-trade.com.cn', 2], ['xinghe-logistics.cn', 1], ['hongyun-food.com', 1],
];

/** [product, lowest price, highest price] in yuan. */
export const PRODUCTS: ReadonlyArray<readonly [string, number, number]> = [
  ['无线蓝牙耳机', 99, 1299], ['智能手表', 399, 3299], ['空气净化器', 899, 4999], ['扫地机器人', 1299, 4599],
  ['全自动咖啡机', 1599, 6999], ['护肤礼盒', 199, 1599], ['跑步鞋', 299, 1299], ['羽绒服', 499, 2999],
  ['拉杆行李箱', 299, 1899], ['电饭煲', 199, 1299], ['茶叶礼盒', 128, 1888], ['保温杯', 59, 399],
  ['笔记本电脑', 3999, 12999], ['平板电脑', 1999, 7999], ['蓝牙音箱', 149, 1999], ['人体工学椅', 699, 3999],
  ['打印机墨盒', 89, 599], ['企业软件年度订阅', 2999, 29999], ['会员年卡', 198, 698], ['母婴用品套装', 159, 999],
];

/** Interaction summaries: business facts only, never a customer's personal data. */
export const INTERACTION_SUMMARIES: Readonly<Record<'call' | 'email' | 'wechat' | 'visit', readonly string[]>> = {
  call: [
    '电话回访，客户对{product}的使用体验表示满意。',
    '客户来电咨询{product}的保修政策，已解答。',
    '电话确认{product}订单的配送时间。',
    '客户反馈{product}有小问题，已登记售后工单。',
  ],
  email: [
    '发送{product}的新品介绍资料。',
    '邮件回复客户关于发票开具的问题。',
    '发送季度优惠活动说明，客户表示会考虑。',
  ],
  wechat: [
    '微信沟通{product}的促销活动，客户有购买意向。',
    '通过微信发送{product}的使用指南。',
    '客户在微信上咨询会员积分兑换规则。',
  ],
  visit: [
    '上门拜访，介绍{product}并演示主要功能。',
    '拜访客户，了解明年的采购计划。',
    '现场处理{product}的售后问题，客户满意。',
  ],
};
